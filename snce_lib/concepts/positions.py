"""Where a feature fires: every encoded position of a prompt is end-or-padding, a function word or
punctuation, or a content word, and its word pieces are joined into the whole word it belongs to.

A busy dictionary spends many features on positions that carry no concept: the padding after a
prompt (76 - length positions of SD's 77, the most numerous by far), the end token, and words such
as "a", "of" and ",". Labelled by the tokens they fire on, those features lead every table
("[PAD], brutally, herd"). Classifying each feature by where it is strong lets the atlas show the
content features by default and say how many it set aside, and why.

A feature's kind is decided by where it is **strong**, not by where most of its firings fall: over
the positions where it is among the `STRONG` largest activations of the position (the same notion
of strong that names its label, `atlas.labels`), the kind of position that holds the most of its
activation. Counting firings instead hid word features with a weak padding tail: a feature that
fires at 4.9 on "car" and at 0.3 on the padding of many prompts fires mostly on padding, yet it is
a "car" feature; on padding, other features are stronger, so its tail does not vote. A feature that
is never among any position's strongest is classified by its per-prompt peaks: the largest
activation of each prompt, where it falls, those that reach `STRONG_SHARE` of its top (the mean of
its `TOP_PEAKS` highest) voting with their activation.

BOS (position 0) is never encoded: it is the same vector for every prompt, so it is left out of
training and of every statistic (PromptCodes start at position 1), and no feature can fire there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snce_lib.concepts.codes import PromptCodes

KINDS = ("end_pad", "function", "content")
END_PAD, FUNCTION, CONTENT = range(3)
WHY = {
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
    """(text, continues the previous piece, ends a word) for a WordPiece ("##ing"), BPE ("cat</w>") or
    SentencePiece ("▁cat" starts a word, "s" continues it) token."""
    if token.startswith("▁"):
        return token[1:], False, False
    if token.startswith("##") and len(token) > 2:
        return token[2:], True, False
    if token.endswith("</w>"):
        return token[:-4], False, True
    return token, False, False


def whole_words(codes: PromptCodes, token_string, special_ids=()) -> Words:
    """Join each prompt's pieces into whole words and classify every position.

    WordPiece marks a continuation ("brut", "##ally"); CLIP's BPE marks a word's end ("brut",
    "ally</w>"); SentencePiece (T5) marks a word's start ("▁brut", "ally"). A tokenizer that uses "</w>"
    anywhere is read as BPE, one whose tokens start with "▁" as SentencePiece. Special tokens and padding are
    end-or-padding; a word in FUNCTION_WORDS or without a letter or digit is a function word."""
    ids = codes.token_ids.numpy()
    uniq = np.unique(ids)
    text = {int(t): str(token_string(int(t))) for t in uniq}
    bpe = any(s.endswith("</w>") for s in text.values())
    sp = not bpe and any(s.startswith("▁") for s in text.values())
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
                begins = text[tid].startswith("▁") if sp else not cont
                if begins or start is None:
                    start, pieces = j, []
                pieces.append(piece)
                nxt_text = text[int(ids[p, j + 1])] if j + 1 < ids.shape[1] and real[p, j + 1] else None
                if sp:
                    nxt = nxt_text is not None and not nxt_text.startswith("▁") and int(ids[p, j + 1]) not in special
                else:
                    nxt = nxt_text is not None and nxt_text.startswith("##")
                done = not nxt
            if done:
                w = "".join(pieces).lower()
                wid = vocab.setdefault(w, len(vocab))
                word[p, start : j + 1] = wid
                is_function = w in FUNCTION_WORDS or not any(ch.isalnum() for ch in w)
                kind[p, start : j + 1] = FUNCTION if is_function else CONTENT
                start = None
    return Words(word, kind, list(vocab))


#: A feature is strong at a position when it is among the position's STRONG largest activations.
STRONG = 4
#: A feature never strong anywhere: a per-prompt peak votes on its kind when it reaches this share of its top ...
STRONG_SHARE = 0.5
#: ... the mean of its TOP_PEAKS highest peaks (fewer where it fires in fewer prompts).
TOP_PEAKS = 5


@dataclass
class Firings:
    """Firings grouped by feature, strongest first. The order is an exact sort of the stored float32
    values (no combined float key, which rounds close values together). 1-d arrays, one entry a
    firing (`sorted_firings`) or a prompt's peak (`prompt_peaks`)."""

    feature: np.ndarray
    prompt: np.ndarray
    position: np.ndarray
    """Index into the codes' positions (token position - 1)."""
    value: np.ndarray
    starts: np.ndarray
    """[n_latents + 1]: feature f's entries are `starts[f]:starts[f + 1]`."""

    def of(self, feature: int) -> slice:
        return slice(int(self.starts[feature]), int(self.starts[feature + 1]))

    def rank(self) -> np.ndarray:
        """Each entry's place within its feature's entries (0: its strongest)."""
        return np.arange(len(self.feature)) - self.starts[self.feature]

    def of_prompts(self, prompts: np.ndarray) -> Firings:
        """The entries of the given prompts (a mask over all), in the same order."""
        keep = np.asarray(prompts, dtype=bool)[self.prompt]
        feature = self.feature[keep]
        starts = np.searchsorted(feature, np.arange(len(self.starts))).astype(np.int64)
        return Firings(feature, self.prompt[keep], self.position[keep], self.value[keep], starts)


