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
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm.auto import tqdm

from snce_lib.evaluation.protocols import Protocol
from snce_lib.io import atomic_write_json, read_json, to_uint8
from snce_lib.models.pipelines import prompt_embeds
from snce_lib.prompts import PromptSet


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


class GenerateError(ValueError):
    """A run folder that cannot be used as asked: other settings, a damaged manifest."""


MANIFEST_KEYS = ("file", "case_number", "seed", "prompt")


def read_manifest(path: Path) -> list[dict]:
    """The manifest's complete rows. A torn last line (a crash mid-append) ends the list, and the
    runner redoes what it named; a complete line that is not a manifest row is an error."""
    if not path.exists():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for n, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                break  # torn last line
            raise GenerateError(
                f"{path} line {n} is not JSON; the manifest is damaged (move the folder aside and generate again)"
            ) from None
        if not isinstance(row, dict) or any(k not in row for k in MANIFEST_KEYS) or not isinstance(row["file"], str):
            raise GenerateError(
                f"{path} line {n} is not a manifest row (needs {', '.join(MANIFEST_KEYS)}); "
                "the manifest is damaged or hand-edited"
            )
        rows.append(row)
    return rows


@contextmanager
def run_lock(out: Path):
    """Hold the folder's lock while writing: a second run into the same folder waits, then resumes
    from the manifest, so no image gets two rows and none is lost."""
    import fcntl
    import sys

    with open(out / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"snce: another generate run is writing to {out}; waiting for it to finish", file=sys.stderr, flush=True
            )
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_settings(out: Path, settings: dict) -> None:
    """Refuse a folder made with other settings; record the settings in a new one (run.json)."""
    path = out / "run.json"
    if path.exists():
        old = read_json(path, "run record")
        diff = [k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
        if diff:
            detail = "; ".join(f"{k}: {old.get(k)!r} there, {settings.get(k)!r} now" for k in diff)
            raise GenerateError(
                f"{out} holds images made with other settings ({detail[:400]}); "
                "choose another --out, or move that folder aside to start over"
            )
    else:
        atomic_write_json(path, settings)


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
    """Make every image of `prompts` under `protocol` into `out_dir`; returns the manifest rows.

    The folder records the settings that made it (run.json: model, eraser with its SAE's
    fingerprint, protocol, prompts); a rerun with other settings is refused. A lock makes a
    concurrent run into the same folder wait and then resume."""
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
        with run_lock(out):
            check_settings(out, settings)
            return _run(pipe, prompts, protocol, out, jobs, common, eraser, batch_size, h, w, progress)
    except BaseException:
        if made and not any((out / j["file"]).exists() for j in jobs):
            shutil.rmtree(out, ignore_errors=True)  # leave no empty folder behind a run that made nothing
        raise


def _run(pipe, prompts, protocol, out, jobs, common, eraser, batch_size, h, w, progress) -> list[dict]:
    from PIL import Image

    manifest_path = out / "manifest.jsonl"
    done_rows = read_manifest(manifest_path)
    # keep only whole lines whose image exists; rewrite the manifest if a torn line was dropped
    done_rows = [r for r in done_rows if (out / r["file"]).exists()]
    _rewrite(manifest_path, done_rows)
    done = {r["file"] for r in done_rows}
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


def load_manifest_images(out_dir: str | os.PathLike) -> tuple[list[dict], list[Path]]:
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"image folder {out} does not exist")
    path = out / "manifest.jsonl"
    if not path.exists():
        raise ValueError(f"{out} has no manifest.jsonl; generate images there first")
    rows = read_manifest(path)
    if not rows:
        raise ValueError(f"{path} holds no complete row yet; rerun the generate command to make the images")
    missing = [r["file"] for r in rows if not (out / r["file"]).exists()]
    if missing:
        raise ValueError(
            f"{out}: {len(missing)} images named in the manifest are missing (first: {missing[0]}); "
            "rerun the generate command to remake them"
        )
    return rows, [out / r["file"] for r in rows]


def planned_images(out_dir: str | os.PathLike) -> int | None:
    """How many images the run that made `out_dir` planned (from run.json), or None if unknown."""
    path = Path(out_dir) / "run.json"
    return len(read_json(path, "run record").get("files", [])) or None if path.exists() else None
