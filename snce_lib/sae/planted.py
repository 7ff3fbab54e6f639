"""Data with a known dictionary, and how well an SAE found it.

`planted_data` draws sparse mixtures of `n` unit directions in `d < n` dimensions (superposition),
optionally with a hierarchy: a parent feature that fires exactly when one of its children does
(Chanin et al. 2024's setting for feature absorption). Every sample keeps its true coefficients,
so each measurement below compares an SAE with the answer:

- `recovery`: each planted direction's best cosine among the decoder rows of the latents that
  fire, and the share found (cosine >= 0.9); `chance_recovery`: the same for a random dictionary,
  the line a trained one has to clear;
- `shrinkage`: how much smaller the SAE's activation is than the true coefficient, on the latent
  that best matches each feature (an L1 penalty shrinks, TopK does not need to), and `best_rescale`:
  the FVU left once the codes' overall size is fitted;
- `structure`: which features were learned, which are held by near-duplicate latents and which are
  split, and for each parent that was learned how often its latent stays silent while the parent
  is on (absorption), beside how often a well-learned latent outside the hierarchy is silent while
  its feature is on (the baseline TopK's k places alone produce);
- `pca_limits`: what principal components can and cannot find, case by case.

A latent that never fires explains nothing, whatever its decoder row points at, so every measure
here reads the decoder rows of the latents that fire (`live`) only.
"""

from __future__ import annotations

import math
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


def firing(codes: torch.Tensor) -> torch.Tensor:
    """Which latents fire at least once in `codes` [samples, n_latents]. [n_latents] bool"""
    return (codes.detach() > 0).any(0)


