"""The generation runner: one image per (prompt, seed), a JSONL manifest, resumable.

Files are named `{case_number:05d}_{seed}.png`. Batches are fixed slices of the prompt
set, so a resumed run builds exactly the batches an uninterrupted run would (batch
composition can change the last bits of a GPU or CPU result) and gives the same images.
Each image is written to a temporary name and renamed; its manifest line is appended
after the rename. On resume, a batch whose images are all in the manifest is skipped.
The safety checker is off (the pipelines module loads without it): we measure what the
model makes.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .prompts import PromptSet
from .protocols import Protocol


def row_seed(row, protocol: Protocol, image_index: int = 0) -> int:
    seed = row.get("evaluation_seed")
    if protocol.seed == "per_row" and seed is not None and not (isinstance(seed, float) and math.isnan(seed)):
        return int(seed) + image_index
    return protocol.base_seed + int(row["case_number"]) * protocol.images_per_prompt + image_index


def row_guidance(row, protocol: Protocol) -> float:
    if protocol.guidance == "per_row":
        g = row.get("evaluation_guidance")
        if g is None or (isinstance(g, float) and math.isnan(g)):
            return float(protocol.fallback_guidance)
        return float(g)
    return float(protocol.guidance)


def plan(prompts: PromptSet, protocol: Protocol) -> list[dict]:
    """Every image to make, in order: one dict per (row, image index)."""
    jobs = []
    for _, row in prompts.frame.iterrows():
        r = row.to_dict()
        for i in range(protocol.images_per_prompt):
            seed = row_seed(r, protocol, i)
            jobs.append({"case_number": int(r["case_number"]), "prompt": r["prompt"], "seed": seed,
                         "guidance": row_guidance(r, protocol), "file": f"{int(r['case_number']):05d}_{seed}.png"})
    return jobs


def read_manifest(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line from a crash: everything after it is redone
    return rows


def generate(
    pipe,
    prompts: PromptSet,
    protocol: Protocol,
    out_dir: str | os.PathLike,
    eraser=None,
    batch_size: int = 4,
    height: int | None = None,
    width: int | None = None,
    model_id: str = "",
    progress: bool = True,
) -> list[dict]:
    """Make every image of `prompts` under `protocol` into `out_dir`; returns the manifest rows."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.jsonl"
    done_rows = read_manifest(manifest_path)
    # keep only whole lines whose image exists; rewrite the manifest if a torn line was dropped
    done_rows = [r for r in done_rows if (out / r["file"]).exists()]
    _rewrite(manifest_path, done_rows)
    done = {r["file"] for r in done_rows}
    jobs = plan(prompts, protocol)
    h = height or protocol.resolution
    w = width or protocol.resolution
    common = {"steps": protocol.steps, "scheduler": type(pipe.scheduler).__name__, "height": h, "width": w,
              "model": model_id or getattr(pipe, "name_or_path", "") or "", "protocol": protocol.name,
              "eraser": eraser.settings if eraser is not None else None}
    batches = [jobs[s : s + batch_size] for s in range(0, len(jobs), batch_size)]
    bar = tqdm(total=len(jobs), desc=f"generate {prompts.name}", unit="img", disable=not progress)
    bar.update(len(done & {j["file"] for j in jobs}))
    t_pipe = 0.0
    t0 = time.perf_counter()
    for batch in batches:
        if all(j["file"] in done for j in batch):
            continue
        # rows of one batch share a guidance value; split where the set's per-row guidance differs
        for group in _same_guidance(batch):
            gens = [torch.Generator(device="cpu").manual_seed(j["seed"]) for j in group]
            t1 = time.perf_counter()
            ctx = eraser.attached(pipe) if eraser is not None else _null()
            with ctx:
                images = pipe([j["prompt"] for j in group], num_inference_steps=protocol.steps,
                              guidance_scale=group[0]["guidance"], generator=gens, height=h, width=w,
                              output_type="np").images
            t_pipe += time.perf_counter() - t1
            for j, img in zip(group, images):
                if j["file"] in done:
                    continue
                arr = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
                tmp = out / f".{j['file']}.tmp"
                Image.fromarray(arr).save(tmp, format="PNG")
                os.replace(tmp, out / j["file"])
                row = {**j, **common}
                with open(manifest_path, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                done.add(j["file"])
                bar.update(1)
    bar.close()
    total = time.perf_counter() - t0
    stats = {"seconds_total": round(total, 3), "seconds_in_pipeline": round(t_pipe, 3)}
    (out / "run_stats.json").write_text(json.dumps(stats))
    order = {j["file"]: i for i, j in enumerate(jobs)}
    return sorted((r for r in read_manifest(manifest_path) if r["file"] in order), key=lambda r: order[r["file"]])


def _same_guidance(batch: list[dict]) -> list[list[dict]]:
    groups: list[list[dict]] = []
    for j in batch:
        if groups and groups[-1][0]["guidance"] == j["guidance"]:
            groups[-1].append(j)
        else:
            groups.append([j])
    return groups


def _rewrite(path: Path, rows: list[dict]) -> None:
    if not path.exists():
        return
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if text != path.read_text():
        tmp = path.with_name(".manifest.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def load_manifest_images(out_dir: str | os.PathLike) -> tuple[list[dict], list[Path]]:
    out = Path(out_dir)
    rows = read_manifest(out / "manifest.jsonl")
    if not rows:
        raise ValueError(f"{out} has no manifest.jsonl; generate images there first")
    return rows, [out / r["file"] for r in rows]
