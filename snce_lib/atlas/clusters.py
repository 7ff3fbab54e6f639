"""Structure on the map: two 2-D layouts of the dictionary, clusters on them, and a name per cluster.

- *decoder map*: UMAP of the decoder directions under cosine distance (what each feature writes);
- *co-activation map*: UMAP of each feature's token profile (how often it fires on each token),
  cosine distance, so features that fire on the same tokens sit together.

Which one shows clearer structure is measured, not assumed: both are clustered the same way
(k-means on the 2-D points, features that never fire left out) and the silhouette score of each
clustering is compared; the workbook keeps the higher. A cluster is named by the words its members'
labels share most, weighted by how often each member fires.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from snce_lib.atlas.labels import FeatureLabel
from snce_lib.concepts.codes import PromptCodes


def token_profiles(codes: PromptCodes):
    """How often each feature fires on each token: a sparse [m, vocabulary] count matrix. Features
    with similar rows fire on the same tokens; it is built from (feature, token) pairs, never from a
    dense [positions, m] matrix."""
    from scipy.sparse import csr_matrix

    feature, token, count = codes.feature_token_counts()
    vocab = int(codes.token_ids.max()) + 1
    return csr_matrix((count.numpy().astype(np.float32), (feature.numpy(), token.numpy())),
                      shape=(codes.n_latents, vocab))  # fmt: skip


def coactivation_umap(codes: PromptCodes, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """2-D layout of features by the tokens they fire on (cosine between token profiles). [m, 2]
    Features that never fire get a profile of their own (all zero) and land together."""
    import warnings

    import umap

    warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)  # a fixed seed runs one job
    prof = token_profiles(codes).tocsr()
    dead = np.asarray(prof.sum(1)).ravel() == 0
    prof = prof.tolil()
    for f in np.flatnonzero(dead):  # cosine needs a non-zero row
        prof[f, 0] = 1e-6
    return umap.UMAP(n_neighbors=n_neighbors, min_dist=0.1, metric="cosine", random_state=seed).fit_transform(
        prof.tocsr()
    )


@dataclass
class MapClusters:
    name: str
    """Which layout: "decoder" or "co-activation"."""
    xy: np.ndarray
    cluster: np.ndarray
    """Cluster id per feature; -1 for features left out (never fire on the sample)."""
    silhouette: float
    names: dict


def cluster_map(xy: np.ndarray, alive: np.ndarray, n_clusters: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """k-means on the 2-D points of the live features: (cluster per feature, -1 if dead; silhouette)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    ids = np.full(len(xy), -1)
    live = np.flatnonzero(alive)
    k = max(2, min(n_clusters, len(live) - 1))
    ids[live] = KMeans(k, n_init=4, random_state=seed).fit_predict(xy[live])
    return ids, float(silhouette_score(xy[live], ids[live])) if len(set(ids[live])) > 1 else 0.0


def name_clusters(cluster: np.ndarray, labels: list[FeatureLabel], n_words: int = 2) -> dict[int, str]:
    """Each cluster's name: the words most shared by its members' labels, weighted by their frequency."""
    names = {}
    for c in sorted(set(cluster.tolist()) - {-1}):
        votes: Counter = Counter()
        for f in np.flatnonzero(cluster == c):
            for rank, w in enumerate(labels[f].specific):
                votes[w] += np.sqrt(labels[f].frequency) / (rank + 1)
        # words first; padding, end-of-text and punctuation only where a cluster has nothing else
        ranked = [w for w, _ in votes.most_common()]
        words = [w for w in ranked if _is_word(w)] or ranked
        names[c] = " / ".join(words[:n_words]) or f"cluster {c}"
    return names


def _is_word(token: str) -> bool:
    special = (token.startswith("[") and token.endswith("]")) or token.startswith("<|")
    return not special and any(ch.isalnum() for ch in token)


def choose_map(layouts: dict[str, np.ndarray], frequency: np.ndarray, labels: list[FeatureLabel],
               n_clusters: int = 24, seed: int = 0) -> tuple[MapClusters, dict[str, float]]:  # fmt: skip
    """Cluster every layout; keep the one whose clustering has the higher silhouette. Returns it and
    every layout's score."""
    alive = frequency > 0
    scored = {}
    for name, xy in layouts.items():
        ids, sil = cluster_map(xy, alive, n_clusters, seed)
        scored[name] = MapClusters(name, xy, ids, sil, name_clusters(ids, labels))
    best = max(scored.values(), key=lambda m: m.silhouette)
    return best, {k: v.silhouette for k, v in scored.items()}
