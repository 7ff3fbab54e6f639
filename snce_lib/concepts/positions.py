"""Where a feature fires: every position of a prompt is BOS, end-or-padding, a function word or
punctuation, or a content word, and its word pieces are joined into the whole word it belongs to.

A busy dictionary spends many features on positions that carry no concept: the padding after a
prompt (76 - length positions of SD's 77, the most numerous by far), the end token, and words such
as "a", "of" and ",". Labelled by the tokens they fire on, those features lead every table
("[PAD], brutally, herd"). Classifying each feature by where most of its firings fall lets the atlas
show the content features by default and say how many it set aside, and why.

BOS (position 0) is never encoded: it is the same vector for every prompt, so it is left out of
training and of every statistic (PromptCodes start at position 1); its count is zero by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snce_lib.concepts.codes import PromptCodes

KINDS = ("bos", "end_pad", "function", "content")
BOS, END_PAD, FUNCTION, CONTENT = range(4)
WHY = {
    "bos": "the start token (never encoded: the same for every prompt)",
    "end_pad": "the end token and the padding after the prompt",
    "function": "function words and punctuation (a, of, with, ',')",
    "content": "content words",
}

#: Words that carry grammar rather than a concept: articles, pronouns, prepositions, conjunctions,
#: auxiliaries and quantifiers. A feature that fires mostly on these is set aside from the atlas.
FUNCTION_WORDS = frozenset(
    """a an the this that these those some any no every each all both either neither nothing none
    i me my you your he him his she her it its we us our they them their who whom whose which what
    of in on at by for with without from to into onto over under above below between among through
    across against along around behind beside near off out up down about after before during since
    until upon within and or but nor so yet if than as because while though although
    is are was were be been being am do does did has have had having will would can could shall
    should may might must not very too also just only more most much many such own same other""".split()
)


@dataclass
class Words:
    """Every encoded position's whole word and kind. [prompts, L-1] each, as PromptCodes."""

    word: np.ndarray
    """Index into `vocabulary` of the whole word a position belongs to (pieces joined, lower case)."""
    kind: np.ndarray
    """Index into KINDS."""
    vocabulary: list[str]

    def word_of(self, prompt: int, position: int) -> str:
        return self.vocabulary[int(self.word[prompt, position])]


def _piece(token: str) -> tuple[str, bool, bool]:
    """(text, continues the previous piece, ends a word) for a WordPiece ("##ing") or BPE ("cat</w>") token."""
    if token.startswith("##") and len(token) > 2:
        return token[2:], True, False
    if token.endswith("</w>"):
        return token[:-4], False, True
    return token, False, False


def whole_words(codes: PromptCodes, token_string, special_ids=()) -> Words:
    """Join each prompt's pieces into whole words and classify every position.

    WordPiece marks a continuation ("brut", "##ally"); CLIP's BPE marks a word's end ("brut",
    "ally</w>"). A tokenizer that uses "</w>" anywhere is read as BPE. Special tokens and padding are
    end-or-padding; a word in FUNCTION_WORDS or without a letter or digit is a function word."""
    ids = codes.token_ids.numpy()
    uniq = np.unique(ids)
    text = {int(t): str(token_string(int(t))) for t in uniq}
    bpe = any(s.endswith("</w>") for s in text.values())
    special = {int(t) for t in special_ids}
    real, pad = codes.real.numpy(), codes.pad.numpy()
    vocab: dict[str, int] = {"[PAD]": 0, "[END]": 1}
    word = np.zeros(ids.shape, dtype=np.int32)
    kind = np.full(ids.shape, END_PAD, dtype=np.int8)
    for p in range(ids.shape[0]):
        start, pieces = None, []
        for j in range(ids.shape[1]):
            tid = int(ids[p, j])
            if pad[p, j] or not real[p, j]:
                word[p, j] = 0
                continue
            if tid in special:
                word[p, j] = 1
                continue
            piece, cont, ends = _piece(text[tid])
            if bpe:
                if start is None:
                    start, pieces = j, []
                pieces.append(piece)
                done = ends or j + 1 == ids.shape[1] or not real[p, j + 1] or int(ids[p, j + 1]) in special
            else:
                if not cont or start is None:
                    start, pieces = j, []
                pieces.append(piece)
                nxt = j + 1 < ids.shape[1] and real[p, j + 1] and text[int(ids[p, j + 1])].startswith("##")
                done = not nxt
            if done:
                w = "".join(pieces).lower()
                wid = vocab.setdefault(w, len(vocab))
                word[p, start : j + 1] = wid
                is_function = w in FUNCTION_WORDS or not any(ch.isalnum() for ch in w)
                kind[p, start : j + 1] = FUNCTION if is_function else CONTENT
                start = None
    return Words(word, kind, list(vocab))


