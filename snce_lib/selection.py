"""Finding the concept neuron: modulated frequency scoring (SNCE eqs. 4-7) and two baselines.

Given TopK codes of concept prompts and of their deconcept twins:

    Z_norm = Z / ||Z||_2                        per position, over latents       (BOS excluded)
    f_i    = sum_j 1[Z_norm[i, j] > 0]                                           (eq. 4)
    s_i    = f_i * (1/N) sum_j Z_norm[i, j]                                      (eq. 5)
    keep i with s^c_i > 0 and s^d_i = 0                                          (eq. 6)
    R_C    = top-k of the kept ones by s^c                                       (eq. 7)

Options the paper leaves open (method doc §3):
- `pooling="pooled"` (default) pools all positions of all concept (resp. deconcept)
  prompts; `"per_pair"` applies the filter inside each pair and keeps neurons that pass
  in at least `pair_pass_share` of the pairs, ranked by their mean per-pair s^c.
- `include_padding=True` (default) counts padding positions, since the UNet sees them.
- `max_deconcept_share=0.0` (default, the paper's filter) rejects a neuron that fires on
  even one deconcept position; a small tolerance keeps well-trained concept latents that
  fire on a stray token, and is what makes selection stable on small SAEs.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .features import PromptCodes, firing_frequency, prompt_codes
from .io import atomic_write_json
from .prompts import PromptFileError, read_table, require_columns
from .resources import data_path
from .sae import TopKSAE, fingerprint



class SelectionError(ValueError):
    """A selection that cannot be used: unknown concept, bound to another SAE, no candidate."""


@dataclass
class ConceptPairs:
    name: str
    concept_prompts: list[str]
    deconcept_prompts: list[str]
    tuple_words: list[str] = field(default_factory=list)

    @property
    def tuple_prompt(self) -> str:
        return ", ".join(self.tuple_words)


def known_concepts() -> list[str]:
    return sorted(p.name[: -len("_pairs.csv")] for p in data_path("concepts").glob("*_pairs.csv"))


def load_concept(spec: str | os.PathLike) -> ConceptPairs:
    """A concept by name (package data: concepts/NAME_pairs.csv + NAME_tuple.txt) or a pairs CSV path.

    A pairs CSV has columns `concept_prompt,deconcept_prompt`; RECE's Ring-A-Bell-style file
    (`sensitive prompt`, `normal prompt`) is read too. A tuple file beside it is optional.
    """
    path = Path(spec)
    if not path.suffix:
        path = data_path("concepts", f"{spec}_pairs.csv")
        if not path.exists():
            raise SelectionError(f"unknown concept {spec!r}; known: {', '.join(known_concepts())}, or give a pairs CSV")
    df = read_table(path)
    cols = ("concept_prompt", "deconcept_prompt")
    if "sensitive prompt" in df.columns and "normal prompt" in df.columns:
        df = df.rename(columns={"sensitive prompt": cols[0], "normal prompt": cols[1]})
    require_columns(df, cols, path)
    df = df.dropna(subset=list(cols))
    if df.empty:
        raise PromptFileError(f"{path} holds no concept pairs")
    name = path.name[: -len("_pairs.csv")] if path.name.endswith("_pairs.csv") else path.stem
    tfile = path.with_name(f"{name}_tuple.txt")
    words = [w.strip() for w in tfile.read_text().split(",") if w.strip()] if tfile.exists() else []
    return ConceptPairs(name, df[cols[0]].astype(str).tolist(), df[cols[1]].astype(str).tolist(), words)


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
    pair_pass_share: float = 0.5,
) -> FrequencyScores:
    """SNCE's score and filter. Returns data; pick the winners with `.top(k)`."""
    if pooling not in ("pooled", "per_pair"):
        raise ValueError(f"pooling must be 'pooled' or 'per_pair', got {pooling!r}")
    mc, md = concept.mask(include_padding), deconcept.mask(include_padding)
    f_c, s_c, n_c = _f_s(concept, mc)
    f_d, s_d, n_d = _f_s(deconcept, md)
    opts = {"method": "modulated_frequency", "include_padding": include_padding,
            "max_deconcept_share": max_deconcept_share, "pooling": pooling}
    if pooling == "pooled":
        ok = (s_c > 0) & ((f_d / max(n_d, 1)) <= max_deconcept_share) if max_deconcept_share > 0 else (s_c > 0) & (s_d == 0)
        cand = np.flatnonzero(ok)
        rank = cand[np.argsort(-s_c[cand], kind="stable")]
    else:
        if len(concept.prompts) != len(deconcept.prompts):
            raise SelectionError("per-pair scoring needs as many deconcept prompts as concept prompts")
        passes = np.zeros(len(s_c))
        score = np.zeros(len(s_c))
        for p in range(len(concept.prompts)):
            fc, sc, _ = _f_s(concept, _only_prompt(mc, p))
            fd, sd, nd = _f_s(deconcept, _only_prompt(md, p))
            good = (sc > 0) & ((fd / max(nd, 1)) <= max_deconcept_share if max_deconcept_share > 0 else sd == 0)
            passes += good
            score += np.where(good, sc, 0.0)
        share = passes / len(concept.prompts)
        cand = np.flatnonzero(share >= pair_pass_share)
        mean_score = score / np.maximum(passes, 1)
        rank = cand[np.argsort(-mean_score[cand], kind="stable")]
        opts["pair_pass_share"] = pair_pass_share
    return FrequencyScores(f_c, s_c, f_d, s_d, n_c, n_d, cand, rank, opts)


