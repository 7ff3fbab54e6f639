"""SD v1.4's own tokenizer in the hub-shaped cache, rebuilt from CLIP's byte-pair file (open_clip_torch):
the ids SD v1.4 gives, its 77-token cut, and whole words joined from its pieces."""

import importlib.util

import numpy as np
import pytest
import torch

from snce_lib.models.encoders import SD14, load_sd
from snce_lib.models.hubcache import (
    BOS,
    EOS,
    N_MERGES,
    VOCAB_SIZE,
    TokenizerSourceError,
    build_sd14,
    bytes_to_unicode,
    clip_vocab,
)

CAT = [49406, 320, 1125, 539, 320, 2368, 49407]  # SD v1.4's ids for "a photo of a cat"
LONG = (
    "a hyperdetailed oil painting of a lighthouse keeper reading beside a storm lamp, cinematic lighting, "
    "volumetric fog, intricate brushwork, trending on artstation, by greg rutkowski and alphonse mucha, "
    "ultra sharp focus, golden hour, octane render, unreal engine five, eight k resolution, masterpiece, "
    "award winning photograph, national geographic cover, dramatic clouds over the northern sea, "
    "seagulls circling the tower, waves breaking on black rocks"
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf")
    return home, build_sd14(home)


def test_the_vocabulary_is_clips_own():
    vocab, merges = clip_vocab()
    assert len(vocab) == VOCAB_SIZE == 49408 and len(merges) == N_MERGES == 48894
    symbols = list(bytes_to_unicode().values())
    ids = list(vocab.values())
    assert ids == list(range(VOCAB_SIZE))  # every id once, in CLIP's order
    assert list(vocab)[:256] == symbols and list(vocab)[256:512] == [s + "</w>" for s in symbols]
    assert vocab[BOS] == 49406 and vocab[EOS] == 49407
    assert vocab["".join(merges[0].split())] == 512  # the first merge follows the byte symbols


def test_known_ids_through_the_hub_cache(hub):
    """`from_pretrained` of SD v1.4's id, resolved by the hub client in the cache, gives SD's ids."""
    from transformers import CLIPTokenizer

    home, _ = hub
    tok = CLIPTokenizer.from_pretrained(SD14, subfolder="tokenizer", cache_dir=home / "hub", local_files_only=True)
    assert len(tok) == VOCAB_SIZE and tok.model_max_length == 77
    assert tok("a photo of a cat")["input_ids"] == CAT
    assert tok.pad_token_id == tok.eos_token_id == 49407  # SD pads with the end token


def test_long_prompts_are_cut_at_77_tokens_where_sd_cuts_them(hub):
    _, snapshot = hub
    enc = load_sd(str(snapshot), device="cpu")
    full = enc.tokenizer(LONG)["input_ids"]
    assert len(full) > 77
    with pytest.warns(UserWarning, match="longer than the encoder's 77 tokens"):
        toks = enc.tokenize([LONG, "a photo of a cat"])
    ids = toks.input_ids[0].tolist()
    assert len(ids) == 77 and ids[:76] == full[:76] and ids[76] == 49407  # BOS + 75 pieces + EOS
    assert toks.input_ids[1, :7].tolist() == CAT and (toks.input_ids[1, 7:] == 49407).all()
    assert toks.attention_mask[1].sum() == 7 and toks.attention_mask[0].sum() == 77


def test_encoder_words_join_bpe_pieces_into_whole_words(hub):
    from snce_lib.concepts.codes import prompt_codes
    from snce_lib.concepts.positions import CONTENT, END_PAD, FUNCTION, encoder_words
    from snce_lib.sae.model import SAEConfig, TopKSAE

    _, snapshot = hub
    enc = load_sd(str(snapshot), device="cpu")
    prompts = ["a nakedness superintendent", "a photo of a cat"]
    pieces = enc.token_strings(enc.tokenizer(prompts[0])["input_ids"])
    assert pieces == [BOS, "a</w>", "naked", "ness</w>", "superintendent</w>", EOS]
    torch.manual_seed(0)
    sae = TopKSAE(SAEConfig(enc.width, 64, 4, layer="encoder.layers.9", layer_index=9)).requires_grad_(False)
    words = encoder_words(enc, prompt_codes(enc, sae, prompts))
    # codes start at position 1 (after BOS): a, naked, ness, superintendent, EOS, padding
    row = [words.word_of(0, j) for j in range(5)]
    assert row[:4] == ["a", "nakedness", "nakedness", "superintendent"]
    assert words.kind[0, :4].tolist() == [FUNCTION, CONTENT, CONTENT, CONTENT]
    assert words.kind[0, 4] == END_PAD and (words.kind[0, 5:] == END_PAD).all()
    assert [words.word_of(1, j) for j in range(5)] == ["a", "photo", "of", "a", "cat"]
    assert np.array_equal(words.word[0, 1:3], [words.vocabulary.index("nakedness")] * 2)


def test_a_missing_byte_pair_file_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "open_clip" else real(name, *a))
    with pytest.raises(TokenizerSourceError, match=r"pip install --no-deps open_clip_torch"):
        clip_vocab()
