"""Selection options compared as single-latent detectors, discovery measured on a concept list, and
the near-chance warning: each scores what it says, on the pairs it says."""

import json

import numpy as np
import pytest

from snce_lib.concepts.detection import auroc_ci, chance_note, near_chance
from snce_lib.concepts.heldout import HeldoutSets, load_heldout
from snce_lib.concepts.options import PROBE, compare_options, options_frame, serialisable, split_pairs
from snce_lib.concepts.pairs import ConceptPairs, SelectionError, load_concept, mention, mention_groups
from snce_lib.concepts.ranking import Ranking


def test_the_split_is_seeded_grouped_by_mention_and_keeps_each_pair_whole():
    """No mention group (pairs whose mentions share a concept word) sits on two sides: the old
    70/30 split put 24 of 30 validation pairs beside a selection pair with the same mention."""
    pairs = load_concept("nudity")
    a, b = split_pairs(pairs, seed=0), split_pairs(pairs, seed=0)
    assert a.select.concept_prompts == b.select.concept_prompts
    assert split_pairs(pairs, seed=1).validate.concept_prompts != a.validate.concept_prompts
    parts = (a.select, a.validate, a.test)
    assert sum(len(p.concept_prompts) for p in parts) == len(set(pairs.concept_prompts))
    group_of = dict(zip(pairs.concept_prompts, mention_groups(pairs)))
    seen = [{group_of[c] for c in p.concept_prompts} for p in parts]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert all(len(p.concept_prompts) >= 2 for p in parts)
    # every part holds two mention groups or more: a part of one mention ties every option that fires on it
    # (the old split gave validation one group of 19 pairs, and six options tied at 1.000)
    assert all(len(s) >= 2 for s in seen)
    sizes = [len(p.concept_prompts) for p in parts]
    assert abs(sizes[0] - len(group_of) / 2) <= 5 and all(abs(n - len(group_of) / 4) <= 5 for n in sizes[1:])
    twin = dict(zip(pairs.concept_prompts, pairs.deconcept_prompts))
    for part in parts:
        assert [twin[c] for c in part.concept_prompts] == part.deconcept_prompts
    # a mention's words are what the concept prompt adds to its twin; shared concept words join groups
    assert mention("a photo of a completely naked woman", "a photo of a woman") == ("completely", "naked")
    toy = ConceptPairs("t", ["a naked man", "a completely naked cat", "a nude dog", "a bare tree", "a topless x"],
                       ["a man", "a cat", "a dog", "a tree", "a x"])  # fmt: skip
    g = mention_groups(toy)
    assert g[0] == g[1] and len(set(g)) == 4
    with pytest.raises(SelectionError, match="mention group"):
        split_pairs(ConceptPairs("x", ["a naked a", "a naked b", "a naked c"], ["a a", "a b", "a c"]))


def test_duplicate_pairs_are_removed_before_the_split():
    pairs = load_concept("nudity")
    doubled = ConceptPairs("d", pairs.concept_prompts * 2, pairs.deconcept_prompts * 2, pairs.tuple_words)
    s = split_pairs(doubled)
    every = s.select.concept_prompts + s.validate.concept_prompts + s.test.concept_prompts
    assert len(every) == len(set(every)) == len(set(pairs.concept_prompts))


def test_warnings_say_near_chance_and_below_chance():
    assert near_chance(0.55) and near_chance(0.41) and not near_chance(0.62) and not near_chance(0.39)
    assert chance_note(0.534).startswith("near chance") and chance_note(0.83) == "" and chance_note(None) == ""
    # a latent that prefers the look-alikes (0.22) was once reported with no warning at all
    assert chance_note(0.22).startswith("below chance")
    rng = np.random.default_rng(0)
    hi, lo = rng.normal(2, 1, 30), rng.normal(0, 1, 30)
    assert chance_note(auroc_ci(hi, lo)) == "" and chance_note(auroc_ci(lo, hi)).startswith("below chance")
    assert chance_note(auroc_ci(lo, rng.normal(0, 1, 30))).startswith("near chance")
    # a latent that fires on a few negatives and nothing else: a narrow interval just under 0.5 is chance
    rare = auroc_ci(np.zeros(145), np.r_[np.zeros(490), np.ones(10)])
    assert rare.hi < 0.5 and chance_note(rare).startswith("near chance")
    # a latent silent on both sets ties every score: 0.5 with a zero-width interval is silence, not a measurement
    assert chance_note(auroc_ci(np.zeros(30), np.zeros(30))).startswith("no signal")


