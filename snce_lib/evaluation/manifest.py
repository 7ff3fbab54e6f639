"""A generated folder's bookkeeping: the manifest (one JSON line an image, written after the image),
in one part per process when generation is sharded; the settings that made the folder (run.json);
the write lock; and reading it all back as one run."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from snce_lib.io import atomic_write_json, read_json


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


def manifest_path(out: Path, shard: tuple[int, int] = (0, 1)) -> Path:
    """Where process `shard[0]` of `shard[1]` appends its rows: manifest.jsonl for one process."""
    index, count = shard
    return out / "manifest.jsonl" if count == 1 else out / f"manifest.part{index:03d}-of-{count:03d}.jsonl"


def manifest_parts(out: Path) -> list[Path]:
    """Every manifest in the folder: a one-process run's and each shard's part."""
    return sorted(p for p in out.glob("manifest*.jsonl") if p.is_file())


def read_all(out: Path) -> list[dict]:
    """The rows of every part whose image exists, each image once."""
    rows: dict[str, dict] = {}
    for part in manifest_parts(out):
        for r in read_manifest(part):
            if r["file"] not in rows and (out / r["file"]).exists():
                rows[r["file"]] = r
    return list(rows.values())


@contextmanager
def run_lock(out: Path, name: str = ".lock"):
    """Hold the folder's lock while writing: a second run into the same folder waits, then resumes
    from the manifest, so no image gets two rows and none is lost."""
    import fcntl
    import sys

    with open(out / name, "a+") as fh:
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


def rewrite_manifest(path: Path, rows: list[dict]) -> None:
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
    parts = manifest_parts(out)
    if not parts:
        raise ValueError(f"{out} has no manifest.jsonl; generate images there first")
    seen: dict[str, dict] = {}
    for part in parts:  # a sharded run's parts, merged: each image once
        for r in read_manifest(part):
            seen.setdefault(r["file"], r)
    if not seen:
        raise ValueError(f"{out} holds no complete manifest row yet; rerun the generate command to make the images")
    # one part: the order it was made in; several: by file name (case number, then seed)
    rows = list(seen.values()) if len(parts) == 1 else sorted(seen.values(), key=lambda r: r["file"])
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