def mean_difference(concept: PromptCodes, deconcept: PromptCodes, include_padding: bool = True) -> np.ndarray:
    """Baseline: neurons ranked by mean normalised activation on concept minus deconcept positions."""
    diff = _mean_normalised(concept, include_padding) - _mean_normalised(deconcept, include_padding)
    return np.argsort(-diff, kind="stable")


def itd_contrast(words: PromptCodes, retain: PromptCodes, top_features: int = 32) -> np.ndarray:
    """Baseline in the style of Interpret-then-Deactivate: the concept words' top features
    minus the retain prompts' top features, ranked by activation on the words.

    `words` are codes of the concept words (one word a prompt); only their real tokens count.
    """
    zw, zr = _mean_code(words), _mean_code(retain)
    concept_top = np.argsort(-zw, kind="stable")[:top_features]
    retain_top = set(np.argsort(-zr, kind="stable")[:top_features].tolist())
    return np.array([i for i in concept_top if i not in retain_top and zw[i] > 0], dtype=int)


def _mean_code(codes: PromptCodes) -> np.ndarray:
    """Mean code over the real tokens, per latent. [n_latents]"""
    _, total, n = codes.latent_sums(codes.real)
    return total / max(n, 1)


@dataclass
class Selection:
    """Chosen neurons, bound to the SAE that produced them."""

    concept: str
    neurons: list[int]
    method: str
    options: dict
    sae_fingerprint: str
    scores: list[float] = field(default_factory=list)
    tuple_words: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, {"kind": "snce-selection", **asdict(self)})

    @classmethod
    def load(cls, path: str | os.PathLike, sae: TopKSAE | None = None) -> "Selection":
        from .io import read_json

        try:
            raw = read_json(path, "neurons file")
        except (OSError, ValueError) as exc:
            raise SelectionError(str(exc)) from None
        if raw.get("kind") != "snce-selection":
            raise SelectionError(f"{path} is not a neurons file written by `snce select`")
        neurons = raw.get("neurons")
        if (not isinstance(neurons, list) or not neurons
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in neurons)):
            raise SelectionError(f"neurons file {path}: `neurons` must be a non-empty list of whole numbers, "
                                 f"got {neurons!r}")
        if not isinstance(raw.get("sae_fingerprint"), str) or not isinstance(raw.get("options", {}), dict):
            raise SelectionError(f"neurons file {path} is damaged or hand-edited; select again with `snce select`")
        try:
            sel = cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})
        except TypeError as exc:
            raise SelectionError(f"neurons file {path} is incomplete ({exc}); select again with `snce select`") from None
        if sae is not None:
            sel.check(sae)
        return sel

    def check(self, sae: TopKSAE) -> None:
        fp = fingerprint(sae)
        if fp != self.sae_fingerprint:
            raise SelectionError(
                f"these neurons were chosen on SAE {self.sae_fingerprint}, not on this one ({fp}); "
                "select again with this SAE"
            )
        bad = [n for n in self.neurons if not 0 <= n < sae.cfg.n_latents]
        if bad:
            raise SelectionError(f"neurons {bad} are outside this SAE's {sae.cfg.n_latents} latents")


