"""Where a feature is strong decides its kind (not where it fires most often), labels keep a
function-word trigger, kinds and labels come from the label half of the distinct prompts, and no
kind stands for BOS, which is never encoded."""

import numpy as np
import torch

from snce_lib.atlas.labels import label_features, label_kinds, label_split
from snce_lib.atlas.map import Atlas
from snce_lib.concepts.codes import PromptCodes, firing_frequency
from snce_lib.concepts.positions import (
    CONTENT,
    END_PAD,
    KINDS,
    WHY,
    describe_set_aside,
    feature_kinds,
    kind_summary,
    whole_words,
)
from tests.test_positions import PAD, SEP, store

VOCAB = ["[PAD]", "[SEP]", "a", "red", "car", "on", "road", "nude", "naked", "wearing", "nothing", "sky"]
CAR, NUDE, NAKED, NOTHING = 4, 7, 8, 10


def rows(n: int, seed: int = 0) -> list[list[int]]:
    """n prompts of 2-7 tokens from "a red on road sky", "car" in every fifth."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        body = [int(t) for t in rng.choice([2, 3, 5, 6, 11], size=int(rng.integers(2, 7)))]
        if i % 5 == 0:
            body.insert(1, CAR)
        out.append(body)
    return out


def atlas_of(codes: PromptCodes) -> Atlas:
    return Atlas(codes, firing_frequency(codes), lambda t: VOCAB[t], codes.n_latents, (SEP, PAD))


def car_store(n: int = 80) -> PromptCodes:
    """Latent 0: 4.9 on "car", 0.28 on every padding position (the issue's #95), where four padding
    latents are stronger (so it is not among a padding position's 4 strongest). Latent 1: a padding
    feature, 3.0 on padding and the end token, 0.2 on "road". Latent 2: 1.0 on "red". Latents 3-5:
    more padding features."""

    def fire(t, pad):
        out = {}
        if pad:
            out = {0: 0.28, 1: 3.0, 3: 1.0, 4: 1.1, 5: 1.2}
        elif t == SEP:
            out = {1: 3.0}
        elif t == CAR:
            out = {0: 4.9}
        elif t == 6:
            out = {1: 0.2}
        elif t == 3:
            out = {2: 1.0}
        return out

    prompts = rows(n)
    codes = store(prompts, 6, fire)
    codes.prompts = [f"prompt {i}" for i in range(n)]
    return codes


def test_a_word_feature_with_a_weak_padding_tail_is_a_content_feature():
    """Counting firings calls the "car" latent a padding feature (its weak padding firings are far
    more numerous); where its strongest firings fall calls it a content feature, and its label is
    "car". The padding feature whose weak tail is on a word stays a padding feature."""
    codes = car_store()
    words = whole_words(codes, lambda t: VOCAB[t], special_ids=(SEP, PAD))
    kinds = feature_kinds(codes, words)
    assert kinds.shares[0, END_PAD] > 0.8  # most of its firings are on padding ...
    assert kinds.by_count()[0] == END_PAD  # ... so a count sets it aside, as the atlas once did
    assert kinds.names() == ["content", "end_pad", "content", "end_pad", "end_pad", "end_pad"]
    assert kinds.strength[0, CONTENT] > 0.8 and kinds.strength[1, END_PAD] > 0.9
    assert kind_summary(kinds)["counts"] == {"end_pad": 4, "function": 0, "content": 2, "dead": 0}
    labels = label_features(atlas_of(codes))
    assert labels[0].kind == "content" and labels[0].specific[0] == "car" and labels[0].score > 0.9
    assert labels[1].kind == "end_pad" and labels[1].specific[0] in ("[PAD]", "[END]")


def test_a_busy_feature_that_peaks_on_words_but_is_strong_only_on_padding_is_set_aside():
    """Latent 0 fires everywhere: 1.1 on every word (where four word latents are stronger) and 1.0
    on padding (where it is among the strongest). Its largest activation in every prompt is on a
    word, yet where it is strong is the padding: it is a padding feature, and so labelled. Latent 5,
    never among a position's four strongest, is classified by its per-prompt peaks (on "red")."""

    def fire(t, pad):
        if pad or t == SEP:
            return {0: 1.0, 1: 0.5}
        out = {0: 1.1, 1: 2.0, 2: 2.1, 3: 2.2, 4: 2.3}
        return {**out, 5: 0.9} if t == 3 else out

    codes = store(rows(60, seed=5), 6, fire)
    codes.prompts = [f"p{i}" for i in range(60)]
    kinds = feature_kinds(codes, whole_words(codes, lambda t: VOCAB[t], (SEP, PAD)))
    assert kinds.names()[0] == "end_pad" and kinds.names()[5] == "content"
    assert kinds.strength[0, END_PAD] == 1.0 and kinds.strength[5, CONTENT] == 1.0
    labels = label_features(atlas_of(codes))
    assert labels[0].kind == "end_pad" and labels[0].specific[0] in ("[PAD]", "[END]")


def test_no_kind_for_bos_which_is_never_encoded():
    assert "bos" not in KINDS and "bos" not in WHY
    summary = kind_summary(feature_kinds(car_store(), whole_words(car_store(), lambda t: VOCAB[t], (SEP, PAD))))
    assert "bos" not in summary["counts"]
    text = describe_set_aside(summary)
    assert "BOS" not in text and text.startswith("showing 2 content features")


def test_a_label_keeps_its_function_word_trigger_marked():
    """A nudity feature fires at 1.5 on "nude" and "naked" in two prompts of three and hardest (2.0)
    on "nothing" in "wearing nothing" in the third: it is a content feature (its strong peaks hold
    more activation on its words), and its label keeps "nothing", marked as a function word, and
    names it its trigger."""

    def fire(t, pad):
        return {0: {NUDE: 1.5, NAKED: 1.5, NOTHING: 2.0}[t]} if t in (NUDE, NAKED, NOTHING) and not pad else {}

    rng = np.random.default_rng(1)
    prompts = [[2, int(rng.choice([NUDE, NAKED])), 5, 6] if i % 3 else [9, NOTHING, 5, 11] for i in range(60)]
    codes = store(prompts, 2, fire)
    codes.prompts = [f"p{i}" for i in range(60)]
    lab = label_features(atlas_of(codes))[0]
    assert lab.kind == "content" and set(lab.specific[:2]) == {"nude", "naked"}
    assert lab.trigger == "nothing" and lab.function_words == ["nothing"]
    assert "nothing (function word)" in lab.label and lab.specific[-1] == "nothing"
    assert lab.score is not None and lab.score > 0.9  # "nothing" is where it fires on the held-out half too


def test_kinds_and_labels_come_from_the_label_half_of_the_distinct_prompts():
    """Each prompt appears twice in a row. Split by index, every prompt would be on both sides; split
    after dropping duplicates, the halves share none. Latent 0 is a "car" feature on the distinct
    prompts of the label half and a padding feature on the other half's: its kind is the label half's."""
    base = rows(40, seed=3)
    for r in base:  # every prompt has "car"
        if CAR not in r:
            r.insert(0, CAR)
    doubled = [r for r in base for _ in range(2)]
    names = [f"prompt {i // 2}" for i in range(len(doubled))]
    make, test = label_split(names)
    assert not set(np.array(names)[make]) & set(np.array(names)[test])
    assert make.sum() == test.sum() == 20 and not (make & test).any()
    label_prompt = {names[i] for i in np.flatnonzero(make)}
    codes = store(doubled, 1, lambda t, pad: {})
    dense = torch.zeros(len(doubled), codes.values.shape[1], 1)
    for p, r in enumerate(doubled):
        if names[p] in label_prompt:
            dense[p, r.index(CAR), 0] = 2.0  # strong on "car" in the label half
        else:
            dense[p, codes.pad[p], 0] = 5.0  # strong on padding in the other
    codes = PromptCodes.from_dense(names, dense, codes.real, codes.pad, codes.token_ids)
    atlas = atlas_of(codes)
    assert feature_kinds(codes, atlas.words).names() == ["end_pad"]  # from every prompt: padding wins
    assert label_kinds(atlas).names() == ["content"]
    lab = label_features(atlas)[0]
    assert lab.kind == "content" and lab.specific[0] == "car" and lab.held_out == 20
