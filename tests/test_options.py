"""Selection options compared as single-latent detectors, discovery measured on a concept list, and
the near-chance warning: each scores what it says, on the pairs it says."""

import numpy as np
import pytest

from snce_lib.concepts.detection import chance_note, near_chance
from snce_lib.concepts.heldout import HeldoutSets, load_heldout
from snce_lib.concepts.options import PROBE, compare_options, options_frame, split_pairs
from snce_lib.concepts.pairs import ConceptPairs, SelectionError, load_concept
from snce_lib.concepts.ranking import Ranking


def test_the_split_is_seeded_keeps_each_pair_whole_and_refuses_too_few_pairs():
    pairs = load_concept("nudity")
    a, b = split_pairs(pairs, seed=0), split_pairs(pairs, seed=0)
    assert a.select.concept_prompts == b.select.concept_prompts
    assert split_pairs(pairs, seed=1).validate.concept_prompts != a.validate.concept_prompts
    assert len(a.validate.concept_prompts) == 30 and len(a.select.concept_prompts) == 70
    assert not set(a.select.concept_prompts) & set(a.validate.concept_prompts)
    twin = dict(zip(pairs.concept_prompts, pairs.deconcept_prompts))
    for part in (a.select, a.validate):
        assert [twin[c] for c in part.concept_prompts] == part.deconcept_prompts
    with pytest.raises(SelectionError, match="too few"):
        split_pairs(ConceptPairs("x", ["a", "b"], ["c", "d"]))


def test_near_chance_is_within_a_tenth_of_one_half():
    assert near_chance(0.55) and near_chance(0.41) and not near_chance(0.62) and not near_chance(0.39)
    assert chance_note(0.534).startswith("near chance") and chance_note(0.83) == "" and chance_note(None) == ""


def test_each_option_is_scored_on_its_own_validation_pairs_and_the_best_is_the_default(minilm_random_sae):
    from sklearn.metrics import roc_auc_score

    enc, sae = minilm_random_sae
    full = load_concept("nudity")
    pairs = ConceptPairs("nudity", full.concept_prompts[:20], full.deconcept_prompts[:20], full.tuple_words)
    h = load_heldout("nudity")
    held = HeldoutSets("nudity", h.concept[:8], h.lookalike[:8], h.neutral[:8])
    out = compare_options(enc, sae, pairs, held)
    split = split_pairs(pairs)

    def score(prompts, n):  # by hand, dense: the latent's largest activation after BOS
        z = sae.encode_dense(enc.run_to_block(enc.tokenize(prompts), 4).float())[:, 1:]
        return z[..., n].max(dim=1).values.numpy()

    latents = [r for r in out["rows"] if r["neuron"] is not None]
    assert latents, "a random SAE still leaves some option a latent"
    for r in latents:
        n = r["neuron"]
        c, d = score(split.validate.concept_prompts, n), score(split.validate.deconcept_prompts, n)
        assert r["validation"] == pytest.approx(roc_auc_score([1] * len(c) + [0] * len(d), np.r_[c, d]), abs=1e-6)
        assert r["chance"] == "" or "near chance" in r["chance"]
    assert out["default"] == max(latents, key=lambda r: r["validation"])["option"]
    assert out["rows"][-1]["option"] == PROBE and out["rows"][-1]["neuron"] is None
    assert out["sizes"] == {"selection_pairs": 14, "validation_pairs": 6, "concept": 8, "lookalike": 8, "neutral": 8}
    frame = options_frame(out)
    assert f"{out['default']} (chosen on validation)" in frame.index


def test_discovery_counts_a_concept_found_only_when_a_top_label_names_it(monkeypatch):
    import snce_lib.atlas.explore as explore
    from snce_lib.atlas.labels import FeatureLabel

    labels = [FeatureLabel(i, w, "live", 0.01, specific=[w]) for i, w in enumerate(["owl", "rain", "the", "[PAD]"])]

    def ranked(*neurons):
        return Ranking("x", np.array(neurons), np.ones(len(neurons)), {})

    answers = {
        "owl": {"lens": ranked(0, 2), "busy": ranked(3, 2)},
        "weather": {"lens": ranked(2, 3, 1), "busy": ranked(3)},
    }
    monkeypatch.setattr(explore, "discover", lambda enc, sae, ex, cx: answers[ex[0]])
    concepts = [{"name": "owl", "words": ["Owl"], "examples": ["owl"], "counterexamples": ["x"]},
                {"name": "weather", "words": ["rain", "storm"], "examples": ["weather"], "counterexamples": ["x"]}]  # fmt: skip
    got = explore.evaluate_discovery(None, None, labels, concepts, top=3)
    assert got["hit_rate"] == {"lens": 1.0, "busy": 0.0} and got["n"] == 2
    # the third place counts at top 3 and not at top 2
    assert explore.evaluate_discovery(None, None, labels, concepts, top=2)["hit_rate"]["lens"] == 0.5