def select_neurons(
    encoder,
    sae: TopKSAE,
    concept: ConceptPairs,
    top_k: int = 1,
    method: str = "modulated_frequency",
    include_padding: bool = True,
    max_deconcept_share: float = 0.0,
    pooling: str = "pooled",
    pair_pass_share: float = 0.5,
    itd_top_features: int = 32,
    background: Sequence[str] | None = None,
) -> tuple[Selection, dict]:
    """Score `concept` on `sae` and pick `top_k` neurons. Returns (selection, details as data).

    `background` prompts (optional) give each winner's overall firing frequency, the check
    that a winner is not a rare latent with no meaning.
    """
    cc = prompt_codes(encoder, sae, concept.concept_prompts)
    dc = prompt_codes(encoder, sae, concept.deconcept_prompts)
    details: dict = {}
    if method == "modulated_frequency":
        sc = modulated_frequency(cc, dc, include_padding, max_deconcept_share, pooling, pair_pass_share)
        if len(sc.ranking) == 0:
            raise SelectionError(
                f"no neuron passes the filter for {concept.name!r} ({sc.options}); "
                "raise max_deconcept_share or train the SAE longer"
            )
        neurons = sc.top(top_k)
        scores = [float(sc.s_c[i]) for i in neurons]
        opts = sc.options
        details = {"scores": sc, "n_candidates": int(len(sc.candidates))}
    elif method == "mean_difference":
        order = mean_difference(cc, dc, include_padding)
        neurons = [int(i) for i in order[:top_k]]
        diff = _mean_normalised(cc, include_padding) - _mean_normalised(dc, include_padding)
        scores = [float(diff[i]) for i in neurons]
        opts = {"method": method, "include_padding": include_padding}
    elif method == "itd":
        if not concept.tuple_words:
            raise SelectionError(f"concept {concept.name!r} has no word tuple, which the itd baseline needs")
        wc = prompt_codes(encoder, sae, concept.tuple_words)
        order = itd_contrast(wc, dc, itd_top_features)
        if len(order) == 0:
            raise SelectionError("the itd contrast left no feature; raise itd_top_features")
        neurons = [int(i) for i in order[:top_k]]
        zw = _mean_code(wc)
        scores = [float(zw[i]) for i in neurons]
        opts = {"method": method, "top_features": itd_top_features, "retain": "deconcept prompts"}
    else:
        raise SelectionError(f"unknown method {method!r}; use modulated_frequency, mean_difference or itd")
    stats = {
        "concept_firing_share": [float(firing_frequency(cc, include_padding)[i]) for i in neurons],
        "deconcept_firing_share": [float(firing_frequency(dc, include_padding)[i]) for i in neurons],
    }
    if "n_candidates" in details:
        stats["n_candidates"] = details["n_candidates"]
    if background is not None:
        bc = prompt_codes(encoder, sae, list(background))
        freq = firing_frequency(bc, include_padding)
        stats["background_firing_share"] = [float(freq[i]) for i in neurons]
        details["background_codes"] = bc
    sel = Selection(concept.name, neurons, opts["method"], opts, fingerprint(sae), scores, concept.tuple_words, stats)
    details.update(concept_codes=cc, deconcept_codes=dc)
    return sel, details


def detector_scores(encoder, sae: TopKSAE, neurons: Sequence[int], prompts: Sequence[str], include_padding: bool = True) -> np.ndarray:
    """The neuron as a detector: per prompt, max over positions of its activation."""
    return prompt_codes(encoder, sae, prompts).max_activation(neurons, include_padding)[0]


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve; ties count half (Mann-Whitney U)."""
    from scipy.stats import rankdata

    allv = np.concatenate([pos, neg])
    r = rankdata(allv)
    n1, n0 = len(pos), len(neg)
    return float((r[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
