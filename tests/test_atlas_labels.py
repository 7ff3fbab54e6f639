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


def test_a_label_scores_how_well_its_words_predict_where_the_feature_fires():
    """On prompts not used to make the label, the colour feature's words ("red", "crimson") are
    exactly where it fires (F1 1); a feature that fires at random positions, whatever the word,
    gets a low score."""
    rng = np.random.default_rng(3)
    tok = torch.tensor(rng.choice([1, 2, 3, 4, 5], size=(200, 6)))
    dense = torch.zeros(200, 6, 3)
    dense[..., 0] = ((tok == 1) | (tok == 2)).float() * 2.0
    dense[..., 1] = torch.from_numpy(rng.random((200, 6)) < 0.3).float()  # a context, not a word
    real = torch.ones(200, 6, dtype=torch.bool)
    codes = PromptCodes.from_dense([f"p{i}" for i in range(200)], dense, real, ~real, tok)
    labels = label_features(Atlas(codes, firing_frequency(codes), lambda t: WORDS[t], 3))
    assert set(labels[0].specific[:2]) == {"red", "crimson"} and labels[0].score > 0.99
    assert labels[1].score is not None and labels[1].score < 0.5
    assert labels[2].status == "dead" and labels[2].score is None


def grouped_atlas():
    """Features 0-11 fire on colour words, 12-23 on cat words (each on its group's tokens)."""
    rng = np.random.default_rng(1)
    tok = torch.tensor(rng.choice([1, 2, 3, 4, 5], size=(200, 6)))
    m = 24
    dense = torch.zeros(200, 6, m)
    colour, cat = (tok == 1) | (tok == 2), (tok == 3) | (tok == 4)
    for f in range(12):
        dense[..., f] = colour.float() * (1 + 0.1 * f)
        dense[..., 12 + f] = cat.float() * (1 + 0.1 * f)
    real = torch.ones(200, 6, dtype=torch.bool)
    codes = PromptCodes.from_dense([f"p{i}" for i in range(200)], dense, real, ~real, tok)
    return Atlas(codes, firing_frequency(codes), lambda t: WORDS[t], m)


def test_planted_groups_cluster_pure_above_the_shuffled_baseline_and_get_their_names():
    """Clustered in co-activation space, the two planted groups come out whole; against the words'
    known categories their purity is 1, far above the same clusters shuffled; each cluster is named
    after its group's words; a space of noise loses on silhouette."""
    from snce_lib.atlas.clusters import (
        choose_space,
        cluster_features,
        coactivation_vectors,
        name_clusters,
        purity,
        shuffled_purity,
        token_profiles,
    )

    atlas = grouped_atlas()
    labels = label_features(atlas)
    prof = token_profiles(atlas.codes).toarray()
    assert prof[0, 1] > 0 and prof[0, 3] == 0 and prof[12, 3] > 0 and prof[12, 1] == 0
    co = coactivation_vectors(atlas.codes)
    members = atlas.frequency > 0
    ids, sil = cluster_features(co, members, 2)
    assert len(set(ids[:12])) == 1 and len(set(ids[12:])) == 1 and ids[0] != ids[12] and sil > 0.9
    category = {"red": "colour", "crimson": "colour", "cat": "animal", "kitten": "animal"}
    cats = [category.get(lab.specific[0]) for lab in labels]
    p, n = purity(ids, cats)
    mean, p95 = shuffled_purity(ids, cats)
    assert (p, n) == (1.0, 24) and p95 < 0.8 and mean < p
    names = name_clusters(ids, labels)
    assert set(names[ids[0]].split(" / ")) == {"red", "crimson"}
    assert set(names[ids[12]].split(" / ")) == {"cat", "kitten"}
    noise = np.random.default_rng(2).normal(size=co.shape)
    best, report = choose_space({"co-activation": co, "noise": noise}, members, labels, 2, category, draw=False)
    assert best.name == "co-activation" and report["co-activation"]["silhouette"] > report["noise"]["silhouette"]
    assert report["co-activation"]["purity"] == 1.0 and report["noise"]["purity"] < 1.0
    assert best.purity["shuffled_p95"] < best.purity["purity"]


def test_balanced_purity_and_nmi_see_through_a_dominant_category():
    """90 of 100 features are "style". A clustering that splits the style features at random and
    mixes the ten others into those clusters has a high purity (the style share), no higher than its
    shuffled baseline; balanced purity and NMI put it at chance. A clustering that puts each
    category in clusters of its own scores 1 on both, far above its shuffled baseline, and each
    category is found in the clusters it leads."""
    from snce_lib.atlas.clusters import balanced_purity, fair_scores, nmi, purity

    rng = np.random.default_rng(4)
    cats = ["style"] * 90 + ["animal"] * 5 + ["colour"] * 5
    blind = rng.integers(0, 6, size=100)
    p, _ = purity(blind, cats)
    fair = fair_scores(blind, cats, draws=100)
    assert p >= 0.9 and abs(p - fair["purity_shuffled"]) < 0.03
    assert fair["balanced_purity"] <= fair["balanced_purity_shuffled_p95"] and fair["nmi"] <= fair["nmi_shuffled_p95"]
    assert fair["balanced_purity"] < 0.75 and fair["nmi"] < 0.2
    sighted = np.array([c % 4 for c in range(90)] + [4] * 5 + [5] * 5)
    assert balanced_purity(sighted, cats) == (1.0, 100) and nmi(sighted, cats) > 0.3
    fair = fair_scores(sighted, cats, draws=100)
    assert fair["balanced_purity"] == 1.0 and fair["balanced_purity_shuffled_p95"] < 0.8
    assert fair["nmi"] > 3 * fair["nmi_shuffled_p95"]
    assert fair["per_category"]["animal"] == {"features": 5, "in_clusters_it_leads": 1.0,
                                               "shuffled": fair["per_category"]["animal"]["shuffled"]}  # fmt: skip
    assert fair["per_category"]["animal"]["shuffled"] < 0.8
