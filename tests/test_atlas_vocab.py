"""The card's "vocabulary alone" view: each feature's strongest words from the one vocabulary pass
(`concepts.vocabulary`), exact against a padded prompt of that word, read from the pass's cache
beside the SAE, and shown on a card even when the atlas's prompts never use the word."""

import torch

from snce_lib.atlas.vocab import load_or_compute, vocabulary_top
from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.vocabulary import vocabulary_codes, vocabulary_words

WORDS = ["kitten", "frozen", "car", "nothing", "red", "the"]


def test_each_feature_lists_the_words_that_light_it_alone_exactly(minilm_random_sae):
    """A word's activation on the card is the one a padded prompt of that word gives it, and each
    row is strongest first with only words that fire."""
    enc, sae = minilm_random_sae
    top = vocabulary_top(vocabulary_codes(enc, sae, progress=False, only=WORDS), n=sae.cfg.n_latents)
    codes = prompt_codes(enc, sae, WORDS)
    assert top.n_tokens == len(WORDS)
    ids = dict(zip(WORDS, enc.tokenizer.convert_tokens_to_ids(WORDS)))
    checked = 0
    for i, w in enumerate(WORDS):
        z = sae.to_dense(codes.values[i, 0], codes.indices[i, 0].long())
        for f in torch.nonzero(z > 0).flatten().tolist():
            assert abs(dict(top.of(f))[ids[w]] - float(z[f])) < 1e-4, (w, f)
            checked += 1
    assert checked >= len(WORDS) * sae.cfg.k // 2
    for f in range(sae.cfg.n_latents):
        vals = [a for _, a in top.of(f)]
        assert vals == sorted(vals, reverse=True) and all(a > 0 for a in vals)


def test_the_card_view_reads_the_cached_pass(minilm_random_sae, tmp_path, monkeypatch):
    enc, sae = minilm_random_sae
    import snce_lib.concepts.vocabulary as vocabulary

    few = [p for p in vocabulary_words(enc) if p[0] in WORDS]
    monkeypatch.setattr(vocabulary, "vocabulary_words", lambda encoder: few)
    first = load_or_compute(enc, sae, tmp_path, n=4, progress=False)
    assert not first.cached and first.seconds >= 0 and list(tmp_path.glob("vocabulary_*.safetensors"))
    again = load_or_compute(enc, sae, tmp_path, n=4, progress=False)
    assert again.cached and (again.tokens == first.tokens).all() and (again.values == first.values).all()


def test_a_card_shows_a_word_the_atlas_never_saw(minilm_random_sae):
    """The feature that "kitten" lights most on its own is shown with "kitten" on its card, though
    no prompt of the atlas holds the word."""
    from snce_lib.atlas.cards import feature_card
    from snce_lib.atlas.map import build_atlas

    enc, sae = minilm_random_sae
    prompts = ["a red car on a road", "a dog in the snow", "a frozen lake at night", "a house by the sea"]
    atlas = build_atlas(enc, sae, prompts, progress=False)
    words = [w for w, _ in vocabulary_words(enc)][:3000] + ["kitten"]
    atlas.vocab = vocabulary_top(vocabulary_codes(enc, sae, progress=False, only=words), n=3)
    kitten = enc.tokenizer.convert_tokens_to_ids("kitten")
    hits = [(a, f) for f in range(sae.cfg.n_latents) for t, a in atlas.vocab.of(f) if t == kitten]
    assert hits, "kitten lights some feature among its top tokens"
    f = max(hits)[1]
    html = feature_card(atlas, f)["html"]
    assert "Vocabulary alone" in html and "kitten" in html and not any("kitten" in p for p in prompts)
