"""Ranking neurons for a concept: modulated frequency (SNCE eqs. 4-7) and two baselines, each a
function from the concept's codes to one `Ranking`.

Given TopK codes of concept prompts and of their deconcept twins:

    Z_norm = Z / ||Z||_2                        per position, over latents       (BOS excluded)
    f_i    = sum_j 1[Z_norm[i, j] > 0]                                           (eq. 4)
    s_i    = f_i * (1/N) sum_j Z_norm[i, j]                                      (eq. 5)
    keep i with s^c_i > 0 and s^d_i = 0                                          (eq. 6)
    R_C    = top-k of the kept ones by s^c                                       (eq. 7)

Options the paper leaves open (method doc §3):
- `pooling="pooled"` (default) pools all positions of all concept (resp. deconcept)
  prompts; `"per_pair"` scores each pair on its own, requires the filter in every pair, and
  ranks by the per-pair s^c averaged over the pairs.
- `min_coverage` (default 0) asks a neuron to fire in at least that share of the concept
  prompts, whatever word each uses.
- `include_padding=True` (default) counts padding positions, since the UNet sees them.
- `max_deconcept_share=0.0` (default, the paper's filter) rejects a neuron that fires on
  even one deconcept position; a small tolerance keeps well-trained concept latents that
  fire on a stray token, and is what makes selection stable on small SAEs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from snce_lib.concepts.codes import PromptCodes, prompt_codes
from snce_lib.concepts.pairs import ConceptPairs, SelectionError


@dataclass
class ConceptCodes:
    """The SAE codes every ranking method reads: concept prompts, their deconcept twins, and the
    concept's words one a prompt (for the ItD-style contrast; None without a tuple)."""

    concept: PromptCodes
    deconcept: PromptCodes
    words: PromptCodes | None = None


def concept_codes(encoder, sae, pairs: ConceptPairs) -> ConceptCodes:
    words = prompt_codes(encoder, sae, pairs.tuple_words) if pairs.tuple_words else None
    return ConceptCodes(
        prompt_codes(encoder, sae, pairs.concept_prompts), prompt_codes(encoder, sae, pairs.deconcept_prompts), words
    )


@dataclass
class Ranking:
    """One method's answer: neurons best first, the score of each, and the options that made it."""

    method: str
    neurons: np.ndarray
    scores: np.ndarray
    options: dict
    frequency: FrequencyScores | None = field(default=None, repr=False)
    """Modulated frequency's per-neuron arrays (eqs. 4-6), for plots; None for the baselines."""

    def top(self, k: int) -> list[int]:
        return [int(i) for i in self.neurons[:k]]

    def __len__(self) -> int:
        return len(self.neurons)


@dataclass
class FrequencyScores:
    """Everything eqs. 4-7 compute, per neuron ([n_latents] arrays), plus the outcome."""

    f_c: np.ndarray
    s_c: np.ndarray
    f_d: np.ndarray
    s_d: np.ndarray
    n_c: int
    n_d: int
    candidates: np.ndarray  # neurons passing the filter
    ranking: np.ndarray  # candidates, best first
    options: dict
    coverage: np.ndarray | None = None
    """Share of concept prompts each neuron fires in (at a counted position)."""
    rank_score: np.ndarray | None = None
    """What the ranking sorts by: s^c pooled, or the per-pair s^c averaged over pairs."""

    @property
    def share_d(self) -> np.ndarray:
        return self.f_d / max(self.n_d, 1)

    def top(self, k: int) -> list[int]:
        return [int(i) for i in self.ranking[:k]]


def _f_s(codes: PromptCodes, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray, int]:
    """eqs. 4-5 over the masked positions, on L2-normalised codes."""
    f, total, n = codes.latent_sums(mask, normalise=True)
    return f, f * total / max(n, 1), n


def _only_prompt(mask: torch.Tensor, p: int) -> torch.Tensor:
    one = torch.zeros_like(mask)
    one[p] = mask[p]
    return one


def _mean_normalised(codes: PromptCodes, include_padding: bool) -> np.ndarray:
    """Mean over positions of the L2-normalised code, per latent. [n_latents]"""
    _, total, n = codes.latent_sums(codes.mask(include_padding), normalise=True)
    return total / max(n, 1)


