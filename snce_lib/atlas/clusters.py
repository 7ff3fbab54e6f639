"""Structure in the dictionary: clusters found in the dictionary's own space, named from content
labels, measured against the corpus's ground truth, and drawn on a 2-D map.

Two spaces, each a unit vector per feature, clustered the same way (agglomerative, Ward linkage
on the unit vectors, so that nearness is cosine; features that are not shown are left out):
- *decoder*: the decoder direction, what each feature writes;
- *co-activation*: the feature's row of the co-firing matrix (how often it fires at the same
  word position as every other feature), so features that fire together group together.

Clustering the 2-D UMAP points instead (as this module once did) rewards UMAP's own clumping and
gives clusters of word pieces. The map is drawn from the kept space's UMAP (seeded), coloured by the
clusters found in the full space. Which space is kept is decided by the silhouette of its
clustering in that space (cosine), never by the purity below, which is reported for both.

**Purity.** The corpus is generated from word lists (`scripts/make_data.py`: subjects, actions,
settings, styles, modifiers, objects, places, and the concept phrases), so a content feature whose
label's first word is a corpus word has a known category (`data/corpus_words.json`). A cluster's
purity is the share of its categorised members in its commonest category; the clustering's purity
is that share over all categorised members. The same number for the same cluster sizes with the
members shuffled (many draws) is the baseline a clustering must beat.
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


def coactivation_vectors(codes: PromptCodes) -> np.ndarray:
    """Each feature's co-firing counts with every other feature over the word positions (not
    padding), unit length; a feature that never fires there gets a zero row. [m, m]"""
    from scipy.sparse import csr_matrix

    vals, idx = codes.positions(codes.real)
    on = (vals > 0).numpy()
    rows = np.repeat(np.arange(len(idx)), idx.shape[1])[on.ravel()]
    x = csr_matrix((np.ones(len(rows), np.float32), (rows, idx.numpy().ravel()[on.ravel()])),
                   shape=(len(idx), codes.n_latents))  # fmt: skip
    c = (x.T @ x).toarray().astype(np.float64)
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


@dataclass
class MapClusters:
    name: str
    """Which space: "decoder" or "co-activation"."""
    xy: np.ndarray
    """The 2-D map (UMAP of the same space, seeded) the page and figures draw. [m, 2]"""
    cluster: np.ndarray
    """Cluster id per feature; -1 for features not shown (set aside, or never fire)."""
    silhouette: float
    names: dict
    purity: dict = field(default_factory=dict)
    """{"purity", "features", "shuffled", "shuffled_p95"} against the corpus categories, if known."""


def umap_2d(vectors: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """2-D UMAP of unit vectors under cosine distance, seeded (one thread). Zero rows land together."""
    import umap

    warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)  # a fixed seed runs one job
    x = np.asarray(vectors, dtype=np.float32).copy()
    zero = np.linalg.norm(x, axis=1) == 0
    x[zero, 0] = 1e-6
    return umap.UMAP(n_neighbors=n_neighbors, min_dist=0.1, metric="cosine", random_state=seed).fit_transform(x)


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
            p, n = purity(ids, cats)
            mean, p95 = shuffled_purity(ids, cats, seed=seed)
            pur = {"purity": p, "features": n, "shuffled": mean, "shuffled_p95": p95}
        scored[name] = (ids, sil, pur)
        report[name] = {"silhouette": sil, **pur}
    best = max(scored, key=lambda k: scored[k][1])
    ids, sil, pur = scored[best]
    xy = umap_2d(spaces[best], seed) if draw else np.zeros((len(ids), 2))
    return MapClusters(best, xy, ids, sil, name_clusters(ids, labels), pur), report


def corpus_categories() -> dict[str, str]:
    """word -> category of the corpus's word lists (`data/corpus_words.json`, written by make_data.py)."""
    from snce_lib.io import read_json
    from snce_lib.resources import data_path

    raw = read_json(data_path("corpus_words.json"), "corpus word categories")
    if raw.get("kind") != "snce-corpus-words":
        raise ValueError("data/corpus_words.json is not the corpus's word categories; rerun scripts/make_data.py")
    return dict(raw["categories"])