@dataclass
class FeatureKinds:
    kind: np.ndarray
    """Per feature: index into KINDS of where most of its firings fall; -1 if it never fires."""
    shares: np.ndarray
    """[features, len(KINDS)]: the share of each feature's firings on each kind of position."""

    def names(self) -> list[str]:
        return ["dead" if k < 0 else KINDS[k] for k in self.kind]

    def content(self) -> np.ndarray:
        return self.kind == CONTENT


def feature_kinds(codes: PromptCodes, words: Words) -> FeatureKinds:
    """Classify each feature by the kind of position most of its firings fall on (content wins a tie)."""
    import torch

    mask = codes.mask()
    on = (codes.values > 0) & mask.unsqueeze(-1)
    kinds = torch.from_numpy(words.kind.astype(np.int64)).unsqueeze(-1).expand_as(codes.indices)
    pair = codes.indices[on].long() * len(KINDS) + kinds[on]
    counts = torch.bincount(pair, minlength=codes.n_latents * len(KINDS)).view(codes.n_latents, len(KINDS))
    counts = counts.double().numpy()
    total = counts.sum(1)
    shares = counts / np.maximum(total, 1)[:, None]
    # content first among equals: argmax picks the first maximum, so search from the content end
    kind = (len(KINDS) - 1) - np.argmax(shares[:, ::-1], axis=1)
    kind[total == 0] = -1
    return FeatureKinds(kind.astype(np.int64), shares)


def kind_summary(kinds: FeatureKinds) -> dict:
    """How many features fire mostly on each kind of position, and their share of the live ones."""
    names = kinds.names()
    live = sum(n != "dead" for n in names)
    counts = {k: sum(n == k for n in names) for k in (*KINDS, "dead")}
    return {
        "features": len(names),
        "live": live,
        "counts": counts,
        "shares": {k: counts[k] / max(live, 1) for k in KINDS},
    }


def describe_set_aside(summary: dict) -> str:
    """One sentence: how many features are shown (content) and how many are set aside, and why."""
    c, live = summary["counts"], summary["live"]
    parts = [f"{c[k]} ({c[k] / max(live, 1):.0%}) fire mostly on {WHY[k]}" for k in ("end_pad", "function")]
    return (f"showing {c['content']} content features ({c['content'] / max(live, 1):.0%} of {live} live); "
            f"set aside: {'; '.join(parts)}; {c['bos']} on BOS ({WHY['bos']}); {c['dead']} never fire")  # fmt: skip


def special_ids(encoder) -> tuple[int, ...]:
    """The encoder's special tokens (end, separator, padding): the end-or-padding positions."""
    return tuple(int(t) for t in getattr(encoder.tokenizer, "all_special_ids", ()) or ())


def encoder_words(encoder, codes: PromptCodes) -> Words:
    """`whole_words` of codes made with `encoder` (its token strings and special tokens)."""
    return whole_words(codes, lambda t: encoder.token_strings([t])[0], special_ids(encoder))


def content_only(codes: PromptCodes, words: Words) -> PromptCodes:
    """The same codes with only content-word positions counted (`real` narrowed to them, no padding):
    any score read with `include_padding=False` then reads content positions alone."""
    import torch

    keep = torch.from_numpy(words.kind == CONTENT) & codes.real
    return PromptCodes(codes.prompts, codes.values, codes.indices, keep, torch.zeros_like(codes.pad),
                       codes.token_ids, codes.n_latents)  # fmt: skip