def modulated_frequency(
    concept: PromptCodes,
    deconcept: PromptCodes,
    include_padding: bool = True,
    max_deconcept_share: float = 0.0,
    pooling: str = "pooled",
    min_coverage: float = 0.0,
) -> FrequencyScores:
    """SNCE's score and filter. Returns data; pick the winners with `.top(k)`.

    - `pooling="pooled"` (the default): eqs. 4-7 over all positions of all concept (resp. deconcept)
      prompts; the filter is s^d = 0 (strict) or a deconcept firing share <= `max_deconcept_share`.
    - `pooling="per_pair"`: eqs. 4-5 inside each pair. The filter holds in **every** pair (strict: the
      neuron never fires on any deconcept twin; with a tolerance, no twin has more than
      `max_deconcept_share` of its positions firing), and survivors are ranked by s^c averaged over
      all pairs (a pair whose concept prompt leaves the neuron silent adds 0).
    - `min_coverage`: the share of concept prompts in which the neuron must fire at a counted
      position (0: at least one position anywhere, the paper's s^c > 0). A concept latent should
      fire whatever word a prompt uses; a high coverage keeps only those.
    """
    if pooling not in ("pooled", "per_pair"):
        raise ValueError(f"pooling must be 'pooled' or 'per_pair', got {pooling!r}")
    if not 0.0 <= max_deconcept_share <= 1.0 or not 0.0 <= min_coverage <= 1.0:
        raise SelectionError(
            f"need 0 <= max_deconcept_share <= 1 and 0 <= min_coverage <= 1, got {max_deconcept_share} and {min_coverage}"
        )
    mc, md = concept.mask(include_padding), deconcept.mask(include_padding)
    f_c, s_c, n_c = _f_s(concept, mc)
    f_d, s_d, n_d = _f_s(deconcept, md)
    opts = {
        "method": "modulated_frequency",
        "include_padding": include_padding,
        "max_deconcept_share": max_deconcept_share,
        "pooling": pooling,
        "min_coverage": min_coverage,
    }
    coverage = concept.fired_per_prompt(include_padding).float().mean(0).numpy().astype(np.float64)
    covered = coverage >= min_coverage if min_coverage > 0 else np.ones(len(s_c), dtype=bool)
    if pooling == "pooled":
        clean = (f_d / max(n_d, 1)) <= max_deconcept_share if max_deconcept_share > 0 else s_d == 0
        cand = np.flatnonzero((s_c > 0) & clean & covered)
        rank_score = s_c
        rank = cand[np.argsort(-s_c[cand], kind="stable")]
    else:
        if len(concept.prompts) != len(deconcept.prompts):
            raise SelectionError("per-pair scoring needs as many deconcept prompts as concept prompts")
        clean = np.ones(len(s_c), dtype=bool)
        score = np.zeros(len(s_c))
        for p in range(len(concept.prompts)):
            _, sc, _ = _f_s(concept, _only_prompt(mc, p))
            fd, sd, nd = _f_s(deconcept, _only_prompt(md, p))
            clean &= (fd / max(nd, 1)) <= max_deconcept_share if max_deconcept_share > 0 else sd == 0
            score += sc
        mean_score = score / len(concept.prompts)
        cand = np.flatnonzero((mean_score > 0) & clean & covered)
        rank_score = mean_score
        rank = cand[np.argsort(-mean_score[cand], kind="stable")]
    return FrequencyScores(f_c, s_c, f_d, s_d, n_c, n_d, cand, rank, opts, coverage, rank_score)


def rank_modulated_frequency(codes: ConceptCodes, **options) -> Ranking:
    """SNCE (eqs. 4-7): the filter's survivors ranked by s^c; `options` as `modulated_frequency` takes them."""
    sc = modulated_frequency(codes.concept, codes.deconcept, **options)
    return Ranking("modulated_frequency", sc.ranking, sc.rank_score[sc.ranking], sc.options, sc)


def rank_mean_difference(codes: ConceptCodes, include_padding: bool = True) -> Ranking:
    """Baseline: neurons ranked by mean normalised activation on concept minus deconcept positions (no filter)."""
    diff = _mean_normalised(codes.concept, include_padding) - _mean_normalised(codes.deconcept, include_padding)
    order = np.argsort(-diff, kind="stable")
    return Ranking(
        "mean_difference", order, diff[order], {"method": "mean_difference", "include_padding": include_padding}
    )


def rank_itd(codes: ConceptCodes, top_features: int = 32) -> Ranking:
    """Baseline in the style of Interpret-then-Deactivate: the concept words' top features minus the
    retain (deconcept) prompts' top features, ranked by activation on the words. Only the words'
    real tokens count."""
    if codes.words is None:
        raise SelectionError("the itd baseline needs the concept's word tuple, and this concept has none")
    zw, zr = _mean_code(codes.words), _mean_code(codes.deconcept)
    concept_top = np.argsort(-zw, kind="stable")[:top_features]
    retain_top = set(np.argsort(-zr, kind="stable")[:top_features].tolist())
    order = np.array([i for i in concept_top if i not in retain_top and zw[i] > 0], dtype=int)
    return Ranking(
        "itd", order, zw[order], {"method": "itd", "top_features": top_features, "retain": "deconcept prompts"}
    )


def prompt_max(codes: PromptCodes, include_padding: bool = True) -> np.ndarray:
    """Each latent's largest activation over each prompt's counted positions. [prompts, n_latents]"""
    on = codes.mask(include_padding).unsqueeze(-1).expand_as(codes.values)
    vals = torch.where(on, codes.values, torch.zeros_like(codes.values)).clamp_min(0)
    out = torch.zeros(len(codes.prompts), codes.n_latents)
    idx = codes.indices.long().reshape(len(codes.prompts), -1)
    out.scatter_reduce_(1, idx, vals.reshape(len(codes.prompts), -1), reduce="amax")
    return out.numpy().astype(np.float64)


