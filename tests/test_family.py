"""Concepts past their words: the vocabulary read a word at a time, families of latents scored as one
detector, the generalisation set, and the cross-fitted ceiling with its chance reference."""

import csv
import json
import re

import numpy as np
import pytest
import torch

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.family import Family, find_family, fit_concept_probe, pooled_block
from snce_lib.concepts.generalisation import cross_fitted_ceiling, discovery_concepts, load_generalisation_set
from snce_lib.concepts.positions import FUNCTION_WORDS
from snce_lib.concepts.vocabulary import vocabulary_codes, vocabulary_words
from snce_lib.resources import data_path

#: A slice of the vocabulary (the whole pass takes about 15 s; the tests read these words only).
WORDS = sorted({w for c in discovery_concepts() for w in c["words"]} | {"kitten", "frozen", "revolver", "pillow",
               "apples", "chair", "lamp", "bucket", "tractor", "stone", "basket", "sofa", "garden", "fire"})  # fmt: skip


@pytest.fixture(scope="module")
def vocab(minilm_random_sae):
    enc, sae = minilm_random_sae
    return vocabulary_codes(enc, sae, progress=False, only=WORDS)


def test_a_word_alone_reads_what_it_reads_at_the_start_of_a_padded_prompt(minilm_random_sae, vocab):
    """[BOS, word, EOS] with no padding gives the block features and code the word has in the pipeline's
    padded prompt (the encoder masks padding), so the vocabulary pass stands for real prompts."""
    enc, sae = minilm_random_sae
    words = ["kitten", "frozen", "revolver"]
    rows = [vocab.words.index(w) for w in words]
    h = enc.run_to_block(enc.tokenize(words), 4)[:, 1].float()
    assert torch.allclose(vocab.features[rows].float(), h, atol=2e-2)
    codes = prompt_codes(enc, sae, words)
    for r, p in zip(rows, range(len(words))):
        assert set(vocab.indices[r].tolist()) == set(codes.indices[p, 0].long().tolist())
    # only whole words: no WordPiece continuations, no numbers or marks
    got = dict(vocabulary_words(enc))
    assert "kitten" in got and not any(w.startswith("#") or not w.isalpha() for w in got)


def test_the_vocabulary_is_cached_beside_the_sae(minilm_random_sae, tmp_path, monkeypatch):
    import snce_lib.concepts.vocabulary as vocabulary

    enc, sae = minilm_random_sae
    few = vocabulary.vocabulary_words(enc)[:300]
    monkeypatch.setattr(vocabulary, "vocabulary_words", lambda _enc: few)
    first = vocabulary_codes(enc, sae, progress=False, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("vocabulary_*.safetensors"))) == 1 and len(first.words) == 300
    monkeypatch.setattr(vocabulary, "vocabulary_words", lambda _enc: pytest.fail("the cache was not read"))
    again = vocabulary_codes(enc, sae, progress=False, cache_dir=tmp_path)
    assert again.words == first.words and torch.equal(again.indices, first.indices)
    assert first.top_words(int(first.indices[0, 0]), 3)[0][1] > 0


def test_a_family_is_weighted_by_the_probe_direction_and_scores_as_one_detector(minilm_random_sae, vocab):
    enc, sae = minilm_random_sae
    c = next(x for x in discovery_concepts() if x["name"] == "cat")
    probe = fit_concept_probe(enc, c["examples"], c["counterexamples"], 4)
    # the probe separates its own examples, and scores "kitten" above "pillow" on its own
    x = np.concatenate([pooled_block(enc, c["examples"], 4), pooled_block(enc, c["counterexamples"], 4)])
    assert (probe.score(x)[:4] > probe.score(x)[4:].max()).all()
    fam = find_family(enc, sae, c["examples"], c["counterexamples"], vocab, probe=probe)
    assert fam.latents and len(fam.latents) == len(set(fam.latents))
    v = sae.W_dec.double().numpy() @ probe.w
    assert fam.weights == pytest.approx([v[f] for f in fam.latents])
    ex, cx = prompt_codes(enc, sae, c["examples"]), prompt_codes(enc, sae, c["counterexamples"])
    for f in fam.latents:  # none fires more on the counterexamples than on the examples
        assert ex.max_activation([f])[0].mean() > cx.max_activation([f])[0].mean()
    # the score is the weighted sum of each member's largest activation after BOS, by hand
    z = sae.encode_dense(enc.run_to_block(enc.tokenize(c["examples"]), 4).float())[:, 1:]
    by_hand = sum(w * z[..., f].max(dim=1).values.numpy() for f, w in zip(fam.latents, fam.weights))
    assert fam.scores(ex) == pytest.approx(by_hand, rel=1e-4, abs=1e-5)
    assert Family([], []).scores(ex).tolist() == [0.0] * 4


