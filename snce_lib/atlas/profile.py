"""What a feature's card and page show, as plain data: its label with the held-out score, an
activation-density histogram by kind of position, its top prompts and prompts from each quantile
band of its peaks, the features that co-fire with it, and the vocabulary tokens that light it alone.

Everything per feature is read from a few atlas-wide tables made once and kept in `atlas.cache`:
every firing grouped by feature (`positions.sorted_firings`: an exact sort, strongest first), each
prompt's peak (`positions.prompt_peaks`), the co-firing counts (`clusters.cofiring_counts`, the
counts the co-activation map is clustered on) and, when `explore` computed it, the vocabulary pass
(`vocab.vocabulary_top`, from `concepts.vocabulary`'s one pass).

Quantile bands follow Neuronpedia's: the prompts a feature fires in, ordered by their peak, are cut
into `BANDS` equal bands (0-25% the weakest); a band's examples are spread evenly over it, so a
reader sees what the feature does at every strength, not only at its strongest.
"""

from __future__ import annotations

import numpy as np

from snce_lib.atlas.labels import FeatureLabel, clean
from snce_lib.atlas.map import Atlas
from snce_lib.concepts.positions import KINDS, Firings

#: Quantile bands of a feature's prompts, by peak.
BANDS = 4
#: Bins of the activation-density histogram.
BINS = 20
#: Co-firing features a card lists.
N_COFIRE = 8


def firings(atlas: Atlas) -> Firings:
    """Every firing of the atlas, grouped by feature, strongest first (`Atlas.firings`)."""
    return atlas.firings()


def peaks(atlas: Atlas) -> Firings:
    """Each prompt's peak per feature, strongest first (`Atlas.peaks`)."""
    return atlas.peaks()


