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


def _atomic(path: str | os.PathLike, write) -> None:
    """Write through `write(tmp_path)`, then rename; on any failure the temporary file is removed."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    tmp = _tmp(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    # allow_nan=False: NaN is not JSON; a NaN reaching a result file is a bug to surface, not to write
    atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable, allow_nan=False) + "\n")


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    _atomic(path, write)


def atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    _atomic(path, write)


def atomic_save_safetensors(path: str | os.PathLike, tensors: dict) -> None:
    from safetensors.torch import save_file

    _atomic(path, lambda tmp: save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp)))


def check_output_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """Fail before any work if `path` cannot be written as a file."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder; give a file name, e.g. {path / 'out.json'}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{what} {path}: its folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{what} {path}: its folder {parent} is not writable")
    return path


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Fail before any work if `path` cannot be used (or made) as an output folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{what} {path} is a file, not a folder; give a folder name")
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not os.access(existing, os.W_OK):
        raise PermissionError(f"{what} {path}: {existing} is not writable")
    return path


def read_json(path: str | os.PathLike, what: str = "file", kind: type | None = dict) -> Any:
    """Parse a JSON file, with one clear error naming the file for every way it can be unreadable."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not UTF-8 text (is it the right file?)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if kind is not None and not isinstance(obj, kind):
        raise ValueError(
            f"{what} {path} holds a JSON {type(obj).__name__}, expected a JSON {kind.__name__ if kind is not dict else 'object'}"
        )
    return obj


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


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Pipeline output (floats in [0, 1]) as 8-bit pixels, rounded as PIL and PNG files hold them."""
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
