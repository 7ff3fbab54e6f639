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
import shutil
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from snce_lib.evaluation.manifest import (
    GenerateError,
    check_settings,
    manifest_path,
    read_all,
    read_manifest,
    rewrite_manifest,
    run_lock,
)
from snce_lib.evaluation.protocols import Protocol
from snce_lib.io import atomic_write_json, to_uint8
from snce_lib.models.pipelines import prompt_embeds
from snce_lib.prompts import PromptSet
from snce_lib.sae.collect import first_batch_estimate


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
            jobs.append(
                {
                    "case_number": int(r["case_number"]),
                    "prompt": r["prompt"],
                    "seed": seed,
                    "guidance": row_guidance(r, protocol),
                    "file": f"{int(r['case_number']):05d}_{seed}.png",
                }
            )
    return jobs


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
    shard: tuple[int, int] = (0, 1),
) -> list[dict]:
    """Make every image of `prompts` under `protocol` into `out_dir`; returns this process's manifest rows.

    The folder records the settings that made it (run.json: model, eraser with its SAE's
    fingerprint, protocol, prompts); a rerun with other settings is refused. A lock makes a
    concurrent run into the same folder wait and then resume.

    `shard=(index, count)`: process `index` of `count` (launched with `accelerate launch`, say)
    makes batches index, index + count, ... of the one-process run, the same batches, so the union
    of the shards is the one-process run image for image. Each writes its own manifest part."""
    index, count = shard
    if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count):
        raise GenerateError(f"shard must be (index, count) with 0 <= index < count, got {shard!r}")
    out = Path(out_dir)
    jobs = plan(prompts, protocol)
    h = height or protocol.resolution
    w = width or protocol.resolution
    common = {
        "steps": protocol.steps,
        "scheduler": type(pipe.scheduler).__name__,
        "height": h,
        "width": w,
        "model": model_id or getattr(pipe, "name_or_path", "") or "",
        "protocol": protocol.name,
        "eraser": eraser.settings if eraser is not None else None,
    }
    settings = {
        **common,
        "protocol": protocol.as_dict(),
        "prompts": prompts.name,
        "files": sorted(j["file"] for j in jobs),
    }
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with run_lock(out, ".lock" if count == 1 else f".lock.part{index}"):
            check_settings(out, settings)
            return _run(pipe, prompts, protocol, out, jobs, common, eraser, batch_size, h, w, progress, shard)
    except BaseException:
        # leave no empty folder behind a run that made nothing (a shard leaves it: others write there)
        if made and count == 1 and not any((out / j["file"]).exists() for j in jobs):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _run(pipe, prompts, protocol, out, jobs, common, eraser, batch_size, h, w, progress, shard) -> list[dict]:
    from PIL import Image

    own = manifest_path(out, shard)
    # keep only whole lines whose image exists; rewrite this process's part if a torn line was dropped
    rewrite_manifest(own, [r for r in read_manifest(own) if (out / r["file"]).exists()])
    done = {r["file"] for r in read_all(out)}  # made by any process, in this run or an earlier one
    batches = [jobs[s : s + batch_size] for s in range(0, len(jobs), batch_size)][shard[0] :: shard[1]]
    mine = [j for b in batches for j in b]
    bar = tqdm(total=len(mine), desc=f"generate {prompts.name}", unit="img", disable=not progress)
    bar.update(len(done & {j["file"] for j in mine}))
    t_pipe = 0.0
    t0 = time.perf_counter()
    todo = len(mine) - bar.n
    first = True
    for batch in batches:
        if all(j["file"] in done for j in batch):
            continue
        # rows of one batch share a guidance value; split where the set's per-row guidance differs
        for group in _same_guidance(batch):
            gens = [torch.Generator(device="cpu").manual_seed(j["seed"]) for j in group]
            t1 = time.perf_counter()
            cond = prompt_embeds(pipe, [j["prompt"] for j in group], eraser)
            images = pipe(
                num_inference_steps=protocol.steps,
                guidance_scale=group[0]["guidance"],
                generator=gens,
                height=h,
                width=w,
                output_type="np",
                **cond,
            ).images
            t_pipe += time.perf_counter() - t1
            for j, img in zip(group, images):
                if j["file"] in done:
                    continue
                arr = to_uint8(img)
                tmp = out / f".{j['file']}.tmp"
                Image.fromarray(arr).save(tmp, format="PNG")
                os.replace(tmp, out / j["file"])
                row = {**j, **common}
                with open(own, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                done.add(j["file"])
                bar.update(1)
            if first and todo:
                first_batch_estimate(bar, time.perf_counter() - t0, len(group), todo, "img")
                first = False
    bar.close()
    total = time.perf_counter() - t0
    stats = {"seconds_total": round(total, 3), "seconds_in_pipeline": round(t_pipe, 3)}
    name = "run_stats.json" if shard[1] == 1 else f"run_stats.part{shard[0]:03d}.json"
    atomic_write_json(out / name, stats)
    order = {j["file"]: i for i, j in enumerate(mine)}
    return sorted((r for r in read_all(out) if r["file"] in order), key=lambda r: order[r["file"]])


def _same_guidance(batch: list[dict]) -> list[list[dict]]:
    groups: list[list[dict]] = []
    for j in batch:
        if groups and groups[-1][0]["guidance"] == j["guidance"]:
            groups[-1].append(j)
        else:
            groups.append([j])
    return groups
