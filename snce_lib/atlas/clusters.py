"""Structure in the dictionary: clusters found in the dictionary's own space, named from content
labels, measured against the corpus's ground truth, and drawn on a 2-D map.

Two spaces, each a unit vector per feature, clustered the same way (agglomerative, Ward linkage
on the unit vectors, so that nearness is cosine; features that are not shown are left out):
- *decoder*: the decoder direction, what each feature writes;
- *co-activation*: the feature's row of the co-firing matrix (how often it fires at the same
  word position as every other feature), so features that fire together group together.

Clustering the 2-D points of a map instead (as this module once did with UMAP) rewards the map's
own clumping and gives clusters of word pieces. The map is drawn from the kept space by t-SNE
(cosine, PCA start, seeded), coloured by the clusters found in the full space; it was UMAP, whose
just-in-time compilation cost about 10 s in every fresh kernel, more than t-SNE's whole run on the
offline SAE. Which space is kept is decided by the silhouette of its clustering in that space
(cosine), never by the purity below, which is reported for both.

**Purity.** The corpus is generated from word lists (`scripts/make_data.py`: subjects, actions,
settings, styles, modifiers, objects, places, and the concept phrases), so a content feature whose
label's first word is a corpus word has a known category (`data/corpus_words.json`). A cluster's
purity is the share of its categorised members in its commonest category; the clustering's purity
is that share over all categorised members. The same number for the same cluster sizes with the
members shuffled (many draws) is the baseline a clustering must beat.

Purity alone is not fair when one category dominates: on the offline SAE the modifiers ("golden
hour", "highly detailed", ...) are the largest category by far, so most clusters' commonest category
is that one whatever the clustering, and the shuffled baseline is that category's share. Two measures that every category counts in equally
are reported beside it, each with its own shuffled baseline (`fair_scores`):
- *balanced purity*: purity with each member weighted by 1 / (its category's size), as if every
  category had as many features; a clustering that only finds the big category scores about
  1 / (number of categories);
- *NMI*: the normalised mutual information between clusters and categories (0: independent,
  1: the clusters are the categories). Per category, the share of its features that sit in
  clusters it leads (by balanced weight) says which categories the clusters find.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from snce_lib.atlas.labels import FeatureLabel
from snce_lib.concepts.codes import PromptCodes


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cofiring_counts(codes: PromptCodes) -> np.ndarray:
    """How many word and end positions (not padding) each pair of features fires at together; the
    diagonal is each feature's own count. [m, m] float64"""
    from scipy.sparse import csr_matrix

    vals, idx = codes.positions(codes.real)
    on = (vals > 0).numpy()
    rows = np.repeat(np.arange(len(idx)), idx.shape[1])[on.ravel()]
    x = csr_matrix((np.ones(len(rows), np.float32), (rows, idx.numpy().ravel()[on.ravel()])),
                   shape=(len(idx), codes.n_latents))  # fmt: skip
    return (x.T @ x).toarray().astype(np.float64)


def coactivation_vectors(codes: PromptCodes, counts: np.ndarray | None = None) -> np.ndarray:
    """Each feature's co-firing counts with every other feature over the word positions (not
    padding), unit length; a feature that never fires there gets a zero row. [m, m]
    `counts`: `cofiring_counts` of the same codes, if already made."""
    c = (cofiring_counts(codes) if counts is None else counts).copy()
    np.fill_diagonal(c, 0.0)
    return unit_rows(c)


def token_profiles(codes: PromptCodes):
    """How often each feature fires on each token: a sparse [m, vocabulary] count matrix, built from
    (feature, token) pairs, never from a dense [positions, m] matrix."""
    from scipy.sparse import csr_matrix

    feature, token, count = codes.feature_token_counts()
    vocab = int(codes.token_ids.max()) + 1
    return csr_matrix((count.numpy().astype(np.float32), (feature.numpy(), token.numpy())),
                      shape=(codes.n_latents, vocab))  # fmt: skip


