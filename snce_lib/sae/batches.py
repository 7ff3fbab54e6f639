"""Which activation rows training reads: the held-out split, the per-epoch shuffle (a pure
function of seed, epoch and step, so a resumed run reads exactly the rows an uninterrupted one
would), and the checks on the rows themselves."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from snce_lib.sae.config import TrainError


def held_out_split(n: int, seed: int, eval_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows): at most `eval_rows`, and at most a tenth of the data, held out."""
    perm = np.random.default_rng(seed).permutation(n)
    n_eval = min(eval_rows, n // 10)
    return perm[n_eval:], perm[:n_eval]


@lru_cache(maxsize=2)
def _epoch_perm(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


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
    """Activations as a [rows, width] tensor (numpy arrays and memory maps are wrapped, not copied)."""
    t = torch.as_tensor(np.asarray(data)) if not torch.is_tensor(data) else data
    if t.ndim != 2:
        raise TrainError(f"activations must be [rows, width], got shape {tuple(t.shape)}")
    return t


def check_finite(data: torch.Tensor, chunk: int = 1 << 16) -> None:
    """Refuse NaN or inf rows before training rather than train on them."""
    for s in range(0, len(data), chunk):
        if not torch.isfinite(data[s : s + chunk].float()).all():
            raise TrainError(f"activations contain NaN or inf (rows from {s}); recollect them with fp16=False")
