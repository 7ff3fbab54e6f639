"""Atomic file writes: write to a temporary name beside the target, then rename.

A reader never sees a half-written file under the final name, so an interrupted run
leaves the last good state readable.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    path = Path(path)
    tmp = _tmp(path)
    with open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
    os.replace(tmp, path)


def atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    path = Path(path)
    tmp = _tmp(path)
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def atomic_save_safetensors(path: str | os.PathLike, tensors: dict) -> None:
    from safetensors.torch import save_file

    path = Path(path)
    tmp = _tmp(path)
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def _jsonable(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