def cluster_features(vectors: np.ndarray, members: np.ndarray, n_clusters: int) -> tuple[np.ndarray, float]:
    """Ward clustering of the members' unit vectors: (cluster per feature, -1 for non-members;
    cosine silhouette in the same space). Deterministic: no random start."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score

    ids = np.full(len(vectors), -1)
    live = np.flatnonzero(members & (np.linalg.norm(vectors, axis=1) > 0))
    if len(live) < 3:
        return ids, 0.0
    k = max(2, min(n_clusters, len(live) - 1))
    x = unit_rows(vectors[live])
    with warnings.catch_warnings():  # a square matrix of unit rows is not a distance matrix, as scipy suspects
        warnings.filterwarnings("ignore", message=".*uncondensed distance matrix")
        ids[live] = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x)
    sil = float(silhouette_score(x, ids[live], metric="cosine")) if len(set(ids[live])) > 1 else 0.0
    return ids, sil


def name_clusters(cluster: np.ndarray, labels: list[FeatureLabel], n_words: int = 2) -> dict[int, str]:
    """Each cluster's name: the content words its members' labels share most (a member's first word
    counts most), weighted by the label's score, so well-labelled features name their cluster."""
    names = {}
    for c in sorted(set(cluster.tolist()) - {-1}):
        votes: Counter = Counter()
        for f in np.flatnonzero(cluster == c):
            weight = labels[f].score if labels[f].score is not None else 0.0
            for rank, w in enumerate(labels[f].specific):
                if _is_word(w):
                    votes[w] += (weight + 0.05) / (rank + 1)
        words = [w for w, _ in votes.most_common(n_words)]
        names[c] = " / ".join(words) or f"cluster {c}"
    return names


def _is_word(token: str) -> bool:
    special = (token.startswith("[") and token.endswith("]")) or token.startswith("<|")
    return not special and any(ch.isalnum() for ch in token)


def feature_categories(labels: list[FeatureLabel], word_category: dict[str, str]) -> list[str | None]:
    """The corpus category of each feature's first label word (None: not a corpus word, or no label)."""
    return [word_category.get(lab.specific[0]) if lab.specific else None for lab in labels]


def purity(cluster: np.ndarray, category: list[str | None]) -> tuple[float, int]:
    """(purity, how many clustered features have a category) of a clustering against the categories."""
    pairs = [(c, g) for c, g in zip(cluster.tolist(), category) if c >= 0 and g is not None]
    if not pairs:
        return float("nan"), 0
    by: dict[int, Counter] = {}
    for c, g in pairs:
        by.setdefault(c, Counter())[g] += 1
    return sum(max(v.values()) for v in by.values()) / len(pairs), len(pairs)


