"""Collecting a store: run the encoder to the block over many prompts and write the rows that
matter (every real token after BOS, a few padding positions each) into shards, resumably.
The folder layout is `snce_lib.sae.store`'s."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from snce_lib.io import atomic_save_npy, atomic_savez, atomic_write_json
from snce_lib.models.encoders import TextEncoder, Tokens
from snce_lib.sae.store import ActivationStore, NonFiniteActivations, StoreError, StoreInfo


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


def rows_for_batch(h: torch.Tensor, attention_mask: torch.Tensor, keep: str | int, start: int = 1):
    """Select the stored rows of one batch (from `start`: after BOS; T5 has none). Returns (index into
    batch, positions, is_pad)."""
    b_idx, pos, pad = [], [], []
    length = h.shape[1]
    for b in range(h.shape[0]):
        n_real = int(attention_mask[b].sum())
        real = np.arange(start, n_real)  # BOS left out
        pp = padding_positions(n_real, length, keep)
        both = np.concatenate([real, pp])
        b_idx.append(np.full(len(both), b))
        pos.append(both)
        pad.append(np.concatenate([np.zeros(len(real), bool), np.ones(len(pp), bool)]))
    return np.concatenate(b_idx), np.concatenate(pos), np.concatenate(pad)


def block_rows(encoder: TextEncoder, toks, layer: str, keep: str | int):
    """The stored rows of one tokenised batch: (rows [n, width] float32, index into batch, positions, is_pad).

    An encoder that masks padding out of attention (BERT: `use_attention_mask`) gives every kept
    position the same output whether or not the positions left out are computed: real tokens and
    padding alike attend to the real tokens only, and each position carries its own position id. So
    only BOS, the real tokens and the kept padding positions are run (about 28 of 77 positions for a
    corpus prompt at keep 8: ~2.5x fewer FLOPs); the values equal the full pass's up to float rounding
    (1e-5; under 0.1% of the float16 rows differ, by one unit in the last place). CLIP's causal
    attention, where each padding position reads the ones before it, runs whole, as the pipeline runs it."""
    mask = toks.attention_mask
    bi, pos, pad = rows_for_batch(mask, mask, keep, encoder.start)
    if not (encoder.family == "bert" and encoder.use_attention_mask):
        h = encoder.run_to_block(toks, layer)
        return h[torch.as_tensor(bi), torch.as_tensor(pos)].float().cpu().numpy(), bi, pos, pad
    kept = [np.concatenate([[0], pos[bi == b]]) for b in range(mask.shape[0])]  # BOS, then the stored rows
    width = max(len(k) for k in kept)
    ids = torch.zeros(len(kept), width, dtype=torch.long)
    am, pids = torch.zeros_like(ids), torch.zeros_like(ids)  # unused slots: masked, never read
    for b, k in enumerate(kept):
        at = torch.as_tensor(k)
        ids[b, : len(k)], am[b, : len(k)], pids[b, : len(k)] = toks.input_ids[b, at], mask[b, at], at
    h = encoder.run_to_block(Tokens(ids, am), layer, position_ids=pids.to(encoder.device))
    rows = torch.cat([h[b, 1 : len(k)] for b, k in enumerate(kept)])
    return rows.float().cpu().numpy(), bi, pos, pad


def first_batch_estimate(bar, seconds: float, done: int, total: int, unit: str) -> str:
    """After the first batch: the measured time an item and what the whole run will take at that rate,
    shown in the progress bar (tqdm's own remaining time moves with every batch)."""
    if done <= 0:
        return ""
    per = seconds / done
    whole = per * total
    text = f"measured {per:.3g} s/{unit}, ~{whole / 60:.1f} min for {total:,}" if whole >= 90 else (
        f"measured {per:.3g} s/{unit}, ~{whole:.0f} s for {total:,}")  # fmt: skip
    bar.set_postfix_str(text, refresh=True)
    return text


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
        encoder_index=encoder.encoder_index,
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
    t_start, first = time.perf_counter(), True
    for s in range(len(info.shards), n_shards):
        start, stop = s * shard_prompts, min((s + 1) * shard_prompts, len(prompts))
        acts, meta = [], {k: [] for k in ("prompt_id", "position", "token_id", "is_pad")}
        for b0 in range(start, stop, batch_size):
            batch = prompts[b0 : min(b0 + batch_size, stop)]
            toks = encoder.tokenize(batch)
            rows, bi, pos, pad = block_rows(encoder, toks, layer_name, keep_padding)
            if not np.isfinite(rows).all():
                raise NonFiniteActivations(
                    f"non-finite activations at {layer_name} for prompts {b0}..{b0 + len(batch) - 1}; "
                    "try fp16=False or check the checkpoint"
                )
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
            if first:
                first_batch_estimate(bar, time.perf_counter() - t_start, len(batch), len(prompts), "prompt")
                first = False
        name = f"shard_{s:05d}"
        atomic_save_npy(out / f"{name}.acts.npy", np.concatenate(acts))
        atomic_savez(out / f"{name}.meta.npz", **{k: np.concatenate(v) for k, v in meta.items()})
        atomic_write_json(out / "tokens.json", {str(k): v for k, v in sorted(tokens_seen.items())})
        rows_in = sum(len(a) for a in acts)
        info.shards.append(
            {
                "file": f"{name}.acts.npy",
                "meta": f"{name}.meta.npz",
                "rows": rows_in,
                "prompt_start": start,
                "prompt_stop": stop,
            }
        )
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


def store_bytes(
    n_prompts: int, mean_real_tokens: float, width: int, max_length: int = 77, keep_padding: str | int = 8
) -> int:
    """Bytes of a store, by arithmetic: rows x width x 2 (fp16) plus 11 bytes of metadata a row.

    `mean_real_tokens` counts the words and EOS of a prompt (BOS excluded).
    """
    pads = max_length - 1 - mean_real_tokens
    kept = pads if str(keep_padding) == "all" else min(pads, int(keep_padding))
    rows = n_prompts * (mean_real_tokens + kept)
    return int(rows * (width * 2 + 11))
