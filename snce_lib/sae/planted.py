"""Data with a known dictionary, and how well an SAE found it.

`planted_data` draws sparse mixtures of `n` unit directions in `d < n` dimensions (superposition),
optionally with a hierarchy: a parent feature that fires exactly when one of its children does
(Chanin et al. 2024's setting for feature absorption). Every sample keeps its true coefficients,
so each measurement below compares an SAE with the answer:

- `recovery`: each planted direction's best cosine among the decoder rows, and the share above 0.9;
- `shrinkage`: how much smaller the SAE's activation is than the true coefficient, on the latent
  that best matches each feature (an L1 penalty shrinks, TopK does not need to);
- `structure`: per planted feature, how many latents split it (cosine >= `split_at`), and for each
  parent how often its best latent stays silent while the parent is active (absorption: a child's
  latent has taken the parent's direction into itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from snce_lib.rng import torch_generator


@dataclass
class Planted:
    """x: [samples, d] float32; coef: [samples, n] true coefficients (0 where off); dirs: [n, d] unit
    rows; parents: parent feature -> its children (empty without a hierarchy)."""

    x: torch.Tensor
    coef: torch.Tensor
    dirs: torch.Tensor
    parents: dict[int, list[int]] = field(default_factory=dict)


def planted_data(n_samples: int = 20_000, n_features: int = 64, d: int = 32, p_active: float = 0.05,
                 hierarchy: Sequence[tuple[int, Sequence[int]]] = (), noise: float = 0.0, seed: int = 0) -> Planted:  # fmt: skip
    """Each feature fires independently with probability `p_active`, with a coefficient uniform in
    [0.5, 1.5]; `hierarchy` = [(parent, children), ...]: the parent fires exactly when one of its
    children fires (so never alone), and the children of one parent are mutually exclusive."""
    if d <= 0 or n_features <= 0 or not 0 < p_active < 1:
        raise ValueError("need d > 0, n_features > 0 and 0 < p_active < 1")
    g = torch_generator(seed, "planted")  # never the SAE's init stream (`snce_lib.rng`)
    dirs = torch.nn.functional.normalize(torch.randn(n_features, d, generator=g), dim=1)
    on = torch.rand(n_samples, n_features, generator=g) < p_active
    parents = {int(p): [int(c) for c in cs] for p, cs in hierarchy}
    for p, cs in parents.items():
        if p in cs or not cs or not all(0 <= i < n_features for i in (p, *cs)):
            raise ValueError(f"bad hierarchy entry {p}: {cs}")
        kids = on[:, cs]
        # at most one child: keep the first one drawn, silence the rest
        first = kids.float().argmax(1)
        any_kid = kids.any(1)
        kids = torch.zeros_like(kids)
        kids[any_kid, first[any_kid]] = True
        on[:, cs] = kids
        on[:, p] = any_kid
    coef = on.float() * (0.5 + torch.rand(n_samples, n_features, generator=g))
    x = coef @ dirs + noise * torch.randn(n_samples, d, generator=g)
    return Planted(x, coef, dirs, parents)


def best_match(w_dec: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per planted direction, (its best cosine among the decoder rows, that row's index). [n] each"""
    c = torch.nn.functional.normalize(dirs.float(), dim=1) @ torch.nn.functional.normalize(w_dec.float(), dim=1).T
    return c.max(dim=1)


def recovery(w_dec: torch.Tensor, dirs: torch.Tensor, threshold: float = 0.9) -> dict:
    """Mean best cosine of the planted directions among the decoder rows, and the share found (>= threshold)."""
    best, _ = best_match(w_dec.detach(), dirs)
    return {"mean_max_cosine": float(best.mean()), "share_found": float((best >= threshold).float().mean())}


def shrinkage(codes: torch.Tensor, w_dec: torch.Tensor, planted: Planted, threshold: float = 0.9) -> dict:
    """Over the features found (best cosine >= threshold) and the samples where the feature is on and
    its matched latent fires: the least-squares slope of the latent's activation on the true
    coefficient, and `shrinkage` = 1 - slope (0: unbiased; > 0: activations smaller than the truth).
    `missed` is the share of the feature's samples where the latent stayed silent.
    codes: [samples, n_latents] dense activations of `planted.x`."""
    codes, w_dec = codes.detach(), w_dec.detach()
    best, idx = best_match(w_dec, planted.dirs)
    est, true, on_total = [], [], 0
    for f in torch.nonzero(best >= threshold).flatten().tolist():
        on = planted.coef[:, f] > 0
        both = on & (codes[:, idx[f]] > 0)
        on_total += int(on.sum())
        est.append(codes[both, idx[f]])
        true.append(planted.coef[both, f])
    if not est:
        return {"slope": float("nan"), "shrinkage": float("nan"), "missed": float("nan"), "n_features": 0,
                "est": np.zeros(0), "true": np.zeros(0)}  # fmt: skip
    e, t = torch.cat(est).double(), torch.cat(true).double()
    slope = float((e * t).sum() / (t * t).sum())
    return {"slope": slope, "shrinkage": 1.0 - slope, "missed": 1.0 - len(e) / max(on_total, 1),
            "n_features": len(est), "est": e.numpy(), "true": t.numpy()}  # fmt: skip


def structure(codes: torch.Tensor, w_dec: torch.Tensor, planted: Planted, split_at: float = 0.7) -> dict:
    """Splitting and absorption against the planted hierarchy.

    - `latents_per_feature` [n]: decoder rows with cosine >= `split_at` to each planted direction
      (2 or more: the feature is split; 0: not represented);
    - `absorption` per parent: the share of samples with the parent on where the parent's best latent
      is silent (the child's latent carries it instead), and `mean_absorption` over parents;
    - `child_parent_cosine`: per parent, the mean cosine between its children's best latents and the
      parent direction (a child latent that absorbed the parent leans towards it)."""
    codes, w_dec = codes.detach(), w_dec.detach()
    w = torch.nn.functional.normalize(w_dec.float(), dim=1)
    cos = torch.nn.functional.normalize(planted.dirs.float(), dim=1) @ w.T
    per = (cos >= split_at).sum(1)
    _, idx = cos.max(dim=1)
    absorption, lean = {}, {}
    for p, kids in planted.parents.items():
        on = planted.coef[:, p] > 0
        absorption[p] = float((codes[on, idx[p]] <= 0).float().mean()) if on.any() else float("nan")
        lean[p] = float(torch.stack([planted.dirs[p].float() @ w[idx[c]] for c in kids]).mean())
    split = per >= 2
    return {"latents_per_feature": per.numpy(), "share_split": float(split.float().mean()),
            "share_missing": float((per == 0).float().mean()), "absorption": absorption,
            "mean_absorption": float(np.mean(list(absorption.values()))) if absorption else float("nan"),
            "child_parent_cosine": lean}  # fmt: skip
