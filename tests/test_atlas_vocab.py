"""The vocabulary pass: each whole-word token alone, exact against a padded prompt of that word,
cached beside the SAE, and shown on a card even when the atlas's prompts never use the word."""

import numpy as np
import torch

from snce_lib.atlas.vocab import fingerprint, load_or_compute, vocabulary_top, whole_word_ids
from snce_lib.concepts.codes import prompt_codes

WORDS = ["kitten", "frozen", "car", "nothing", "red", "the"]


def test_one_token_prompts_match_the_padded_pipeline_exactly(minilm_random_sae):
    """Three-token prompts (BOS, word, end) give each word the code a padded prompt of that word
    gives it: the padding a real prompt carries cannot change the word's position."""
    enc, sae = minilm_random_sae
    ids = enc.tokenizer.convert_tokens_to_ids(WORDS)
    top = vocabulary_top(enc, sae, n=sae.cfg.n_latents, ids=ids, progress=False)
    codes = prompt_codes(enc, sae, WORDS)
    assert top.n_tokens == len(WORDS)
    for w, tid in zip(WORDS, ids):
        z = sae.to_dense(codes.values[WORDS.index(w), 0], codes.indices[WORDS.index(w), 0].long())
        for f in torch.nonzero(z > 0).flatten().tolist():
            got = dict(top.of(f))
            assert abs(got[tid] - float(z[f])) < 1e-4, (w, f)
    # each row is strongest first, and every token a feature lists lights it
    for f in range(sae.cfg.n_latents):
        vals = [a for _, a in top.of(f)]
        assert vals == sorted(vals, reverse=True) and all(a > 0 for a in vals)


def test_whole_word_ids_leave_out_pieces_and_special_tokens(minilm_random_sae):
    enc, _ = minilm_random_sae
    ids = whole_word_ids(enc)
    strings = set(enc.tokenizer.convert_ids_to_tokens(ids))
    assert {"kitten", "frozen", "nothing"} <= strings
    assert not any(s.startswith("##") for s in strings)
    assert not strings & {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "[unused0]"}
    assert 15_000 < len(ids) < len(enc.tokenizer)


def test_the_pass_is_cached_beside_the_sae_and_redone_for_another(minilm_random_sae, tmp_path, monkeypatch):
    enc, sae = minilm_random_sae
    import snce_lib.atlas.vocab as vocab

    few = enc.tokenizer.convert_tokens_to_ids(WORDS)
    monkeypatch.setattr(vocab, "whole_word_ids", lambda encoder: few)
    first = load_or_compute(enc, sae, tmp_path, n=4, progress=False)
    assert not first.cached and (tmp_path / "vocab_top.safetensors").exists() and first.seconds >= 0
    again = load_or_compute(enc, sae, tmp_path, n=4, progress=False)
    assert again.cached and np.array_equal(again.tokens, first.tokens) and np.array_equal(again.values, first.values)
    other = type(sae)(sae.cfg)
    other.load_state_dict(sae.state_dict())
    with torch.no_grad():
        other.W_enc.mul_(-1)
    assert fingerprint(enc, other) != fingerprint(enc, sae)
    redone = load_or_compute(enc, other.requires_grad_(False), tmp_path, n=4, progress=False)
    assert not redone.cached


def test_a_card_shows_a_word_the_atlas_never_saw(minilm_random_sae):
    """The feature that "kitten" lights most on its own is shown with "kitten" on its card, though
    no prompt of the atlas holds the word."""
    from snce_lib.atlas.cards import feature_card
    from snce_lib.atlas.map import build_atlas

    enc, sae = minilm_random_sae
    prompts = ["a red car on a road", "a dog in the snow", "a frozen lake at night", "a house by the sea"]
    atlas = build_atlas(enc, sae, prompts, progress=False)
    ids = whole_word_ids(enc)
    atlas.vocab = vocabulary_top(enc, sae, n=3, ids=ids[:3000] + enc.tokenizer.convert_tokens_to_ids(["kitten"]),
                                 progress=False)  # fmt: skip
    kitten = enc.tokenizer.convert_tokens_to_ids("kitten")
    hits = [(a, f) for f in range(sae.cfg.n_latents) for t, a in atlas.vocab.of(f) if t == kitten]
    assert hits, "kitten lights some feature among its top tokens"
    f = max(hits)[1]
    html = feature_card(atlas, f)["html"]
    assert "Vocabulary alone" in html and "kitten" in html and not any("kitten" in p for p in prompts)