def sorted_firings(codes: PromptCodes, prompts: np.ndarray | None = None) -> Firings:
    """Every firing after BOS (padding included) of the given prompts (default all): feature
    ascending, then value descending."""
    import torch

    sel = torch.ones(len(codes.prompts), dtype=torch.bool) if prompts is None else torch.as_tensor(prompts)
    on = (codes.values > 0) & (codes.mask() & sel.view(-1, 1)).unsqueeze(-1)
    shape = codes.indices.shape
    prompt = torch.arange(shape[0], dtype=torch.int32).view(-1, 1, 1).expand(shape)[on]
    position = torch.arange(shape[1], dtype=torch.int32).view(1, -1, 1).expand(shape)[on]
    feature, value = codes.indices[on].to(torch.int32), codes.values[on]
    order = torch.sort(value, descending=True, stable=True).indices  # two stable sorts: exact
    order = order[torch.sort(feature[order], stable=True).indices]
    feature = feature[order]
    starts = torch.searchsorted(feature, torch.arange(codes.n_latents + 1, dtype=torch.int32))
    return Firings(feature.numpy(), prompt[order].numpy(), position[order].numpy(), value[order].numpy(),
                   starts.numpy().astype(np.int64))  # fmt: skip


def prompt_peaks(codes: PromptCodes, prompts: np.ndarray | None = None, firings: Firings | None = None) -> Firings:
    """Each feature's peak (its largest activation, and where) in every prompt of the given ones
    where it fires, strongest first per feature. `firings`: `sorted_firings` of the same prompts."""
    fi = firings if firings is not None else sorted_firings(codes, prompts)
    # in that order the first firing of each (feature, prompt) is the prompt's peak
    key = fi.feature.astype(np.int64) * len(codes.prompts) + fi.prompt
    _, first = np.unique(key, return_index=True)
    first.sort()
    feature = fi.feature[first]
    starts = np.searchsorted(feature, np.arange(codes.n_latents + 1))
    return Firings(feature, fi.prompt[first], fi.position[first], fi.value[first], starts.astype(np.int64))


@dataclass
class FeatureKinds:
    kind: np.ndarray
    """Per feature: index into KINDS of where its strongest firings fall; -1 if it never fires."""
    shares: np.ndarray
    """[features, len(KINDS)]: the share of each feature's firings (a count) on each kind of position."""
    strength: np.ndarray | None = None
    """[features, len(KINDS)]: the share of each feature's activation where it is strong (module
    doc) on each kind of position; the kind is its largest."""

    def names(self) -> list[str]:
        return ["dead" if k < 0 else KINDS[k] for k in self.kind]

    def content(self) -> np.ndarray:
        return self.kind == CONTENT

    def by_count(self) -> np.ndarray:
        """The kind a count of firings would give (where most firings fall; content first among
        equals), as the atlas once classified features: for comparison. -1 if it never fires."""
        return np.where(self.kind < 0, -1, _largest(self.shares))


