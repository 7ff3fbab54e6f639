"""Which activation rows training reads: the held-out split, the per-epoch shuffle (a pure
function of seed, epoch and step, so a resumed run reads exactly the rows an uninterrupted one
would), and the checks on the rows themselves."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from snce_lib.rng import numpy_rng, seed_for
from snce_lib.sae.config import TrainError
from snce_lib.sae.store import StoreRows


def held_out_split(
    n: int, seed: int, eval_rows: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows): at most `eval_rows`, and at most a tenth of the data, held out.

    `groups` [n] (a store's prompt id per row) keeps each group on one side: whole prompts are held
    out, so no prompt has rows on both sides and the held-out FVU is measured on prompts training
    never saw. Without it, rows are held out one by one."""
    n_eval = min(eval_rows, n // 10)
    if groups is None:
        perm = numpy_rng(seed, "eval-rows").permutation(n)
        return perm[n_eval:], perm[:n_eval]
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise TrainError(f"groups must give one group per row ({n}), got shape {groups.shape}")
    ids, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = numpy_rng(seed, "eval-rows").permutation(len(ids))
    # whole groups in a random order until the next one would pass n_eval rows (at least one group)
    filled = np.cumsum(counts[order])
    n_groups = max(1, int(np.searchsorted(filled, n_eval, side="right"))) if n_eval else 0
    held = np.zeros(len(ids), dtype=bool)
    held[order[:n_groups]] = True
    if n_groups and held.all():
        raise TrainError("too few prompts to hold any out: every prompt would be held out")
    rows_held = held[inverse]
    return np.flatnonzero(~rows_held), np.flatnonzero(rows_held)


@lru_cache(maxsize=2)
def _epoch_perm(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed_for(seed, "sae-batches"), epoch]).permutation(n)


def batch_indices(train_idx: np.ndarray, step: int, batch: int, seed: int) -> np.ndarray:
    """Rows of step `step`: a stream of seeded per-epoch permutations, cut into batches."""
    n, start, need, parts = len(train_idx), step * batch, batch, []
    while need > 0:
        epoch, off = divmod(start, n)
        take = _epoch_perm(n, seed, epoch)[off : off + need]
        parts.append(take)
        need -= len(take)
        start += len(take)
    return train_idx[np.concatenate(parts)]


def as_rows(data) -> torch.Tensor:
    """Activations as a [rows, width] tensor (numpy arrays and memory maps are wrapped, not copied);
    a store's `StoreRows` is returned as it is (it reads rows on demand)."""
    if isinstance(data, StoreRows):
        return data
    t = torch.as_tensor(np.asarray(data)) if not torch.is_tensor(data) else data
    if t.ndim != 2:
        raise TrainError(f"activations must be [rows, width], got shape {tuple(t.shape)}")
    return t


def check_finite(data: torch.Tensor, chunk: int = 1 << 16) -> None:
    """Refuse NaN or inf rows before training rather than train on them. (A store's rows were
    checked as they were collected: `StoreRows` is not read twice.)"""
    if isinstance(data, StoreRows):
        return
    for s in range(0, len(data), chunk):
        if not torch.isfinite(data[s : s + chunk].float()).all():
            raise TrainError(f"activations contain NaN or inf (rows from {s}); recollect them with fp16=False")


@lru_cache(maxsize=4)
def _block_order(n: int, block: int, buffer_blocks: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """An epoch's seeded order of blocks, and where each buffer (group of blocks) starts in it."""
    starts = np.arange(0, n, block)
    order = starts[np.random.default_rng([seed_for(seed, "sae-batches"), epoch, 1]).permutation(len(starts))]
    sizes = np.minimum(order + block, n) - order
    group_sizes = np.add.reduceat(sizes, np.arange(0, len(order), buffer_blocks))
    return order, np.concatenate([[0], np.cumsum(group_sizes)])


@lru_cache(maxsize=2)
def _buffer(n: int, block: int, buffer_blocks: int, seed: int, epoch: int, group: int) -> np.ndarray:
    """The positions one buffer holds, shuffled."""
    order, _ = _block_order(n, block, buffer_blocks, seed, epoch)
    first = group * buffer_blocks
    rows = np.concatenate([np.arange(s, min(s + block, n)) for s in order[first : first + buffer_blocks]])
    return rows[np.random.default_rng([seed_for(seed, "sae-batches"), epoch, 2, group]).permutation(len(rows))]


def buffered_batch_indices(ordered_idx: np.ndarray, step: int, batch: int, seed: int, buffer_rows: int,
                           block: int = 8192) -> np.ndarray:  # fmt: skip
    """Rows of step `step` when the data cannot be shuffled whole (a store larger than memory): the
    training rows (`ordered_idx`, sorted) are cut into contiguous blocks of `block` rows, the blocks
    are read in a seeded order `buffer_rows // block` at a time into a shuffle buffer, and each
    buffer's rows are shuffled and cut into batches. Every training row is read once an epoch; a
    batch's rows come from a few contiguous stretches of the store (large sequential reads); like
    `batch_indices`, the order is a pure function of (seed, step), so a resumed run reads what an
    uninterrupted one would. The rows come back sorted: a batch's gradient does not depend on its
    order, and sorted reads are sequential on disk."""
    if buffer_rows < batch:
        raise TrainError(f"the shuffle buffer ({buffer_rows:,} rows) must hold at least one batch ({batch:,})")
    block = min(block, buffer_rows)  # the buffer never holds more rows than asked
    n, start, need, parts = len(ordered_idx), step * batch, batch, []
    buffer_blocks = max(1, buffer_rows // block)
    while need > 0:
        epoch, off = divmod(start, n)
        _, bounds = _block_order(n, block, buffer_blocks, seed, epoch)
        group = int(np.searchsorted(bounds, off, side="right")) - 1
        lo = off - int(bounds[group])
        take = _buffer(n, block, buffer_blocks, seed, epoch, group)[lo : lo + need]
        parts.append(take)
        need -= len(take)
        start += len(take)
    return np.sort(ordered_idx[np.concatenate(parts)])
