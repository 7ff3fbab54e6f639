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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .encoders import TextEncoder
from .io import atomic_write_json, atomic_save_npy, atomic_savez

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
    shards: list[dict] = field(default_factory=list)
    complete: bool = False
    format: str = STORE_FORMAT

    @property
    def rows(self) -> int:
        return sum(s["rows"] for s in self.shards)


def padding_positions(n_real: int, length: int, keep: str | int) -> np.ndarray:
    """Which padding positions to keep for a prompt with `n_real` real tokens (BOS included)."""
    pads = np.arange(n_real, length)
    if str(keep) == "all" or len(pads) == 0:
        return pads
    n = int(keep)
    if n <= 0:
        return pads[:0]
    if n >= len(pads):
        return pads
    return pads[np.unique(np.linspace(0, len(pads) - 1, n).round().astype(int))]


def rows_for_batch(h: torch.Tensor, attention_mask: torch.Tensor, keep: str | int):
    """Select the stored rows of one batch. Returns (index into batch, positions, is_pad)."""
    b_idx, pos, pad = [], [], []
    length = h.shape[1]
    for b in range(h.shape[0]):
        n_real = int(attention_mask[b].sum())
        real = np.arange(1, n_real)  # BOS left out
        pp = padding_positions(n_real, length, keep)
        both = np.concatenate([real, pp])
        b_idx.append(np.full(len(both), b))
        pos.append(both)
        pad.append(np.concatenate([np.zeros(len(real), bool), np.ones(len(pp), bool)]))
    return np.concatenate(b_idx), np.concatenate(pos), np.concatenate(pad)


class ActivationStore:
    """Read side of a store folder. Shards are memory-mapped, never loaded whole unless asked."""

    def __init__(self, path: str | os.PathLike, allow_incomplete: bool = False):
        self.path = Path(path)
        meta = self.path / "store.json"
        if not meta.exists():
            raise StoreError(f"{self.path} is not an activation store (no store.json); run `snce collect` first")
        from .io import read_json

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
            raise StoreError(f"{meta} is damaged or hand-edited ({exc}); rerun `snce collect` into a new folder") from None
        del shards
        if not self.info.complete and not allow_incomplete:
            raise StoreError(
                f"{self.path} is incomplete ({len(self.info.shards)} shards written); "
                "rerun the same `snce collect` command to finish it"
            )
        self._tokens: dict[int, str] | None = None

    def __len__(self) -> int:
        return self.info.rows

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def nbytes(self) -> int:
        return sum((self.path / s["file"]).stat().st_size + (self.path / s["meta"]).stat().st_size for s in self.info.shards)

    def shard_arrays(self) -> list[np.ndarray]:
        out = []
        for s in self.info.shards:
            f = self.path / s["file"]
            try:
                arr = np.load(f, mmap_mode="r")
            except (OSError, ValueError) as exc:  # a truncated shard: "mmap length is greater than file size"
                raise StoreError(f"shard {f} is missing, truncated or damaged ({exc}); "
                                 "rerun `snce collect` into a new folder") from None
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

    def prompts(self) -> list[str]:
        with open(self.path / "prompts.jsonl") as fh:
            return [json.loads(line)["prompt"] for line in fh]

    def token_string(self, token_id: int) -> str:
        if self._tokens is None:
            self._tokens = {int(k): v for k, v in json.loads((self.path / "tokens.json").read_text()).items()}
        return self._tokens.get(int(token_id), "?")


