"""Where features fire (BOS, end or padding, function words, content words), whole words from word
pieces, and discovery that finds a planted concept from four examples."""

import numpy as np
import torch

from snce_lib.concepts.codes import PromptCodes
from snce_lib.concepts.positions import (
    CONTENT,
    END_PAD,
    FUNCTION,
    content_only,
    describe_set_aside,
    feature_kinds,
    kind_summary,
    whole_words,
)

VOCAB = ["[PAD]", "[SEP]", "a", "of", "brut", "##ally", "storm", "##y", "sky", "calm", ",", "cat"]
SEP, PAD = 1, 0


def store(prompts_tokens, n_latents, fire):
    """PromptCodes of token rows (each ends in [SEP], then padding to the same length), with
    `fire(token, position_is_pad)` -> {latent: value} giving each position's code."""
    width = max(len(t) for t in prompts_tokens) + 3
    n = len(prompts_tokens)
    tok = torch.zeros(n, width, dtype=torch.long)
    real = torch.zeros(n, width, dtype=torch.bool)
    dense = torch.zeros(n, width, n_latents)
    for p, toks in enumerate(prompts_tokens):
        row = [*toks, SEP]
        tok[p, : len(row)] = torch.tensor(row)
        real[p, : len(row)] = True
        for j in range(width):
            for f, v in fire(int(tok[p, j]), j >= len(row)).items():
                dense[p, j, f] = v
    return PromptCodes.from_dense([str(t) for t in prompts_tokens], dense, real, ~real, tok)


def planted():
    """Latent 0 fires on padding and the end token, 1 on "a"/"of"/",", 2 on "brutally", 3 on "storm"
    pieces, 4 never."""

    def fire(t, pad):
        if pad or t == SEP:
            return {0: 3.0}
        if t in (2, 3, 10):
            return {1: 2.0}
        return {2: 1.0} if t in (4, 5) else ({3: 1.5} if t in (6, 7) else {})

    rows = [[2, 4, 5, 11, 3, 8], [2, 6, 7, 8, 10, 9], [9, 11], [2, 11, 3, 2, 6, 7, 8]]
    return store(rows, 5, fire)


def test_word_pieces_join_into_whole_words_for_wordpiece_and_bpe():
    codes = planted()
    w = whole_words(codes, lambda t: VOCAB[t], special_ids=(SEP, PAD))
    assert [w.word_of(0, j) for j in range(6)] == ["a", "brutally", "brutally", "cat", "of", "sky"]
    assert w.word_of(1, 1) == w.word_of(1, 2) == "stormy"
    assert w.kind[0, 0] == FUNCTION and w.kind[0, 1] == CONTENT and w.kind[1, 4] == FUNCTION
    assert w.kind[0, 6] == END_PAD and w.kind[0, 8] == END_PAD  # the end token, then padding
    bpe = ["[PAD]", "<|endoftext|>", "a</w>", "of</w>", "brut", "ally</w>", "storm", "y</w>", "sky</w>",
           "calm</w>", ",</w>", "cat</w>"]  # fmt: skip
    wb = whole_words(codes, lambda t: bpe[t], special_ids=(SEP, PAD))
    assert wb.word_of(0, 1) == wb.word_of(0, 2) == "brutally" and wb.word_of(1, 2) == "stormy"
    assert wb.word_of(0, 3) == "cat"


def test_padding_function_and_content_features_are_told_apart_on_a_planted_store():
    codes = planted()
    w = whole_words(codes, lambda t: VOCAB[t], special_ids=(SEP, PAD))
    kinds = feature_kinds(codes, w)
    assert kinds.names() == ["end_pad", "function", "content", "content", "dead"]
    assert kinds.shares[0, END_PAD] == 1.0 and kinds.shares[1, FUNCTION] == 1.0
    s = kind_summary(kinds)
    assert s["live"] == 4 and s["counts"]["content"] == 2 and s["shares"]["end_pad"] == 0.25
    text = describe_set_aside(s)
    assert (
        text.startswith("showing 2 content features (50% of 4 live)")
        and "1 silent on the prompts kinds are read on" in text
    )
    only = content_only(codes, w)
    assert not only.pad.any() and int(only.real.sum()) == int((w.kind == CONTENT).sum())


def test_discovery_finds_a_planted_concept_from_four_examples():
    """Four "storm" prompts against four calm ones, one of which mentions a storm ("calm after the
    storm"). The examples are shorter, so the padding latent (0) fires on more of their positions.
    The paper's strict filter drops the storm latent for its one counterexample firing; the default
    lens (largest activation on content positions, examples minus counterexamples) puts it first."""
    from snce_lib.atlas.explore import DEFAULT_DISCOVERY, discover_codes

    def fire(t, pad):
        if pad or t == SEP:
            return {0: 3.0}
        if t in (2, 3, 10):
            return {1: 2.0}
        return {3: 0.5} if t in (6, 7) else ({2: 1.0} if t == 11 else {})

    ex = store([[2, 6, 7], [6, 8], [2, 6, 7, 8], [6, 7]], 5, fire)
    cx = store([[2, 9, 8, 3, 2, 6, 10, 8], [2, 11, 3, 9, 8, 8], [9, 8, 10, 2, 11, 3, 8], [2, 9, 11, 8, 3, 8]],
               5, fire)  # fmt: skip

    def words(c):
        return whole_words(c, lambda t: VOCAB[t], special_ids=(SEP, PAD))

    found = discover_codes(ex, cx, words(ex), words(cx))
    assert next(iter(found)) == DEFAULT_DISCOVERY
    assert found[DEFAULT_DISCOVERY].top(1) == [3]
    assert set(found) >= {"SNCE strict", "mean difference"}
    assert 3 not in found["SNCE strict"].top(3)
    assert np.isfinite(found[DEFAULT_DISCOVERY].scores).all()


def test_peaks_of_some_prompts_are_the_peaks_made_on_those_prompts():
    """The label half's peaks, cut from every prompt's, equal the peaks made on that half alone."""
    from snce_lib.concepts.positions import prompt_peaks

    codes = planted()
    half = np.array([True, False, True, False])
    cut, alone = prompt_peaks(codes).of_prompts(half), prompt_peaks(codes, half)
    for a, b in zip((cut.feature, cut.prompt, cut.position, cut.value, cut.starts),
                    (alone.feature, alone.prompt, alone.position, alone.value, alone.starts)):  # fmt: skip
        assert np.array_equal(a, b)
    assert set(cut.prompt.tolist()) == {0, 2} and len(cut.feature) > 0
