"""A name for every feature, from data alone: the tokens it fires on (with counts) and the words
most specific to it against the whole sample. Dead and rare features are marked as such.

Specificity is the log-lift of a token among the feature's firings over its share of all positions,
weighted by how often the feature fires on it, `c_f(t) * log((c_f(t) / n_f) / (c_all(t) / N))`, so
a word the feature fires on once does not outrank one it fires on a hundred times. Labels are
saved as JSON beside the atlas's SAE, so notebooks load them instead of recounting.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import torch

from snce_lib.atlas.map import Atlas
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
    """[(token, count)] of the tokens it fires on most, most first."""
    specific: list = field(default_factory=list)
    """The tokens most specific to it (see the module's formula), most specific first."""


def clean(token: str) -> str:
    """A token as a reader writes it: no BPE end-of-word mark; a WordPiece continuation ("##ing")
    shown as a suffix ("-ing")."""
    t = token.replace("</w>", "").strip()
    t = "-" + t[2:] if t.startswith("##") and len(t) > 2 else t
    return t or token


def token_lift(atlas: Atlas) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (feature f, token t) that fires: the count c_f(t) and its specificity
    c_f(t) log((c_f(t)/n_f) / (c_all(t)/N)): high when t is far more common among f's firings than
    among all N positions. Labels and the page's word search both rank by it."""
    codes = atlas.codes
    mask = codes.mask()
    tok = codes.token_ids[mask].long()
    vocab = int(tok.max()) + 1 if len(tok) else 1
    latent, token, count = codes.feature_token_counts()
    tok_total = torch.bincount(tok, minlength=vocab).double()
    n_f = torch.zeros(atlas.n_latents, dtype=torch.float64).index_add_(0, latent, count.double())
    c = count.double()
    return latent, token, count, c * torch.log((c / n_f[latent]) / (tok_total[token] / max(int(mask.sum()), 1)))


def label_features(
    atlas: Atlas, n_tokens: int = 5, n_words: int = 3, rare_below: float = RARE_BELOW
) -> list[FeatureLabel]:
    """One label a feature, counted over every position (padding included) of the atlas's sample."""
    latent, token, count, lift_all = token_lift(atlas)
    order = torch.argsort(latent * (count.max() + 1 if len(count) else 1) - count)  # by latent, then count descending
    latent, token, count, lift_all = latent[order], token[order], count[order], lift_all[order]
    starts = torch.searchsorted(latent, torch.arange(atlas.n_latents + 1))
    labels = []
    for f in range(atlas.n_latents):
        lo, hi = int(starts[f]), int(starts[f + 1])
        freq = float(atlas.frequency[f])
        if hi == lo:
            labels.append(FeatureLabel(f, "dead (never fires on this sample)", "dead", freq))
            continue
        t, c = token[lo:hi], count[lo:hi].double()
        top = [(clean(atlas.token(int(a))), int(b)) for a, b in zip(t[:n_tokens], c[:n_tokens])]
        lift = lift_all[lo:hi]
        best = torch.argsort(lift, descending=True)
        words = list(dict.fromkeys(clean(atlas.token(int(t[i]))) for i in best[: 3 * n_words]))[:n_words]
        status = "rare" if freq < rare_below else "live"
        label = ", ".join(words) if status == "live" else f"rare: {', '.join(words)}"
        labels.append(FeatureLabel(f, label, status, freq, top, words))
    return labels


def save_labels(labels: list[FeatureLabel], path: str | os.PathLike) -> None:
    atomic_write_json(path, {"kind": "snce-feature-labels", "labels": [asdict(x) for x in labels]})


def load_labels(path: str | os.PathLike) -> list[FeatureLabel]:
    raw = read_json(path, "feature labels")
    if raw.get("kind") != "snce-feature-labels" or not isinstance(raw.get("labels"), list):
        raise ValueError(f"{path} is not a feature-labels file written by snce (label the atlas again)")
    return [FeatureLabel(**{**x, "top_tokens": [tuple(p) for p in x["top_tokens"]]}) for x in raw["labels"]]


def describe(labels: list[FeatureLabel]) -> str:
    """One line: how many features are live, rare and dead."""
    n = {s: sum(x.status == s for x in labels) for s in ("live", "rare", "dead")}
    return f"{n['live']} live, {n['rare']} rare (< {RARE_BELOW:.0e} of positions), {n['dead']} dead of {len(labels)}"