def rank_max_contrast(codes: ConceptCodes, include_padding: bool = True) -> Ranking:
    """A plain lens: each latent's largest activation over a prompt's counted positions, averaged over
    the concept prompts, minus the same over the deconcept prompts. A latent that fires on every
    prompt (padding, "a") scores near 0 however often it fires, so a handful of examples is enough;
    frequency-weighted scores (eq. 5) favour exactly those latents on small example sets."""
    diff = prompt_max(codes.concept, include_padding).mean(0) - prompt_max(codes.deconcept, include_padding).mean(0)
    order = np.argsort(-diff, kind="stable")
    return Ranking("max_contrast", order, diff[order], {"method": "max_contrast", "include_padding": include_padding})


def rank_cover(codes: ConceptCodes, include_padding: bool = True, max_deconcept_share: float = 0.01,
               min_gain: int = 1) -> Ranking:  # fmt: skip
    """A family by coverage: the smallest set of latents (greedy set cover) whose union fires in every
    concept prompt it can, using only latents that pass the deconcept filter (firing on at most
    `max_deconcept_share` of deconcept positions; 0: never). Each step adds the latent that fires in
    the most concept prompts not yet covered (ties: the larger s^c); it stops when no latent adds
    `min_gain` prompts. The ranking is the cover in the order it was built, scored by the prompts each
    added; `options["coverage"]` is the share of concept prompts the whole cover fires in. A concept
    said in many words needs a latent per word: the cover names them, where top-1 names one."""
    fc = modulated_frequency(codes.concept, codes.deconcept, include_padding, max_deconcept_share)
    ok = np.zeros(codes.concept.n_latents, dtype=bool)
    ok[fc.candidates] = True
    fired = codes.concept.fired_per_prompt(include_padding).numpy()[:, ok]
    names = np.flatnonzero(ok)
    covered = np.zeros(len(fired), dtype=bool)
    order, gains = [], []
    while True:
        gain = fired[~covered].sum(0) if (~covered).any() else np.zeros(len(names))
        if not len(names) or gain.max() < min_gain:
            break
        best = np.flatnonzero(gain == gain.max())
        pick = best[np.argmax(fc.s_c[names[best]])]
        order.append(int(names[pick]))
        gains.append(float(gain[pick]))
        covered |= fired[:, pick]
    opts = {"method": "cover", "include_padding": include_padding, "max_deconcept_share": max_deconcept_share,
            "min_gain": min_gain, "coverage": float(covered.mean()) if len(covered) else 0.0}  # fmt: skip
    return Ranking("cover", np.array(order, dtype=int), np.array(gains), opts)


#: Every ranking method, by the name `select_neurons` and the CLI take.
METHODS: dict[str, Callable[..., Ranking]] = {
    "modulated_frequency": rank_modulated_frequency,
    "mean_difference": rank_mean_difference,
    "max_contrast": rank_max_contrast,
    "itd": rank_itd,
    "cover": rank_cover,
}

#: The comparison notebook 03 draws: the paper's strict filter, a 1% tolerance, and the baselines.
STANDARD_VARIANTS: dict[str, tuple[str, dict]] = {
    "SNCE strict": ("modulated_frequency", {}),
    "SNCE tol 1%": ("modulated_frequency", {"max_deconcept_share": 0.01}),
    "mean difference": ("mean_difference", {}),
    "ItD-style": ("itd", {}),
}


def rank(codes: ConceptCodes, method: str = "modulated_frequency", **options) -> Ranking:
    """`method`'s ranking of the concept; an option the method does not take is an error, not ignored."""
    import inspect

    if method not in METHODS:
        raise SelectionError(f"unknown method {method!r}; use {', '.join(METHODS)}")
    fn = METHODS[method] if method != "modulated_frequency" else modulated_frequency
    takes = [n for n in inspect.signature(fn).parameters if n not in ("codes", "concept", "deconcept")]
    wrong = sorted(set(options) - set(takes))
    if wrong:
        raise SelectionError(f"method {method} takes {', '.join(takes)}; not {', '.join(wrong)}")
    return METHODS[method](codes, **options)


def rank_variants(codes: ConceptCodes, variants: dict[str, tuple[str, dict]] | None = None) -> dict[str, Ranking]:
    """Every variant's ranking on the same codes. A variant that cannot run (ItD without a tuple) is left out."""
    out = {}
    for label, (method, options) in (variants or STANDARD_VARIANTS).items():
        try:
            out[label] = rank(codes, method, **options)
        except SelectionError:
            continue
    return out


def _mean_code(codes: PromptCodes) -> np.ndarray:
    """Mean code over the real tokens, per latent. [n_latents]"""
    _, total, n = codes.latent_sums(codes.real)
    return total / max(n, 1)