def collect(
    encoder: TextEncoder,
    prompts: Sequence[str],
    out_dir: str | os.PathLike,
    layer: str | int | None = None,
    batch_size: int = 64,
    keep_padding: str | int = 8,
    shard_prompts: int = 2048,
    progress: bool = True,
) -> ActivationStore:
    """Run `prompts` through `encoder` to `layer` and write a store at `out_dir`.

    Resumes: shards already written by the same command are kept and skipped. A store
    built with other settings at `out_dir` is an error, never silently mixed.
    """
    prompts = [str(p) for p in prompts]
    if not prompts:
        raise StoreError("the prompt list is empty; give at least one prompt")
    layer_name, layer_idx = encoder.resolve_layer(layer)
    out = Path(out_dir)
    info = StoreInfo(
        encoder_id=encoder.encoder_id,
        layer=layer_name,
        layer_index=layer_idx,
        width=encoder.width,
        max_length=encoder.max_length,
        keep_padding=str(keep_padding),
        n_prompts=len(prompts),
        shard_prompts=shard_prompts,
    )
    tokens_seen: dict[int, str] = {}
    if (out / "store.json").exists():
        old = ActivationStore(out, allow_incomplete=True).info
        same = {k: v for k, v in asdict(old).items() if k not in ("shards", "complete")}
        want = {k: v for k, v in asdict(info).items() if k not in ("shards", "complete")}
        if same != want or _prompt_hash(out) != _hash(prompts):
            raise StoreError(
                f"{out} holds a store made with other settings or prompts; choose a new --out or delete it"
            )
        if old.complete:
            return ActivationStore(out)
        info.shards = old.shards
        if (out / "tokens.json").exists():
            tokens_seen = {int(k): v for k, v in json.loads((out / "tokens.json").read_text()).items()}
    else:
        out.mkdir(parents=True, exist_ok=True)
        _write_prompts(out, prompts)

    n_shards = (len(prompts) + shard_prompts - 1) // shard_prompts
    bar = tqdm(total=len(prompts), desc=f"collect {layer_name}", disable=not progress, unit="prompt")
    bar.update(min(len(info.shards) * shard_prompts, len(prompts)))
    for s in range(len(info.shards), n_shards):
        start, stop = s * shard_prompts, min((s + 1) * shard_prompts, len(prompts))
        acts, meta = [], {k: [] for k in ("prompt_id", "position", "token_id", "is_pad")}
        for b0 in range(start, stop, batch_size):
            batch = prompts[b0 : min(b0 + batch_size, stop)]
            toks = encoder.tokenize(batch)
            h = encoder.run_to_block(toks, layer_name)
            if not torch.isfinite(h).all():
                raise NonFiniteActivations(
                    f"non-finite activations at {layer_name} for prompts {b0}..{b0 + len(batch) - 1}; "
                    "try fp16=False or check the checkpoint"
                )
            bi, pos, pad = rows_for_batch(h, toks.attention_mask, keep_padding)
            rows = h[torch.as_tensor(bi), torch.as_tensor(pos)].float().cpu().numpy()
            if not np.isfinite(rows.astype(np.float16)).all():
                raise NonFiniteActivations(
                    f"activations at {layer_name} overflow float16 for prompts {b0}..{b0 + len(batch) - 1}"
                )
            ids = toks.input_ids[torch.as_tensor(bi), torch.as_tensor(pos)].numpy()
            acts.append(rows.astype(np.float16))
            meta["prompt_id"].append((bi + b0).astype(np.int32))
            meta["position"].append(pos.astype(np.int16))
            meta["token_id"].append(ids.astype(np.int32))
            meta["is_pad"].append(pad)
            for tid in np.unique(ids):
                if int(tid) not in tokens_seen:
                    tokens_seen[int(tid)] = encoder.token_strings([tid])[0]
            bar.update(len(batch))
        name = f"shard_{s:05d}"
        atomic_save_npy(out / f"{name}.acts.npy", np.concatenate(acts))
        atomic_savez(out / f"{name}.meta.npz", **{k: np.concatenate(v) for k, v in meta.items()})
        atomic_write_json(out / "tokens.json", {str(k): v for k, v in sorted(tokens_seen.items())})
        rows_in = sum(len(a) for a in acts)
        info.shards.append({"file": f"{name}.acts.npy", "meta": f"{name}.meta.npz", "rows": rows_in,
                            "prompt_start": start, "prompt_stop": stop})
        atomic_write_json(out / "store.json", asdict(info))
    bar.close()
    info.complete = True
    atomic_write_json(out / "store.json", asdict(info))
    return ActivationStore(out)


def _hash(prompts: Sequence[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(prompts).encode()).hexdigest()


def _write_prompts(out: Path, prompts: Sequence[str]) -> None:
    tmp = out / "prompts.jsonl.tmp"
    with open(tmp, "w") as fh:
        for i, p in enumerate(prompts):
            fh.write(json.dumps({"id": i, "prompt": p}) + "\n")
    os.replace(tmp, out / "prompts.jsonl")
    (out / "prompts.sha256").write_text(_hash(prompts))


def _prompt_hash(out: Path) -> str:
    p = out / "prompts.sha256"
    return p.read_text().strip() if p.exists() else ""


def store_bytes(n_prompts: int, mean_real_tokens: float, width: int, max_length: int = 77, keep_padding: str | int = 8) -> int:
    """Bytes of a store, by arithmetic: rows x width x 2 (fp16) plus 11 bytes of metadata a row.

    `mean_real_tokens` counts the words and EOS of a prompt (BOS excluded).
    """
    pads = max_length - 1 - mean_real_tokens
    kept = pads if str(keep_padding) == "all" else min(pads, int(keep_padding))
    rows = n_prompts * (mean_real_tokens + kept)
    return int(rows * (width * 2 + 11))