def _largest(shares: np.ndarray) -> np.ndarray:
    """Argmax per row with content first among equals (argmax picks the first: search from the content end)."""
    return ((len(KINDS) - 1) - np.argmax(shares[:, ::-1], axis=1)).astype(np.int64)


def feature_kinds(codes: PromptCodes, words: Words, prompts: np.ndarray | None = None,
                  strong_share: float = STRONG_SHARE, peaks: Firings | None = None) -> FeatureKinds:  # fmt: skip
    """Classify each feature by where it is strong (module doc), over the given prompts (default
    all; the atlas passes the half that makes labels). `peaks`: `prompt_peaks` of the same prompts,
    if already made."""
    import torch

    if not 0 <= strong_share <= 1:
        raise ValueError(f"strong_share must be in [0, 1], got {strong_share}")
    sel = torch.ones(len(codes.prompts), dtype=torch.bool) if prompts is None else torch.as_tensor(prompts)
    mask = codes.mask() & sel.view(-1, 1)
    on = (codes.values > 0) & mask.unsqueeze(-1)
    nk = len(KINDS)
    kinds = torch.from_numpy(words.kind.astype(np.int64)).unsqueeze(-1).expand_as(codes.indices)
    pair = codes.indices[on].long() * nk + kinds[on]
    counts = torch.bincount(pair, minlength=codes.n_latents * nk).view(codes.n_latents, nk).double().numpy()
    total = counts.sum(1)
    shares = counts / np.maximum(total, 1)[:, None]
    # where it is among a position's STRONG largest activations
    vals, idx = codes.values[mask], codes.indices[mask].long()
    order = torch.argsort(vals, dim=1, descending=True)[:, :STRONG]
    top_v, top_i = vals.gather(1, order), idx.gather(1, order)
    pos_kind = torch.from_numpy(words.kind.astype(np.int64))[mask].unsqueeze(1).expand_as(top_i)
    lit = top_v > 0
    strong_mass = torch.zeros(codes.n_latents * nk, dtype=torch.float64)
    strong_mass.index_add_(0, top_i[lit] * nk + pos_kind[lit], top_v[lit].double())
    strong_mass = strong_mass.view(codes.n_latents, nk).numpy()
    # a feature never strong anywhere: its per-prompt peaks that reach a share of its top
    pk = peaks if peaks is not None else prompt_peaks(codes, prompts)
    value = pk.value.astype(np.float64)
    first = pk.rank() < TOP_PEAKS
    top = np.bincount(pk.feature[first], weights=value[first], minlength=codes.n_latents)
    top /= np.maximum(np.bincount(pk.feature[first], minlength=codes.n_latents), 1)
    strong = value >= strong_share * top[pk.feature]
    where = words.kind[pk.prompt[strong], pk.position[strong]].astype(np.int64)
    mass = np.bincount(pk.feature[strong] * nk + where, weights=value[strong],
                       minlength=codes.n_latents * nk).reshape(codes.n_latents, nk)  # fmt: skip
    weak = strong_mass.sum(1) == 0
    mass = np.where(weak[:, None], mass, strong_mass)
    strength = mass / np.maximum(mass.sum(1), 1e-30)[:, None]
    kind = _largest(strength)
    kind[total == 0] = -1
    return FeatureKinds(kind, shares, strength)


def kind_summary(kinds: FeatureKinds) -> dict:
    """How many features are strongest on each kind of position, and their share of the live ones."""
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
    parts = [f"{c[k]} ({c[k] / max(live, 1):.0%}) are strongest on {WHY[k]}" for k in ("end_pad", "function")]
    return (f"showing {c['content']} content features ({c['content'] / max(live, 1):.0%} of {live} live); "
            f"set aside: {'; '.join(parts)}; {c['dead']} silent on the prompts kinds are read on")  # fmt: skip


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