def shuffled_purity(cluster: np.ndarray, category: list[str | None], draws: int = 200,
                    seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """Purity of the same cluster sizes with the categorised members shuffled: (mean, 95th percentile)."""
    keep = [i for i, (c, g) in enumerate(zip(cluster.tolist(), category)) if c >= 0 and g is not None]
    if not keep:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    ids, cats = cluster[keep], [category[i] for i in keep]
    runs = [purity(rng.permutation(ids), cats)[0] for _ in range(draws)]
    return float(np.mean(runs)), float(np.percentile(runs, 95))


def _categorised(cluster: np.ndarray, category: list[str | None]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(cluster ids, category codes, category names) of the clustered members that have a category."""
    keep = [i for i, (c, g) in enumerate(zip(cluster.tolist(), category)) if c >= 0 and g is not None]
    names = sorted({category[i] for i in keep})
    code = {g: j for j, g in enumerate(names)}
    return np.asarray(cluster)[keep], np.array([code[category[i]] for i in keep], dtype=np.int64), names


def _balanced(ids: np.ndarray, cats: np.ndarray, n_cats: int) -> tuple[float, np.ndarray]:
    """(balanced purity, each category's share of its members in clusters it leads by balanced weight)."""
    size = np.bincount(cats, minlength=n_cats).astype(np.float64)
    _, cl = np.unique(ids, return_inverse=True)
    table = np.zeros((cl.max() + 1, n_cats))
    np.add.at(table, (cl, cats), 1.0)
    weighted = table / np.maximum(size, 1)[None, :]
    lead = np.argmax(weighted, axis=1)
    purity = float(weighted.max(1).sum() / max((size > 0).sum(), 1))
    found = np.array([table[lead == g, g].sum() / size[g] if size[g] else np.nan for g in range(n_cats)])
    return purity, found


def balanced_purity(cluster: np.ndarray, category: list[str | None]) -> tuple[float, int]:
    """(purity with each category weighted equally, how many clustered features have a category)."""
    ids, cats, names = _categorised(cluster, category)
    if not len(ids):
        return float("nan"), 0
    return _balanced(ids, cats, len(names))[0], len(ids)


def nmi(cluster: np.ndarray, category: list[str | None]) -> float:
    """Normalised mutual information (arithmetic mean) of the clusters and the categories."""
    from sklearn.metrics import normalized_mutual_info_score

    ids, cats, _ = _categorised(cluster, category)
    return float(normalized_mutual_info_score(cats, ids)) if len(ids) else float("nan")


def fair_scores(cluster: np.ndarray, category: list[str | None], draws: int = 200, seed: int = 0) -> dict:
    """Purity, balanced purity and NMI of a clustering against the categories, each beside the same
    measure for the same cluster sizes with the categorised members shuffled (mean and 95th
    percentile over `draws`), and per category: its features and the share of them in clusters it
    leads, beside that share shuffled (mean)."""
    from sklearn.metrics import normalized_mutual_info_score

    from snce_lib.rng import numpy_rng

    ids, cats, names = _categorised(cluster, category)
    if not len(ids):
        return {"features": 0}
    rng = numpy_rng(seed, "cluster-shuffle")

    def measures(x: np.ndarray) -> tuple[float, float, float, np.ndarray]:
        _, cl = np.unique(x, return_inverse=True)
        table = np.zeros((cl.max() + 1, len(names)))
        np.add.at(table, (cl, cats), 1.0)
        bal, found = _balanced(x, cats, len(names))
        return float(table.max(1).sum() / len(x)), bal, float(normalized_mutual_info_score(cats, x)), found

    pur, bal, mi, found = measures(ids)
    runs = [measures(rng.permutation(ids)) for _ in range(draws)]
    out = {"features": int(len(ids)), "categories": len(names)}
    for j, key in enumerate(("purity", "balanced_purity", "nmi")):
        vals = np.array([r[j] for r in runs])
        out[key] = (pur, bal, mi)[j]
        out[f"{key}_shuffled"] = float(vals.mean())
        out[f"{key}_shuffled_p95"] = float(np.percentile(vals, 95))
    shuffled_found = np.nanmean(np.array([r[3] for r in runs]), axis=0)
    size = np.bincount(cats, minlength=len(names))
    out["per_category"] = {g: {"features": int(size[i]), "in_clusters_it_leads": float(found[i]),
                               "shuffled": float(shuffled_found[i])} for i, g in enumerate(names)}  # fmt: skip
    return out


@dataclass
class MapClusters:
    name: str
    """Which space: "decoder" or "co-activation"."""
    xy: np.ndarray
    """The 2-D map (t-SNE of the same space, seeded) the page and figures draw. [m, 2]"""
    cluster: np.ndarray
    """Cluster id per feature; -1 for features not shown (set aside, or never fire)."""
    silhouette: float
    names: dict
    purity: dict = field(default_factory=dict)
    """{"purity", "features", "shuffled", "shuffled_p95"} against the corpus categories, if known,
    and `fair_scores`' balanced purity, NMI (each with "_shuffled" and "_shuffled_p95") and per category."""


def map_2d(vectors: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of unit vectors under cosine distance, from a PCA start, seeded. Zero rows land
    together. Fewer than four rows: their first two coordinates (nothing to lay out)."""
    from sklearn.manifold import TSNE

    x = np.asarray(vectors, dtype=np.float32).copy()
    zero = np.linalg.norm(x, axis=1) == 0
    x[zero, 0] = 1e-6
    if len(x) < 4:
        return np.pad(x[:, :2], ((0, 0), (0, max(0, 2 - x.shape[1]))))
    p = min(perplexity, (len(x) - 1) / 3)
    return TSNE(2, perplexity=p, metric="cosine", init="pca", random_state=seed).fit_transform(x)


def choose_space(spaces: dict[str, np.ndarray], members: np.ndarray, labels: list[FeatureLabel],
                 n_clusters: int = 24, word_category: dict | None = None, seed: int = 0,
                 draw: bool = True) -> tuple[MapClusters, dict[str, dict]]:  # fmt: skip
    """Cluster the members in every space; keep the one with the higher silhouette in its own space.
    Returns it (with its 2-D map when `draw`) and, per space, its silhouette and purity."""
    scored, report = {}, {}
    cats = feature_categories(labels, word_category) if word_category else None
    for name, vec in spaces.items():
        ids, sil = cluster_features(vec, members, n_clusters)
        pur = {}
        if cats is not None:
            fair = fair_scores(ids, cats, seed=seed)
            pur = {"purity": fair.get("purity", float("nan")), "features": fair["features"],
                   "shuffled": fair.get("purity_shuffled", float("nan")),
                   "shuffled_p95": fair.get("purity_shuffled_p95", float("nan")),
                   **{k: v for k, v in fair.items() if k not in ("purity", "features")}}  # fmt: skip
        scored[name] = (ids, sil, pur)
        report[name] = {"silhouette": sil, **pur}
    best = max(scored, key=lambda k: scored[k][1])
    ids, sil, pur = scored[best]
    xy = map_2d(spaces[best], seed) if draw else np.zeros((len(ids), 2))
    return MapClusters(best, xy, ids, sil, name_clusters(ids, labels), pur), report


def corpus_categories() -> dict[str, str]:
    """word -> category of the corpus's word lists (`data/corpus_words.json`, written by make_data.py)."""
    from snce_lib.io import read_json
    from snce_lib.resources import data_path

    raw = read_json(data_path("corpus_words.json"), "corpus word categories")
    if raw.get("kind") != "snce-corpus-words":
        raise ValueError("data/corpus_words.json is not the corpus's word categories; rerun scripts/make_data.py")
    return dict(raw["categories"])