def test_the_cross_fitted_ceiling_is_at_chance_on_noise_and_high_on_a_planted_latent():
    """Choosing the best of 1,000 noise latents on the same 24 prompts reads high; chosen on half and
    scored on the other half it reads near 0.5, and a planted informative latent is found."""
    from snce_lib.concepts.generalisation import _aurocs

    rng = np.random.default_rng(0)
    pos, neg = rng.random((12, 1000)), rng.random((12, 1000))
    assert _aurocs(pos, neg).max() > 0.8  # in-sample choice: the luck of picking from 1,000
    assert abs(cross_fitted_ceiling(pos, neg) - 0.5) < 0.1
    pos[:, 7] += 1.0  # latent 7 carries the label
    assert cross_fitted_ceiling(pos, neg) > 0.9
    assert abs(cross_fitted_ceiling(pos, neg, shuffle=True) - 0.5) < 0.12


def test_the_generalisation_set_is_what_it_says():
    """12 concepts, each 12 fresh prompts that show it (at least 8 sharing no content word with its four
    examples) and 12 that do not (3-4 look-alikes), mean word counts within 0.75, none in the corpus."""
    sets = load_generalisation_set()
    concepts = {c["name"]: c for c in discovery_concepts()}
    assert set(sets) == set(concepts) and len(sets) == 12
    corpus = {r["prompt"] for r in csv.DictReader(open(data_path("corpus.csv"), encoding="utf-8"))}

    def words(s):
        return re.findall(r"[a-z0-9'-]+", s.lower())

    for name, fp in sets.items():
        ex_words = {w for e in concepts[name]["examples"] for w in words(e) if w not in FUNCTION_WORDS}
        fresh = [p for p in fp.positives if fp.kinds[p] == "fresh"]
        assert len(fp.positives) == 12 == len(fp.negatives) and len(fresh) >= 8
        assert all(not ex_words & set(words(p)) for p in fresh), name
        assert 3 <= sum(fp.kinds[p] == "lookalike" for p in fp.negatives) <= 4
        mean = [np.mean([len(words(p)) for p in side]) for side in (fp.positives, fp.negatives)]
        assert abs(mean[0] - mean[1]) <= 0.75, (name, mean)
        assert not corpus & set(fp.positives + fp.negatives)
    assert json.loads(data_path("discovery_concepts.json").read_text())["kind"] == "snce-discovery-concepts"


def test_coverage_says_in_how_many_examples_a_latent_fires_and_on_which_words(minilm_random_sae, vocab):
    from snce_lib.concepts.family import concept_scores, coverage
    from snce_lib.concepts.positions import encoder_words

    enc, sae = minilm_random_sae
    c = next(x for x in discovery_concepts() if x["name"] == "weather")
    ex = prompt_codes(enc, sae, c["examples"])
    words = encoder_words(enc, ex)
    z = sae.encode_dense(enc.run_to_block(enc.tokenize(c["examples"]), 4).float())[:, 1:]
    f = int(torch.argmax((z > 0).any(1).sum(0)))  # the latent that fires in the most examples
    cov = coverage(ex, words, [f])[0]
    assert cov["prompts"] == int((z[..., f] > 0).any(1).sum()) and cov["of"] == 4 and cov["words"]
    fam = find_family(enc, sae, c["examples"], c["counterexamples"], vocab)
    rows = concept_scores(enc, sae, ["rain on the roof", "  ", "a red chair"], f, fam)
    assert [r["prompt"] for r in rows] == ["rain on the roof", "a red chair"]
    assert rows[0]["family"] == pytest.approx(fam.scores(prompt_codes(enc, sae, ["rain on the roof"]))[0])


def test_the_concept_tester_scores_typed_prompts(minilm_random_sae, vocab):
    from snce_lib.workbook.widgets import concept_tester

    enc, sae = minilm_random_sae
    c = next(x for x in discovery_concepts() if x["name"] == "cat")
    probe = fit_concept_probe(enc, c["examples"], c["counterexamples"], 4)
    fam = find_family(enc, sae, c["examples"], c["counterexamples"], vocab, probe=probe)
    box = concept_tester(enc, sae, 5, fam, probe, prompts="a kitten asleep\na red car")
    t = box.controls["table"].value
    assert t.count("<tr>") == 3 and "a kitten asleep" in t and "dense probe" in t
    box.controls["prompts"].value = ""
    box.controls["update"]()
    assert "type a prompt" in box.controls["table"].value
