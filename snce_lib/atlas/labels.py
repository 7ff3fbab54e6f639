"""A name for every feature, from data alone, with a measured quality.

The atlas's prompts are split once (`label_split`): duplicates are dropped, then the distinct
prompts alternate between a half that makes labels and a half that scores them, so no prompt is on
both sides. Everything a label is made from comes from the first half: each feature's kind
(`concepts.positions.feature_kinds`, where it is strong) and its words.

A feature's label is the whole words (word pieces joined: "brutally", not "brut / -ally") on which
it is among a position's 4 strongest features, counted on the label half, taken from positions of
the feature's own kind (a content feature is named by content words, a padding feature by "[PAD]").
Its **trigger**, the word where it fires hardest, is kept even when it is of another kind: a nudity
feature that peaks on "wearing **nothing**" is labelled "nude, bare, naked, nothing (function word)".
Its **score** says how well those words predict where it fires strongly on the other half: the F1
of "this position's word is one of the label's words" against "the feature is among this position's
4 strongest", 2 TP / (positions with a label word + positions where it is strong). 1 is a perfect
word detector; a feature that fires on a context rather than a word scores low, and the card says so.

Labels are saved as JSON beside the atlas's SAE, so notebooks load them instead of recounting.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from snce_lib.atlas.map import Atlas
from snce_lib.concepts.positions import CONTENT, END_PAD, FUNCTION, KINDS, STRONG, FeatureKinds, feature_kinds
from snce_lib.io import atomic_write_json, read_json

#: Below this share of positions a feature is "rare": its label rests on a handful of tokens.
RARE_BELOW = 1e-4


@dataclass
class FeatureLabel:
    feature: int
    label: str
    status: str
    """"live", "rare" or "dead" (never fires on the sample)."""
    frequency: float
    top_tokens: list = field(default_factory=list)
    """[(whole word, count)] of the words it is strongest on, most first."""
    specific: list = field(default_factory=list)
    """The label's words, most first."""
    kind: str = "content"
    """Where its strongest firings fall (`positions.feature_kinds`): "content", "function", "end_pad" or "dead"."""
    score: float | None = None
    """The label's F1 on prompts not used to make it (None: nothing to score)."""
    trigger: str | None = None
    """The word (not the end token or padding) of its largest activation on the label half."""
    function_words: list = field(default_factory=list)
    """The label's words that are function words (marked in the label of a feature of another kind)."""
    held_out: int = 0
    """How many prompts the score was measured on."""


def clean(token: str) -> str:
    """A token as a reader writes it: no BPE end-of-word mark; a WordPiece continuation ("##ing")
    shown as a suffix ("-ing")."""
    t = token.replace("</w>", "").strip()
    t = "-" + t[2:] if t.startswith("##") and len(t) > 2 else t
    return t or token


