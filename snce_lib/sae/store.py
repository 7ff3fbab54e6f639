"""The activation store: block outputs of many prompts, on disk, fp16, memory-mappable, resumable.

Layout of a store folder:

    store.json                 written after every shard; `complete` turns true at the end
    prompts.jsonl              one {"id", "prompt"} per line
    tokens.json                token id -> token string, for every id in the store
    shard_00000.acts.npy       float16 [rows, width]   (np.load(..., mmap_mode="r"))
    shard_00000.meta.npz       prompt_id int32, position int16, token_id int32, is_pad bool

One row is one token position of one prompt. BOS (position 0) is never stored. Real
tokens (words and EOS) are always stored. Padding positions carry the prompt too (the
UNet attends to them, and CLIP's causal attention copies the prompt into them), but
they are many and alike, so `keep_padding` chooses how many of each prompt's padding run
to keep: "all", or an integer n that keeps n evenly spaced ones (the first always).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STORE_FORMAT = "snce-activation-store/1"


class StoreError(ValueError):
    """A store that cannot be used: missing, foreign, incomplete, mismatched."""


class NonFiniteActivations(StoreError):
    """The encoder produced NaN or inf (fp16 overflow, a broken checkpoint)."""


@dataclass
class StoreInfo:
    encoder_id: str
    layer: str
    layer_index: int
    width: int
    max_length: int
    keep_padding: str  # "all" or an integer as text
    n_prompts: int
    shard_prompts: int
    encoder_index: int = 0  # which of the pipeline's text encoders (SDXL's and FLUX's second is 1)
    shards: list[dict] = field(default_factory=list)
    complete: bool = False
    format: str = STORE_FORMAT

    @property
    def rows(self) -> int:
        return sum(s["rows"] for s in self.shards)


class ActivationStore:
    """Read side of a store folder. Shards are memory-mapped, never loaded whole unless asked."""

    def __init__(self, path: str | os.PathLike, allow_incomplete: bool = False):
        self.path = Path(path)
        meta = self.path / "store.json"
        if not meta.exists():
            raise StoreError(f"{self.path} is not an activation store (no store.json); run `snce collect` first")
        from snce_lib.io import read_json

        try:
            raw = read_json(meta, "store file")
        except ValueError as exc:
            raise StoreError(f"{exc}; rerun `snce collect` into a new folder") from None
        if raw.get("format") != STORE_FORMAT:
            raise StoreError(f"{meta} is not a store of this library (format {raw.get('format')!r})")
        try:
            self.info = StoreInfo(**{k: raw[k] for k in StoreInfo.__dataclass_fields__ if k in raw})
            shards = [(str(s["file"]), str(s["meta"])) for s in self.info.shards]
            int(self.info.width), int(self.info.rows)
        except (TypeError, KeyError, ValueError) as exc:
            raise StoreError(
                f"{meta} is damaged or hand-edited ({exc}); rerun `snce collect` into a new folder"
            ) from None
        del shards
        if not self.info.complete and not allow_incomplete:
            raise StoreError(
                f"{self.path} is incomplete ({len(self.info.shards)} shards written); "
                "rerun the same `snce collect` command to finish it"
            )
        self._tokens: dict[int, str] | None = None

    def __len__(self) -> int:
        return self.info.rows

    def describe(self) -> dict:
        """What the store's rows are, in a few fields (kept with a trained SAE for its model card)."""
        sha = self.path / "prompts.sha256"
        return {"encoder": self.info.encoder_id, "layer": self.info.layer, "prompts": self.info.n_prompts,
                "rows": self.info.rows, "keep_padding": self.info.keep_padding, "max_length": self.info.max_length,
                "prompts_sha256": sha.read_text().strip() if sha.exists() else None}  # fmt: skip

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def nbytes(self) -> int:
        return sum(
            (self.path / s["file"]).stat().st_size + (self.path / s["meta"]).stat().st_size for s in self.info.shards
        )

    def shard_arrays(self) -> list[np.ndarray]:
        out = []
        for s in self.info.shards:
            f = self.path / s["file"]
            try:
                arr = np.load(f, mmap_mode="r")
            except (OSError, ValueError) as exc:  # a truncated shard: "mmap length is greater than file size"
                raise StoreError(
                    f"shard {f} is missing, truncated or damaged ({exc}); rerun `snce collect` into a new folder"
                ) from None
            if arr.ndim != 2 or arr.shape[1] != self.width:
                raise StoreError(f"shard {f} has shape {arr.shape}, expected [rows, {self.width}]")
            out.append(arr)
        return out

    def meta(self) -> dict[str, np.ndarray]:
        parts = [np.load(self.path / s["meta"], allow_pickle=False) for s in self.info.shards]
        keys = ("prompt_id", "position", "token_id", "is_pad")
        if not parts:
            return {k: np.zeros(0) for k in keys}
        return {k: np.concatenate([p[k] for p in parts]) for k in keys}

    def load(self, max_rows: int | None = None, seed: int = 0) -> np.ndarray:
        """All rows (or a seeded random subset of `max_rows`) as one float16 array [rows, width]."""
        arrays = self.shard_arrays()
        full = np.concatenate(arrays) if arrays else np.zeros((0, self.width), np.float16)
        if max_rows is not None and max_rows < len(full):
            idx = np.sort(np.random.default_rng(seed).choice(len(full), max_rows, replace=False))
            full = full[idx]
        return np.ascontiguousarray(full)

    def rows(self) -> StoreRows:
        """All rows as one indexable source read from the memory-mapped shards on demand."""
        return StoreRows(self.shard_arrays(), self.width)

    def training_source(self, shuffle_buffer: int | None = None,
                        max_bytes: int | None = None) -> tuple[np.ndarray | StoreRows, int | None]:  # fmt: skip
        """(rows, shuffle buffer) for training. A given `shuffle_buffer` streams the memory-mapped rows
        through it. Otherwise: the rows loaded whole with no buffer (a full shuffle) when they take at
        most `max_bytes` (default: a quarter of this machine's memory), else the memory-mapped rows
        and a buffer of that many bytes' rows (`TrainConfig.shuffle_buffer`)."""
        if shuffle_buffer is not None:
            return self.rows(), shuffle_buffer
        budget = max_bytes if max_bytes is not None else physical_memory() // 4
        row_bytes = 2 * self.width  # float16
        if self.info.rows * row_bytes <= budget:
            return self.load(), None
        return self.rows(), max(budget // row_bytes, 1)

    def prompts(self) -> list[str]:
        with open(self.path / "prompts.jsonl") as fh:
            return [json.loads(line)["prompt"] for line in fh]

    def token_string(self, token_id: int) -> str:
        if self._tokens is None:
            self._tokens = {int(k): v for k, v in json.loads((self.path / "tokens.json").read_text()).items()}
        return self._tokens.get(int(token_id), "?")


class StoreRows:
    """A store's rows as one [rows, width] source, indexed like an array (integer arrays, tensors,
    slices) and read from the memory-mapped shards on demand: training streams from it when the
    store is larger than memory. Rows come back as a float16 tensor, in the order asked."""

    def __init__(self, arrays: list[np.ndarray], width: int):
        self.arrays = arrays
        self.bounds = np.cumsum([0] + [len(a) for a in arrays])
        self.shape = (int(self.bounds[-1]), width)
        self.dtype = np.float16

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx):
        import torch

        if isinstance(idx, slice):
            idx = np.arange(*idx.indices(len(self)))
        idx = np.asarray(idx.cpu() if isinstance(idx, torch.Tensor) else idx, dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"row index out of range for a store of {len(self):,} rows")
        order = np.argsort(idx, kind="stable")
        ordered = idx[order]
        shard = np.searchsorted(self.bounds, ordered, side="right") - 1
        out = np.empty((len(idx), self.shape[1]), dtype=np.float16)
        for j in np.unique(shard):  # sorted rows within a shard: sequential reads of the memory map
            m = shard == j
            out[order[m]] = self.arrays[j][ordered[m] - self.bounds[j]]
        return torch.from_numpy(out)


def physical_memory() -> int:
    """This machine's memory in bytes (8 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30
