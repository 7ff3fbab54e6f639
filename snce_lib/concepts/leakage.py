"""After erasure, can the concept still be read from what the UNet sees?

Erasure subtracts the chosen neurons' decoder directions. That removes what the SAE
attributes to those neurons, not necessarily the concept: if the concept is also carried by
other latents, or by the reconstruction error the edit keeps, a model reading the features
can still find it. Two checks, both cheap and both on the encoder alone (no images):

- `concept_latents`: how many latents are concept-specific (fire on most concept prompts and
  almost no others). One such latent is SNCE's premise; several mean the concept is spread
  over a family of co-firing latents, and erasing one of them leaves the rest.
- `probe_leakage` / `concept_leakage`: a linear probe on the encoder's final output
  (`prompt_embeds`), mean-pooled over the real tokens after BOS. It is trained on original
  features to tell concept prompts from others, then scores the erased features of prompts
  it never saw ("fixed probe": would a reader trained on the unedited model still see the
  concept?). A second probe is retrained on erased features ("retrained probe": is the
  information there at all?). Both are cross-fitted, so no prompt is scored by a probe
  trained on it.

Pooling skips BOS because the eraser never edits it (method doc §1); with a bidirectional
encoder (MiniLM) BOS carries the sentence, so including it would measure the BOS, not the edit.

Which positions after BOS (`positions`): "all" by default, padding included, because that is what
the UNet reads (SD v1.4 and both toy worlds cross-attend to every one of the padded positions; the
CLIP world's UNet reads shape from the end token and its padding, `benchmarks/where_read.py`) and
where every edit is applied. "real" pools the prompt's own tokens only (the earlier choice, kept
as an option: a reader that ignores padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from snce_lib.concepts.codes import PromptCodes
from snce_lib.concepts.detection import auroc_ci
from snce_lib.concepts.erase import Eraser
from snce_lib.models.encoders import TextEncoder


class LeakageError(ValueError):
    """Inputs the leakage checks cannot use."""


@dataclass
class Leakage:
    """Probe results. AUROC 0.5 means the probe cannot tell concept prompts from others."""

    auroc_before: float
    """Cross-validated probe on the original features (how readable the concept is to begin with)."""
    auroc_fixed_probe: float
    """The same probes scoring the erased features."""
    auroc_retrained: float
    """New probes trained and tested on the erased features."""
    called_before: float
    """Share of concept prompts the probe calls positive on the original features."""
    called_after: float
    """Share of concept prompts the same probe still calls positive after erasure."""
    n_concept: int
    n_other: int
    ci95_before: list | None = None
    """Bootstrap 95% intervals of the three AUROCs ([lo, hi]; `detection.auroc_ci`)."""
    ci95_fixed: list | None = None
    ci95_retrained: list | None = None

    def as_dict(self) -> dict:
        return asdict(self)


#: Positions pooled and fitted on by default: every one after BOS, as the UNet reads them.
POSITIONS = "all"


def check_positions(positions: str) -> None:
    if positions not in ("all", "real"):
        raise LeakageError(
            f"positions must be 'all' (padding included, as the UNet reads) or 'real', got {positions!r}"
        )


def position_mask(attention_mask: torch.Tensor, positions: str = POSITIONS, start: int = 1) -> torch.Tensor:
    """Which positions count, [batch, length] float: from `start` (after BOS), and (positions="real") not
    padding."""
    check_positions(positions)
    m = attention_mask.float().clone() if positions == "real" else torch.ones_like(attention_mask, dtype=torch.float)
    m[:, :start] = 0.0
    return m


@torch.no_grad()
def pooled_output(encoder: TextEncoder, prompts: Sequence[str], eraser=None, batch_size: int = 64,
                  positions: str = POSITIONS) -> np.ndarray:  # fmt: skip
    """Mean over the positions after BOS (`positions`: "all", padding included, or "real") of the
    encoder's final output, edited by `eraser` (the `Eraser` or any method of `concepts.methods`,
    through their common `embed`) if one is given. A method that rewrites the text (word removal)
    is pooled over its own tokens (`texts`). [prompts, width] float32"""
    prompts = list(prompts)
    if not prompts:
        raise LeakageError("the prompt list is empty")
    check_positions(positions)  # before any work
    out = []
    texts = getattr(eraser, "texts", None)
    for s in range(0, len(prompts), batch_size):
        batch = prompts[s : s + batch_size]
        toks = encoder.tokenize(texts(batch) if texts else batch)
        h = encoder.embed(toks) if eraser is None else eraser.embed(encoder, batch)[0]
        m = position_mask(toks.attention_mask, positions, encoder.start).to(h.device).unsqueeze(-1)
        out.append(((h.float() * m).sum(1) / m.sum(1).clamp_min(1.0)).cpu().numpy())
    return np.concatenate(out)


def _probe():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))


def probe_leakage(
    before_concept: np.ndarray,
    before_other: np.ndarray,
    after_concept: np.ndarray,
    after_other: np.ndarray,
    folds: int = 5,
    seed: int = 0,
) -> Leakage:
    """Linear-probe leakage from pooled features. Inputs: [n_concept, d], [n_other, d], and the
    same prompts' erased features in the same order."""
    bc, bo, ac, ao = (
        np.asarray(a, dtype=np.float64) for a in (before_concept, before_other, after_concept, after_other)
    )
    if bc.shape != ac.shape or bo.shape != ao.shape:
        raise LeakageError(
            f"before and after must hold the same prompts: {bc.shape} vs {ac.shape}, {bo.shape} vs {ao.shape}"
        )
    if bc.ndim != 2 or bo.ndim != 2 or bc.shape[1] != bo.shape[1]:
        raise LeakageError("features must be [prompts, width] with one width for both classes")
    if min(len(bc), len(bo)) < folds:
        raise LeakageError(
            f"need at least {folds} concept and {folds} other prompts (got {len(bc)} and {len(bo)}); "
            "give more prompts or fewer folds"
        )
    from sklearn.model_selection import StratifiedKFold

    x_b, x_a = np.concatenate([bc, bo]), np.concatenate([ac, ao])
    y = np.r_[np.ones(len(bc), dtype=int), np.zeros(len(bo), dtype=int)]
    s_before, s_fixed, s_re = (np.zeros(len(y)) for _ in range(3))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x_b, y):
        p = _probe().fit(x_b[train], y[train])
        s_before[test] = p.decision_function(x_b[test])
        s_fixed[test] = p.decision_function(x_a[test])
        s_re[test] = _probe().fit(x_a[train], y[train]).decision_function(x_a[test])
    pos = y == 1
    cis = [auroc_ci(sc[pos], sc[~pos], seed=seed) for sc in (s_before, s_fixed, s_re)]
    return Leakage(
        auroc_before=cis[0].auroc,
        auroc_fixed_probe=cis[1].auroc,
        auroc_retrained=cis[2].auroc,
        called_before=float((s_before[pos] > 0).mean()),
        called_after=float((s_fixed[pos] > 0).mean()),
        n_concept=int(pos.sum()),
        n_other=int((~pos).sum()),
        ci95_before=[cis[0].lo, cis[0].hi],
        ci95_fixed=[cis[1].lo, cis[1].hi],
        ci95_retrained=[cis[2].lo, cis[2].hi],
    )