def cosines(w_dec: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Cosine of every planted direction with every decoder row. [n, n_latents]"""
    unit = torch.nn.functional.normalize
    return unit(dirs.detach().float(), dim=1) @ unit(w_dec.detach().float(), dim=1).T


def best_match(w_dec: torch.Tensor, dirs: torch.Tensor,
               live: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Per planted direction, (its best cosine among the decoder rows of the `live` latents (all when
    None), that row's index). A direction with no live row to match reads -1. [n] each"""
    c = cosines(w_dec, dirs)
    if live is not None:
        c = c.masked_fill(~live.to(c.device).view(1, -1), -1.0)
    return c.max(dim=1)


def recovery(w_dec: torch.Tensor, dirs: torch.Tensor, threshold: float = 0.9, live: torch.Tensor | None = None) -> dict:
    """Mean best cosine of the planted directions among the decoder rows of the `live` latents (all
    when None), and the share found (>= threshold)."""
    best, _ = best_match(w_dec, dirs, live)
    return {"mean_max_cosine": float(best.mean()), "share_found": float((best >= threshold).float().mean())}


def chance_recovery(n_latents: int, dirs: torch.Tensor, threshold: float = 0.9, seed: int = 0) -> dict:
    """`recovery` of a dictionary of `n_latents` random unit rows (drawn from their own stream): what a
    trained dictionary of that size has to beat."""
    g = torch_generator(seed, "chance-dictionary")
    return recovery(torch.randn(n_latents, dirs.shape[1], generator=g), dirs, threshold)


def shrinkage(codes: torch.Tensor, w_dec: torch.Tensor, planted: Planted, threshold: float = 0.9) -> dict:
    """Over the features found (best cosine >= threshold among the latents that fire) and the samples
    where the feature is on and its matched latent fires: the least-squares slope of the latent's
    activation on the true coefficient, and `shrinkage` = 1 - slope (0: unbiased; > 0: activations
    smaller than the truth). `missed` is the share of the feature's samples where the latent stayed
    silent. codes: [samples, n_latents] dense activations of `planted.x`."""
    codes = codes.detach()
    best, idx = best_match(w_dec, planted.dirs, firing(codes))
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


def best_rescale(x: torch.Tensor, codes: torch.Tensor, w_dec: torch.Tensor, b_pre: torch.Tensor) -> tuple[float, float]:
    """(s, FVU) for the single scale s of the codes that reconstructs `x` best, x_hat = b_pre + s codes W_dec
    (least squares): how much of an SAE's error is only the size of its activations."""
    x, r = x.detach().float(), (codes.detach().float() @ w_dec.detach().float())
    c = x - b_pre.detach().float()
    scale = float((c * r).sum() / r.pow(2).sum().clamp_min(1e-12))
    err = (c - scale * r).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    return scale, float(err)


def fvu_by_features_on(x: torch.Tensor, x_hat: torch.Tensor, coef: torch.Tensor, k: int) -> dict:
    """Where the reconstruction error of a TopK SAE with `k` latents a sample sits: the share of
    samples with more than k features on (`coef` [samples, n] > 0), the share of the squared error
    they carry, and the FVU of each group (squared error over squared distance from the mean of all x)."""
    x, x_hat = x.detach().float(), x_hat.detach().float()
    err = (x - x_hat).pow(2).sum(1)
    spread = (x - x.mean(0)).pow(2).sum(1)
    over = (coef > 0).sum(1) > k
    return {"share_over_k": float(over.float().mean()), "error_share_over_k": float(err[over].sum() / err.sum()),
            "fvu_at_most_k": float(err[~over].sum() / spread[~over].sum()),
            "fvu_over_k": float(err[over].sum() / spread[over].sum()) if bool(over.any()) else math.nan}  # fmt: skip


def _silence_baseline(codes: torch.Tensor, planted: Planted, idx: torch.Tensor, features: list[int],
                      parents: list[int]) -> float:  # fmt: skip
    """How often the latent of a well-learned feature outside the hierarchy is silent while its feature
    is on, weighted to the parents' mix of features-on per sample (a parent never comes alone, so
    its samples carry more features than the average, and TopK's k places run out more often)."""
    if not features or not parents:
        return float("nan")
    n_on = (planted.coef > 0).sum(1)
    silent_by, parents_by = {}, {}
    for f in features:
        on = planted.coef[:, f] > 0
        for c, s in zip(n_on[on].tolist(), (codes[on, idx[f]] <= 0).tolist()):
            silent_by.setdefault(c, []).append(s)
    for p in parents:
        for c in n_on[planted.coef[:, p] > 0].tolist():
            parents_by[c] = parents_by.get(c, 0) + 1
    shared = {c: w for c, w in parents_by.items() if c in silent_by}
    if not shared:
        return float("nan")
    return sum(w * float(np.mean(silent_by[c])) for c, w in shared.items()) / sum(shared.values())


def structure(codes: torch.Tensor, w_dec: torch.Tensor, planted: Planted, threshold: float = 0.9,
              split_at: float = 0.7, duplicate_at: float = 0.9) -> dict:  # fmt: skip
    """Learned features, duplicates, splits and absorption against the planted answer, counting only
    latents that fire in `codes` ([samples, n_latents], the SAE's codes of `planted.x`).

    - `learned` [n]: the feature's best firing latent has cosine >= `threshold`;
    - `latents_per_feature` [n]: firing latents within `split_at` of the feature; a feature with two
      or more is `duplicated` when those latents are near-copies of each other (pairwise cosine >=
      `duplicate_at`: one direction written twice) and `split` when they point different ways
      (e.g. one the child alone, one the child with its parent); `missing` when it has none;
    - `dead_share`: latents that never fire in `codes`; `dead_copies`: how many of those sit within
      `split_at` of a feature (a decoder row on the answer that explains nothing);
    - `parents`: per parent, its best cosine, whether it was learned, its `absorption` (the share of
      its samples on which its latent is silent; only for a learned parent, NaN otherwise: an
      unlearned parent has no latent to fall silent), and the children's `lean` towards it (cosine of
      each child's best latent with the parent) beside the `planted_lean` (the child's own direction's
      cosine with the parent): a child latent that absorbed its parent leans more than its feature does;
    - `mean_absorption` over learned parents (NaN when none was learned), `n_learned_parents`, and
      `silence_baseline`: `_silence_baseline` over the learned features outside the hierarchy."""
    codes = codes.detach()
    live = firing(codes)
    cos = cosines(w_dec, planted.dirs)
    best, idx = best_match(w_dec, planted.dirs, live)
    learned = best >= threshold
    match = (cos >= split_at) & live.view(1, -1)
    unit = torch.nn.functional.normalize(w_dec.detach().float(), dim=1)
    per, duplicated, split = match.sum(1), [], []
    for f in range(len(planted.dirs)):
        rows = torch.nonzero(match[f]).flatten()
        if len(rows) >= 2:
            pair = unit[rows] @ unit[rows].T
            (duplicated if bool((pair >= duplicate_at).all()) else split).append(f)
    n = len(planted.dirs)
    in_hierarchy = {p for p in planted.parents} | {c for cs in planted.parents.values() for c in cs}
    parents = []
    for p, kids in planted.parents.items():
        on = planted.coef[:, p] > 0
        lean = [float(cos[p, idx[c]]) if bool(live.any()) else float("nan") for c in kids]
        planted_lean = [float(planted.dirs[p].float() @ planted.dirs[c].float()) for c in kids]
        absorbed = float((codes[on, idx[p]] <= 0).float().mean()) if bool(learned[p]) and bool(on.any()) else math.nan
        parents.append({"parent": p, "best_cosine": float(best[p]), "learned": bool(learned[p]), "absorption": absorbed,
                        "lean": float(np.mean(lean)), "planted_lean": float(np.mean(planted_lean))})  # fmt: skip
    learned_parents = [r["parent"] for r in parents if r["learned"]]
    outside = [f for f in range(n) if f not in in_hierarchy and bool(learned[f])]
    absorption = float(np.mean([r["absorption"] for r in parents if r["learned"]])) if learned_parents else math.nan
    return {
        "learned": learned.numpy(),
        "share_found": float(learned.float().mean()),
        "latents_per_feature": per.numpy(),
        "share_duplicated": len(duplicated) / n,
        "share_split": len(split) / n,
        "share_missing": float((per == 0).float().mean()),
        "dead_share": float((~live).float().mean()),
        "dead_copies": int(((cos >= split_at) & ~live.view(1, -1)).any(0).sum()),
        "parents": parents,
        "n_learned_parents": len(learned_parents),
        "mean_absorption": absorption,
        "silence_baseline": _silence_baseline(codes, planted, idx, outside, learned_parents),
        "lean_excess": float(np.mean([r["lean"] - r["planted_lean"] for r in parents])) if parents else math.nan,
    }


def pca_match(x: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Per planted direction, its best |cosine| among the principal directions of `x` [samples, d]. [n]"""
    pcs = torch.linalg.svd(x - x.mean(0), full_matrices=False).Vh
    return (torch.nn.functional.normalize(dirs.float(), dim=1) @ pcs.T).abs().max(dim=1).values


def axis_match(dirs: torch.Tensor) -> torch.Tensor:
    """Per planted direction, its best |cosine| with a coordinate axis. [n]"""
    return torch.nn.functional.normalize(dirs.float(), dim=1).abs().max(dim=1).values


def random_basis_match(dirs: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Per planted direction, its best |cosine| with a random orthonormal basis: the chance level
    for any method that returns d orthogonal directions. [n]"""
    q, _ = torch.linalg.qr(torch.randn(dirs.shape[1], dirs.shape[1], generator=torch_generator(seed, "chance-basis")))
    return (torch.nn.functional.normalize(dirs.float(), dim=1) @ q).abs().max(dim=1).values


def pca_limits(d: int = 32, n_samples: int = 20_000, p_active: float = 0.05, seed: int = 0) -> list[dict]:
    """PCA on planted data, case by case: median best |cosine| of the features with a principal
    direction, a coordinate axis, and a random orthonormal basis (chance).

    - more features than dimensions (2d), as many (d), half as many (d/2), all random directions with
      equal variance;
    - d/2 orthogonal features with equal variance, then with variances spread over a factor of 100."""
    g = torch_generator(seed, "pca-cases")
    rows = []
    for name, n, orthogonal, spread in (("2d random features (superposition)", 2 * d, False, False),
                                        ("d random features", d, False, False),
                                        ("d/2 random features", d // 2, False, False),
                                        ("d/2 orthogonal features, equal variance", d // 2, True, False),
                                        ("d/2 orthogonal features, variances 1 to 100", d // 2, True, True)):  # fmt: skip
        if orthogonal:
            dirs = torch.linalg.qr(torch.randn(d, d, generator=g))[0].T[:n].contiguous()
        else:
            dirs = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)
        on = torch.rand(n_samples, n, generator=g) < p_active
        coef = on * (0.5 + torch.rand(n_samples, n, generator=g))
        if spread:
            coef = coef * torch.logspace(0, 1, n)  # standard deviations 1 to 10: variances 1 to 100
        x = coef @ dirs
        rows.append({"case": name, "features": n, "dims": d, "PCA": float(pca_match(x, dirs).median()),
                     "coordinate axis": float(axis_match(dirs).median()),
                     "random basis (chance)": float(random_basis_match(dirs, seed).median())})  # fmt: skip
    return rows
