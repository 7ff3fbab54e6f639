"""Feature labels from data: the tokens a feature fires on, the words specific to it, dead ones marked."""

import numpy as np
import pytest
import torch

from snce_lib.atlas.labels import label_features, load_labels, save_labels
from snce_lib.atlas.map import Atlas
from snce_lib.concepts.codes import PromptCodes, firing_frequency

WORDS = ["a", "red", "crimson", "cat", "kitten", "house", "the", "<pad>"]


def planted_atlas():
    """Latent 1 fires on colour words, latent 2 on cat words, latent 0 on everything, latent 3 never."""
    rng = np.random.default_rng(0)
    prompts, rows = [], []
    for _ in range(60):
        toks = [int(t) for t in rng.choice([0, 1, 2, 3, 4, 5, 6], size=6)] + [7, 7]
        rows.append(toks)
        prompts.append(" ".join(WORDS[t] for t in toks))
    tok = torch.tensor(rows)
    dense = torch.zeros(60, 8, 4)
    dense[..., 0] = 0.1
    dense[..., 1] = ((tok == 1) | (tok == 2)).float() * 2.0
    dense[..., 2] = ((tok == 3) | (tok == 4)).float() * 3.0
    real = torch.zeros(60, 8, dtype=torch.bool)
    real[:, :6] = True
    codes = PromptCodes.from_dense(prompts, dense, real, ~real, tok)
    return Atlas(codes, firing_frequency(codes), lambda t: WORDS[t], 4)


def test_labels_name_the_planted_features(tmp_path):
    labels = label_features(planted_atlas())
    assert set(labels[1].specific[:2]) == {"red", "crimson"} and labels[1].status == "live"
    assert set(labels[2].specific[:2]) == {"cat", "kitten"}
    assert labels[2].top_tokens[0][0] in ("cat", "kitten") and labels[2].top_tokens[0][1] > 10
    assert labels[3].status == "dead" and labels[3].label.startswith("dead")
    assert labels[0].status == "live" and labels[0].frequency == 1.0
    save_labels(labels, tmp_path / "labels.json")
    assert load_labels(tmp_path / "labels.json") == labels
    (tmp_path / "bad.json").write_text('{"kind": "other"}')
    with pytest.raises(ValueError, match="not a feature-labels file"):
        load_labels(tmp_path / "bad.json")


def test_clusters_on_a_planted_map_get_the_planted_names():
    """Two groups of features, one firing on colour words, one on cat words: the co-activation map's
    clusters separate them, and each cluster is named after its group's words."""
    from snce_lib.atlas.clusters import choose_map, cluster_map, name_clusters, token_profiles

    rng = np.random.default_rng(1)
    tok = torch.tensor(rng.choice([1, 2, 3, 4, 5], size=(200, 6)))
    m = 24
    dense = torch.zeros(200, 6, m)
    colour, cat = (tok == 1) | (tok == 2), (tok == 3) | (tok == 4)
    for f in range(12):  # features 0-11: colour words, 12-23: cat words (each fires on its group's tokens)
        dense[..., f] = colour.float() * (1 + 0.1 * f)
        dense[..., 12 + f] = cat.float() * (1 + 0.1 * f)
    real = torch.ones(200, 6, dtype=torch.bool)
    codes = PromptCodes.from_dense(["p"] * 200, dense, real, ~real, tok)
    atlas = Atlas(codes, firing_frequency(codes), lambda t: WORDS[t], m)
    labels = label_features(atlas)
    prof = token_profiles(codes).toarray()
    assert prof[0, 1] > 0 and prof[0, 3] == 0 and prof[12, 3] > 0 and prof[12, 1] == 0
    layout = prof / np.linalg.norm(prof, axis=1, keepdims=True)  # a stand-in 2-D map: (colour share, cat share)
    xy = np.stack([layout[:, 1] + layout[:, 2], layout[:, 3] + layout[:, 4]], 1)
    ids, sil = cluster_map(xy, atlas.frequency > 0, 2)
    assert len(set(ids[:12])) == 1 and len(set(ids[12:])) == 1 and ids[0] != ids[12] and sil > 0.9
    names = name_clusters(ids, labels)
    assert set(names[ids[0]].split(" / ")) == {"red", "crimson"}
    assert set(names[ids[12]].split(" / ")) == {"cat", "kitten"}
    noise = rng.normal(size=xy.shape)
    best, scores = choose_map({"planted": xy, "noise": noise}, atlas.frequency, labels, n_clusters=2)
    assert best.name == "planted" and scores["planted"] > scores["noise"]
