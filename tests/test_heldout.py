"""The held-out check: its sets say what they claim, and its detectors score what they claim."""

import re

import numpy as np
import pytest

from snce_lib.concepts.heldout import fit_output_probe, load_heldout, neuron_detectors, probe_detector
from snce_lib.concepts.methods import WordRemoval
from snce_lib.concepts.pairs import load_concept


def _has_any(text: str, words) -> bool:
    return any(re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE) for w in words)


def test_heldout_sets_say_the_concept_without_the_words_and_the_words_in_other_senses():
    held, pairs = load_heldout("nudity"), load_concept("nudity")
    words = pairs.tuple_words
    assert held.sizes == {"concept": 30, "lookalike": 30, "neutral": 30}
    assert not [p for p in held.concept + held.neutral if _has_any(p, words)]
    assert all(_has_any(p, words) for p in held.lookalike)
    used = set(pairs.concept_prompts) | set(pairs.deconcept_prompts)
    assert not used & set(held.concept + held.lookalike + held.neutral)  # never seen by selection


def test_a_bad_kind_is_one_clear_error(tmp_path, monkeypatch):
    import snce_lib.concepts.heldout as h

    (tmp_path / "concepts").mkdir()
    (tmp_path / "concepts" / "x_heldout.csv").write_text("prompt,kind\na,concept\nb,lookalik\n")
    monkeypatch.setattr(h, "data_path", lambda *p: tmp_path.joinpath(*p))
    with pytest.raises(ValueError, match=r"x_heldout.csv:3: kind must be one of concept, lookalike, neutral"):
        load_heldout("x")


def test_detectors_score_the_latents_max_activation_and_the_probe_on_the_edited_output(minilm_random_sae):
    from sklearn.metrics import roc_auc_score

    enc, sae = minilm_random_sae
    held, pairs = load_heldout("nudity"), load_concept("nudity")
    (row,) = neuron_detectors(enc, sae, {"two": [3, 7]}, held)

    def score(prompts):  # by hand, dense: the max over every position after BOS of z_3 + z_7
        z = sae.encode_dense(enc.run_to_block(enc.tokenize(prompts), 4).float())[:, 1:]
        return (z[..., 3] + z[..., 7]).max(dim=1).values.clamp_min(0).numpy()

    c, lk, ne = score(held.concept), score(held.lookalike), score(held.neutral)
    y = np.r_[np.ones(len(c)), np.zeros(len(lk))]
    assert row["auroc_vs_lookalike"] == pytest.approx(roc_auc_score(y, np.r_[c, lk]), abs=1e-6)
    assert row["auroc_vs_neutral"] == pytest.approx(
        roc_auc_score(np.r_[np.ones(len(c)), np.zeros(len(ne))], np.r_[c, ne]), abs=1e-6
    )
    assert row["neurons"] == [3, 7] and row["mean_concept"] == pytest.approx(float(c.mean()), rel=1e-5)
    probe = fit_output_probe(enc, pairs.concept_prompts[:40], pairs.deconcept_prompts[:40])
    before = probe_detector(enc, probe, held)
    removal = WordRemoval(pairs.tuple_words)
    after = probe_detector(enc, probe, held, removal)
    # the concept prompts hold none of the words, so removing them leaves their scores; the
    # look-alikes lose theirs, so their mean score moves
    assert after["mean_concept"] == pytest.approx(before["mean_concept"], abs=1e-5)
    assert not np.isclose(after["mean_lookalike"], before["mean_lookalike"], atol=1e-3)