def cofire(atlas: Atlas, n: int = N_COFIRE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per feature, the `n` features that co-fire with it most at the word and end positions, by
    Jaccard (positions where both fire / positions where either does), which neither busy nor rare
    partners win by size alone: (partner ids, Jaccard, share of the feature's firings where the
    partner fires too), [n_latents, n] each, partner -1 where there are fewer. Made once an atlas,
    from the counts the co-activation clustering uses when `explore` has made them."""
    if "cofire" not in atlas.cache:
        from snce_lib.atlas.clusters import cofiring_counts

        counts = atlas.cache.pop("cofiring_counts", None)  # made by explore for clustering; not kept twice
        counts = cofiring_counts(atlas.codes) if counts is None else counts
        own = np.diag(counts).copy()
        union = own[:, None] + own[None, :] - counts
        jac = np.where(union > 0, counts / np.maximum(union, 1), 0.0)
        np.fill_diagonal(jac, 0.0)
        k = min(n, max(atlas.n_latents - 1, 1))
        part = np.argpartition(-jac, k - 1, axis=1)[:, :k] if atlas.n_latents > 1 else np.zeros((1, 0), int)
        rows = np.arange(atlas.n_latents)[:, None]
        order = np.argsort(-jac[rows, part], axis=1, kind="stable")
        ids = part[rows, order]
        j = jac[rows, ids]
        share = counts[rows, ids] / np.maximum(own[:, None], 1)
        ids = np.where(j > 0, ids, -1)
        atlas.cache["cofire"] = (ids, j, share)
    return atlas.cache["cofire"]


def density(atlas: Atlas, feature: int, bins: int = BINS) -> dict:
    """The feature's activations where it fires, in `bins` equal bins from 0 to its largest ("lo",
    "hi"), counted per kind of position (kinds where it never fires left out):
    {"lo", "hi", "bins", "counts": {kind: [bins]}, "firings"}."""
    fi = firings(atlas)
    sl = fi.of(feature)
    vals = fi.value[sl].astype(np.float64)
    if not len(vals):
        return {"lo": 0.0, "hi": 0.0, "bins": bins, "counts": {}, "firings": 0}
    kind = atlas.words.kind[fi.prompt[sl], fi.position[sl]]
    edges = np.linspace(0.0, float(vals.max()), bins + 1)
    counts = {
        k: np.histogram(vals[kind == i], bins=edges)[0].tolist() for i, k in enumerate(KINDS) if (kind == i).any()
    }
    return {"lo": 0.0, "hi": round(float(edges[-1]), 4), "bins": bins, "counts": counts, "firings": int(len(vals))}


def example(atlas: Atlas, feature: int, prompt: int, peak: float, position: int) -> dict:
    """One prompt for a card: its index, the feature's peak in it and where, and the feature's
    activation at every position where it is not zero (padding included), position -> value."""
    codes = atlas.codes
    per = (codes.values[prompt] * (codes.indices[prompt] == feature)).sum(-1)
    keep = (per > 0) & (codes.real[prompt] | codes.pad[prompt])
    acts = {int(j): round(float(per[j]), 3) for j in np.flatnonzero(keep.numpy())}
    return {"prompt": int(prompt), "peak": round(float(peak), 3), "position": int(position), "acts": acts}


def quantile_picks(n_prompts: int, bands: int = BANDS, per_band: int = 2, skip: int = 0) -> list[dict]:
    """For a feature firing in `n_prompts` prompts ordered strongest first, its quantile bands,
    strongest band first: {"band": "75-100%", "first", "last" (the band's ranks), "ranks" (picked:
    spread evenly over the band, leaving out the first `skip` ranks, shown as the top examples)}."""
    out = []
    for b in range(bands):
        first, last = int(np.floor(n_prompts * b / bands)), int(np.floor(n_prompts * (b + 1) / bands)) - 1
        ranks = list(range(max(first, skip), last + 1))
        if not ranks:
            continue
        pick = sorted({ranks[int(round(i))] for i in np.linspace(0, len(ranks) - 1, min(per_band, len(ranks)))})
        out.append({"band": f"{100 - 100 * (b + 1) // bands}-{100 - 100 * b // bands}%", "first": first,
                    "last": last, "ranks": pick})  # fmt: skip
    return out


def feature_profile(atlas: Atlas, feature: int, labels: list[FeatureLabel] | None = None, n_top: int = 5,
                    per_band: int = 2, bands: int = BANDS, n_vocab: int = 10) -> dict:  # fmt: skip
    """Everything a feature's card and page show (module doc), as plain data."""
    pk = peaks(atlas)
    sl = pk.of(feature)
    prm, pos, val = pk.prompt[sl], pk.position[sl], pk.value[sl]
    top = [example(atlas, feature, p, v, j) for p, j, v in zip(prm[:n_top], pos[:n_top], val[:n_top])]
    quant = []
    for q in quantile_picks(len(prm), bands, per_band, skip=n_top):
        quant.append({"band": q["band"], "lo": round(float(val[q["last"]]), 3), "hi": round(float(val[q["first"]]), 3),
                      "examples": [example(atlas, feature, prm[r], val[r], pos[r]) for r in q["ranks"]]})  # fmt: skip
    ids, jac, share = cofire(atlas)
    co = [(int(g), round(float(j), 3), round(float(s), 3)) for g, j, s in zip(ids[feature], jac[feature],
                                                                             share[feature]) if g >= 0]  # fmt: skip
    vocab = getattr(atlas, "vocab", None)
    words = None if vocab is None else [(clean(atlas.token(t)), round(a, 3)) for t, a in vocab.of(feature)[:n_vocab]]
    lab = None
    if labels is not None:
        x = labels[feature]
        lab = {"label": x.label, "score": x.score, "held_out": x.held_out, "kind": x.kind, "trigger": x.trigger,
               "function_words": list(x.function_words)}  # fmt: skip
    return {"feature": int(feature), "frequency": float(atlas.frequency[feature]), "label": lab,
            "density": density(atlas, feature), "prompts": int(len(prm)), "top": top, "quantiles": quant,
            "cofire": co, "vocab": words}  # fmt: skip