def test_the_bootstrap_interval_holds_the_auroc_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small = auroc_ci(rng.normal(1, 1, 15), rng.normal(0, 1, 15))
    big = auroc_ci(rng.normal(1, 1, 400), rng.normal(0, 1, 400))
    for a in (small, big):
        assert a.lo <= a.auroc <= a.hi
    assert (big.hi - big.lo) < (small.hi - small.lo) / 2 and (small.n_pos, small.n_neg) == (15, 15)
    assert 0.67 < big.auroc < 0.85 and big.lo > 0.65  # the true AUROC of N(1,1) vs N(0,1) is 0.76


def test_options_choose_on_validation_and_report_on_test_pairs(minilm_random_sae):
    from sklearn.metrics import roc_auc_score

    enc, sae = minilm_random_sae
    full = load_concept("nudity")
    pairs = ConceptPairs("nudity", full.concept_prompts[:40], full.deconcept_prompts[:40], full.tuple_words)
    h = load_heldout("nudity")
    held = HeldoutSets("nudity", h.concept[:8], h.lookalike[:8], h.neutral[:8])
    out = compare_options(enc, sae, pairs, held)
    split = split_pairs(pairs)

    def score(prompts, ns):  # by hand, dense: the latents' summed activation, its largest after BOS
        z = sae.encode_dense(enc.run_to_block(enc.tokenize(prompts), 4).float())[:, 1:]
        return z[..., ns].sum(-1).max(dim=1).values.numpy()

    latents = [r for r in out["rows"] if r["neuron"] is not None]
    assert latents, "a random SAE still leaves some option a latent"
    assert any(len(r["neurons"]) > 1 for r in latents), "the cover is scored as a family"
    for r in latents:
        n = r["neurons"]
        assert len(n) == 1 or r["options"].get("family")
        for key, part in (("validation", split.validate), ("test", split.test)):
            c, d = score(part.concept_prompts, n), score(part.deconcept_prompts, n)
            assert r[key].auroc == pytest.approx(roc_auc_score([1] * len(c) + [0] * len(d), np.r_[c, d]), abs=1e-6)
            assert (r[key].n_pos, r[key].n_neg) == (len(c), len(d))
        assert r["vs_lookalike"].n_pos == 8
    for r in latents:  # the tie-break: the option's AUROC on the pairs that selected it
        c, d = score(split.select.concept_prompts, r["neurons"]), score(split.select.deconcept_prompts, r["neurons"])
        assert r["selection_fit"] == pytest.approx(roc_auc_score([1] * len(c) + [0] * len(d), np.r_[c, d]), abs=1e-6)
    top = max(r["validation"].auroc for r in latents)
    tied = [r for r in latents if r["validation"].auroc == top]
    assert out["tied"] == [r["option"] for r in tied]
    assert out["chosen"] == max(tied, key=lambda r: r["selection_fit"])["option"]
    assert out["rows"][-1]["option"] == PROBE and out["rows"][-1]["neuron"] is None
    assert out["sizes"]["selection_pairs"] + out["sizes"]["validation_pairs"] + out["sizes"]["test_pairs"] == 40
    frame = options_frame(out)
    assert f"{out['chosen']} (chosen on validation)" in frame.index
    assert json.loads(json.dumps(serialisable(out)))["rows"][0]["test"]["n_pos"] == out["sizes"]["test_pairs"]


def test_selection_options_and_discovery_read_the_same_content_positions(minilm_random_sae):
    """One path turns positions="content" into codes (`selection.counted_codes`): selection, the options
    comparison and discovery each pick the same max-contrast latent on the same prompts."""
    from snce_lib.atlas.explore import DEFAULT_DISCOVERY, discover
    from snce_lib.concepts.selection import select_neurons

    enc, sae = minilm_random_sae
    full = load_concept("nudity")
    pairs = ConceptPairs("nudity", full.concept_prompts[:40], full.deconcept_prompts[:40], full.tuple_words)
    h = load_heldout("nudity")
    held = HeldoutSets("nudity", h.concept[:5], h.lookalike[:5], h.neutral[:5])
    opt = {"lens": {"method": "max_contrast", "positions": "content"}}
    split = split_pairs(pairs)
    via_options = compare_options(enc, sae, pairs, held, options=opt)["rows"][0]["neuron"]
    via_selection = select_neurons(enc, sae, split.select, method="max_contrast", positions="content")[0].neurons[0]
    via_discovery = discover(enc, sae, split.select.concept_prompts, split.select.deconcept_prompts)
    assert via_options == via_selection == via_discovery[DEFAULT_DISCOVERY].top(1)[0]
    # and "content" differs from "all" on this SAE, so the test can tell the paths apart
    every = select_neurons(enc, sae, split.select, method="max_contrast", positions="all")[0].neurons[0]
    real = select_neurons(enc, sae, split.select, method="max_contrast", positions="real")[0]
    assert real.options["positions"] == "real" and real.options["include_padding"] is False
    assert every != via_selection or real.neurons[0] != via_selection


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
