"""Dead latents on purpose: a run that starts with part of the dictionary dead, with or without AuxK.

A latent is dead when it has not fired for `dead_after_tokens` tokens. Under TopK a latent whose
pre-activations never reach a top-k place gets no gradient from the reconstruction loss, so it
cannot come back by itself. AuxK (Gao et al. 2024) lets the `k_aux` dead latents with the largest
pre-activations reconstruct the live latents' residual, which gives them gradient.
`dead_start_run` shrinks the encoder rows of a share of the latents (so they lose every top-k
contest from the first step), counts them dead from the start, and trains with a given step (the
student's in chapter 00, else the trainer's own), logging the dead share and the recovery of the
planted features by the latents that fire, from step 0.

On a trained SAE, `dead_share_by_window` measures how many latents a shorter or longer dead window
would call dead, and `expected_dead_share` predicts it from the firing frequencies alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import torch

from snce_lib.rng import numpy_rng
from snce_lib.sae.batches import as_rows
from snce_lib.sae.lesson import StepFn, library_step, train_watched
from snce_lib.sae.model import TopKSAE
from snce_lib.sae.planted import Planted


def dead_start_run(planted: Planted, n_latents: int, k: int, auxk_alpha: float, dead_share: float = 0.5,
                   steps: int = 600, batch_size: int = 256, k_aux: int | None = None, dead_after_tokens: int = 2048,
                   log_every: int = 25, seed: int = 0, sparse: bool = False, step: StepFn | None = None) -> dict:  # fmt: skip
    """A run that starts with `dead_share` of its latents dead (see `train_watched`), trained with `step`
    (default: the trainer's own, on its `sparse` path if asked). Returns {"history", "revived",
    "still_dead", "n_started_dead", "chance", "sae"}."""
    run = train_watched(planted, n_latents, k, steps, step or partial(library_step, sparse=sparse),
                        batch_size=batch_size, auxk_alpha=auxk_alpha, k_aux=k_aux, dead_after_tokens=dead_after_tokens,
                        dead_start=dead_share, log_every=log_every, probe_rows=min(2048, len(planted.x) // 4),
                        seed=seed)  # fmt: skip
    return {"history": run.history, "revived": run.revived, "still_dead": run.still_dead,
            "n_started_dead": run.n_started_dead, "chance": run.chance, "sae": run.sae}  # fmt: skip


@torch.no_grad()
def dead_share_by_window(
    sae: TopKSAE, rows, windows: Sequence[int], seed: int = 0, batch: int = 8192
) -> dict[int, float]:
    """The share of latents a dead window of `w` tokens would call dead: silent on every one of `w`
    rows drawn at random, as training batches draw them. Averaged over the disjoint windows of one
    random order of `rows` ([rows, d_in]); a window longer than `rows` is refused."""
    data = as_rows(rows)
    hits = []
    for s in range(0, len(data), batch):
        vals, idx = sae.encode(data[s : s + batch].to(sae.device).float())
        hits.append(idx.masked_fill(vals <= 0, -1).cpu())
    fired = torch.cat(hits)  # [rows, k]: the latents each row fires, -1 where a place went unused
    order = torch.from_numpy(numpy_rng(seed, "dead-windows").permutation(len(fired)))
    out = {}
    for w in windows:
        if not 0 < w <= len(fired):
            raise ValueError(f"a window of {w} rows needs at least that many rows; got {len(fired)}")
        shares = []
        for j in range(len(fired) // w):
            alive = fired[order[j * w : (j + 1) * w]].unique()
            shares.append(1.0 - int((alive >= 0).sum()) / sae.cfg.n_latents)
        out[int(w)] = float(np.mean(shares))
    return out


def expected_dead_share(frequency: np.ndarray, window: int) -> float:
    """What the firing frequencies predict for `dead_share_by_window`: a latent firing on a share f of
    rows is silent on `window` independent rows with probability (1 - f)^window."""
    return float(np.mean((1.0 - np.asarray(frequency, dtype=np.float64)) ** window))