def concept_leakage(
    encoder: TextEncoder,
    eraser: Eraser,
    concept_prompts: Sequence[str],
    other_prompts: Sequence[str],
    folds: int = 5,
    seed: int = 0,
    batch_size: int = 64,
) -> Leakage:
    """`probe_leakage` on the encoder's final output before and after `eraser`."""
    feats = [pooled_output(encoder, p, e, batch_size) for e in (None, eraser) for p in (concept_prompts, other_prompts)]
    return probe_leakage(feats[0], feats[1], feats[2], feats[3], folds, seed)


def concept_latents(
    concept: PromptCodes,
    other: PromptCodes,
    min_concept: float = 0.5,
    max_other: float = 0.05,
    include_padding: bool = True,
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Latents that fire (anywhere after BOS) in at least `min_concept` of the concept prompts and
    at most `max_other` of the others, most concept-wide first.

    Returns (latents, share of concept prompts each latent fires in, share of other prompts). [n_latents] each
    """
    if concept.n_latents != other.n_latents:
        raise LeakageError("the two code sets come from different SAEs")
    if not 0 <= max_other < min_concept <= 1:
        raise LeakageError(f"need 0 <= max_other < min_concept <= 1, got {max_other} and {min_concept}")

    def share(c: PromptCodes) -> np.ndarray:
        return c.fired_per_prompt(include_padding).float().mean(0).numpy()

    sc, so = share(concept), share(other)
    keep = np.flatnonzero((sc >= min_concept) & (so <= max_other))
    return [int(i) for i in keep[np.argsort(-sc[keep], kind="stable")]], sc, so