def label_split(prompts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(make, test) masks over the prompts: each distinct prompt once (later copies are in neither
    half), the distinct prompts alternating between the half that makes labels and the half that
    scores them. One distinct prompt: both halves are it (nothing is left to score on)."""
    first: dict[str, int] = {}
    for i, p in enumerate(prompts):
        first.setdefault(p, i)
    keep = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    make, test = np.zeros(len(prompts), dtype=bool), np.zeros(len(prompts), dtype=bool)
    make[keep[0::2]] = True
    test[keep[1::2]] = True
    return (make, make.copy()) if len(keep) == 1 else (make, test)


def label_kinds(atlas: Atlas) -> FeatureKinds:
    """Each feature's kind, from the label half of the atlas's prompts (`label_split`)."""
    make = label_split(atlas.codes.prompts)[0]
    return feature_kinds(atlas.codes, atlas.words, make, peaks=atlas.peaks().of_prompts(make))


def strong_pairs(atlas: Atlas, prompts: np.ndarray | None = None,
                 strong: int | None = STRONG) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """(feature, word, count) of every (feature, whole word) where the feature is among a position's
    `strong` largest activations (None: wherever it fires), over the given prompts (default all),
    every position included."""
    f, w, c, _ = strong_peaks(atlas, prompts, strong)
    return f, w, c


def strong_peaks(atlas: Atlas, prompts: np.ndarray | None = None, strong: int | None = STRONG):
    """`strong_pairs` and, per pair, the largest activation among those firings."""
    codes, words = atlas.codes, atlas.words
    sel = torch.ones(len(codes.prompts), dtype=torch.bool) if prompts is None else torch.from_numpy(prompts)
    mask = codes.mask() & sel.view(-1, 1)
    vals, idx = codes.values[mask], codes.indices[mask].long()
    order = torch.argsort(vals, dim=1, descending=True)[:, : (strong or vals.shape[1])]
    top_v, top_i = vals.gather(1, order), idx.gather(1, order)
    w = torch.from_numpy(words.word.astype(np.int64))[mask].unsqueeze(1).expand_as(top_i)
    on = top_v > 0
    nv = len(words.vocabulary)
    pair, inverse, count = torch.unique(top_i[on] * nv + w[on], return_inverse=True, return_counts=True)
    peak = torch.zeros(len(pair), dtype=top_v.dtype).scatter_reduce(0, inverse, top_v[on], "amax")
    return pair // nv, pair % nv, count, peak


def word_totals(atlas: Atlas, prompts: np.ndarray | None = None) -> np.ndarray:
    """How many positions (of the given prompts) hold each whole word. [vocabulary]"""
    codes, words = atlas.codes, atlas.words
    sel = np.ones(len(codes.prompts), dtype=bool) if prompts is None else prompts
    mask = codes.mask().numpy() & sel[:, None]
    return np.bincount(words.word[mask], minlength=len(words.vocabulary))


def label_features(atlas: Atlas, n_words: int = 3, n_tokens: int = 5, rare_below: float = RARE_BELOW,
                   kinds: FeatureKinds | None = None) -> list[FeatureLabel]:  # fmt: skip
    """One scored label a feature: named on one half of the distinct prompts, scored on the other
    (`label_split`). `kinds` must come from the label half (`label_kinds`, the default)."""
    words = atlas.words
    make, test = label_split(atlas.codes.prompts)
    kinds = kinds or feature_kinds(atlas.codes, words, make)
    f_all, w_all, c_all, p_all = (t.numpy() for t in strong_peaks(atlas, make))
    f_te, w_te, c_te = (t.numpy() for t in strong_pairs(atlas, test))
    totals_te = word_totals(atlas, test)
    strong_te = np.bincount(f_te, weights=c_te, minlength=atlas.n_latents)
    held = {}
    for f, w, c in zip(f_te.tolist(), w_te.tolist(), c_te.tolist()):
        held[(f, w)] = c
    word_kind = _word_kinds(words)
    trigger = _triggers(f_all, w_all, p_all, atlas.n_latents, word_kind)
    order = np.lexsort((-c_all, f_all))
    f_all, w_all, c_all = f_all[order], w_all[order], c_all[order]
    starts = np.searchsorted(f_all, np.arange(atlas.n_latents + 1))
    n_test = int(test.sum())
    weak = None  # features never among a position's strongest: named by where they fire at all
    labels = []
    for f in range(atlas.n_latents):
        freq = float(atlas.frequency[f])
        kind = "dead" if kinds.kind[f] < 0 else KINDS[kinds.kind[f]]
        lo, hi = int(starts[f]), int(starts[f + 1])
        if kind == "dead":
            labels.append(FeatureLabel(f, "dead (silent on the label half of this sample)", "dead", freq, kind="dead"))
            continue
        ws, cs = w_all[lo:hi], c_all[lo:hi]
        is_weak = hi == lo
        if is_weak:
            if weak is None:
                fw, ww, cw = (t.numpy() for t in strong_pairs(atlas, make, strong=None))
                o = np.lexsort((-cw, fw))
                weak = (fw[o], ww[o], cw[o], np.searchsorted(fw[o], np.arange(atlas.n_latents + 1)))
            a, b = int(weak[3][f]), int(weak[3][f + 1])
            ws, cs = weak[1][a:b], weak[2][a:b]
        top = [(words.vocabulary[w], int(c)) for w, c in zip(ws[:n_tokens], cs[:n_tokens])]
        own = [w for w in ws if word_kind[w] == kinds.kind[f]] or list(ws)
        chosen = list(own[:n_words])
        t = int(trigger[f])
        if t >= 0 and t not in chosen:  # the word it fires hardest on, whatever its kind
            chosen.append(t)
        score = None
        if chosen and strong_te[f] + sum(totals_te[w] for w in chosen) > 0:
            tp = sum(held.get((f, w), 0) for w in chosen)
            score = round(float(2 * tp / (totals_te[chosen].sum() + strong_te[f])), 4)
        names = [words.vocabulary[w] for w in chosen]
        fn = [words.vocabulary[w] for w in chosen if word_kind[w] == FUNCTION]
        shown = [f"{w} (function word)" if w in fn and kind != "function" else w for w in names]
        status = "rare" if freq < rare_below else "live"
        text = ", ".join(shown) if status == "live" else f"rare: {', '.join(shown)}"
        if is_weak:  # a label of where it fires at all; as a word detector of its strong firings it scores 0
            text = f"weak: {', '.join(shown)}" if names else "weak: fires only on the prompts that make no label"
        labels.append(FeatureLabel(f, text, status, freq, top, names, kind, score,
                                   words.vocabulary[t] if t >= 0 else None, fn, n_test))  # fmt: skip
    return labels


def _triggers(feature: np.ndarray, word: np.ndarray, peak: np.ndarray, n_latents: int,
              word_kind: np.ndarray) -> np.ndarray:  # fmt: skip
    """Per feature, the word (not the end token or padding) of its largest strong activation; -1: none."""
    keep = word_kind[word] != END_PAD
    f, w, v = feature[keep], word[keep], peak[keep]
    order = np.lexsort((-v.astype(np.float64), f))  # feature, then strongest first
    f, w = f[order], w[order]
    out = np.full(n_latents, -1, dtype=np.int64)
    first = np.unique(f, return_index=True)
    out[first[0]] = w[first[1]]
    return out


def _word_kinds(words) -> np.ndarray:
    """The kind of each whole word (the first position it was seen at decides; "[PAD]" and "[END]",
    the first two, are end-or-padding)."""
    out = np.full(len(words.vocabulary), CONTENT, dtype=np.int64)
    flat_w, flat_k = words.word.ravel(), words.kind.ravel()
    first = np.unique(flat_w, return_index=True)
    out[first[0]] = flat_k[first[1]]
    out[:2] = END_PAD
    return out


def word_features(atlas: Atlas, per_word: int = 10) -> dict[str, list[tuple[int, float]]]:
    """Whole word -> [(feature, F1)] of the features it predicts best, for search: ranked by the F1 of
    that one word as the feature's label (2 x strong firings on the word / (the word's positions +
    the feature's strong firings)). Raw counts would put the busiest features first (on the offline
    SAE, "red" once led with a feature labelled "lighting, moody, light"). Computed once an atlas."""
    if "word_features" in atlas.cache:
        return atlas.cache["word_features"]
    f, w, c = (t.numpy() for t in strong_pairs(atlas))
    totals = word_totals(atlas)
    strong = np.bincount(f, weights=c, minlength=atlas.n_latents)
    f1 = 2 * c / (totals[w] + strong[f])
    out: dict[str, list[tuple[float, int]]] = {}
    for fi, wi, s in zip(f.tolist(), w.tolist(), f1.tolist()):
        out.setdefault(atlas.words.vocabulary[wi], []).append((s, fi))
    index = {word: [(fi, round(s, 4)) for s, fi in sorted(v, reverse=True)[:per_word]] for word, v in out.items()}
    atlas.cache["word_features"] = index
    return index


def save_labels(labels: list[FeatureLabel], path: str | os.PathLike) -> None:
    atomic_write_json(path, {"kind": "snce-feature-labels", "labels": [asdict(x) for x in labels]})


def load_labels(path: str | os.PathLike) -> list[FeatureLabel]:
    raw = read_json(path, "feature labels")
    if raw.get("kind") != "snce-feature-labels" or not isinstance(raw.get("labels"), list):
        raise ValueError(f"{path} is not a feature-labels file written by snce (label the atlas again)")
    return [FeatureLabel(**{**x, "top_tokens": [tuple(p) for p in x["top_tokens"]]}) for x in raw["labels"]]


def describe(labels: list[FeatureLabel]) -> str:
    """One line: how many features are live, rare and dead, and how good the content labels are."""
    n = {s: sum(x.status == s for x in labels) for s in ("live", "rare", "dead")}
    scores = [x.score for x in labels if x.kind == "content" and x.score is not None]
    med = f"; content labels' median score (F1 on held-out prompts) {np.median(scores):.2f}" if scores else ""
    return f"{n['live']} live, {n['rare']} rare (< {RARE_BELOW:.0e} of positions), {n['dead']} dead (silent on the label half) of {len(labels)}{med}"


def with_label(f: int, labels: list[FeatureLabel] | None) -> str:
    """ "#1081 (any, nothing; F1 0.41)": a neuron id always with its label and the label's score."""
    if not labels:
        return f"#{int(f)}"
    lab = labels[int(f)]
    score = f"; F1 {lab.score:.2f}" if lab.score is not None else ""
    kind = "" if lab.kind == "content" else f"; {lab.kind.replace('_', '/')}"
    return f"#{int(f)} ({lab.label}{score}{kind})"
