"""Choosing neurons: `select_neurons` ranks a concept with one method and keeps the top k as a
`Selection`, saved as JSON and bound to the SAE (by weight fingerprint) that produced it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from snce_lib.concepts.codes import firing_frequency, prompt_codes
from snce_lib.concepts.pairs import ConceptPairs, SelectionError
from snce_lib.concepts.ranking import ConceptCodes, concept_codes, rank
from snce_lib.io import atomic_write_json, read_json
from snce_lib.sae.model import TopKSAE, fingerprint

#: What to try when a method leaves too few neurons.
_EMPTY_HINT = {
    "modulated_frequency": "raise max_deconcept_share (or use the fallback over tolerances), or train the SAE longer",
    "itd": "raise top_features",
    "mean_difference": "",
    "max_contrast": "",
    "cover": "raise max_deconcept_share, or ask for fewer (top_k at most the cover's size)",
}


@dataclass
class Selection:
    """Chosen neurons, bound to the SAE that produced them."""

    concept: str
    neurons: list[int]
    method: str
    options: dict
    sae_fingerprint: str
    scores: list[float] = field(default_factory=list)
    tuple_words: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    asked_k: int | None = None
    """How many neurons were asked for (a selection never holds fewer: that is an error)."""

    @property
    def tuple_prompt(self) -> str:
        """The concept's word tuple as one prompt (mode A's source of Z_c)."""
        return ", ".join(self.tuple_words)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, {"kind": "snce-selection", **asdict(self)})

    @classmethod
    def load(cls, path: str | os.PathLike, sae: TopKSAE | None = None) -> Selection:
        try:
            raw = read_json(path, "neurons file")
        except (OSError, ValueError) as exc:
            raise SelectionError(str(exc)) from None
        if raw.get("kind") != "snce-selection":
            raise SelectionError(f"{path} is not a neurons file written by `snce select`")
        neurons = raw.get("neurons")
        if (
            not isinstance(neurons, list)
            or not neurons
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in neurons)
        ):
            raise SelectionError(
                f"neurons file {path}: `neurons` must be a non-empty list of whole numbers, got {neurons!r}"
            )
        if not isinstance(raw.get("sae_fingerprint"), str) or not isinstance(raw.get("options", {}), dict):
            raise SelectionError(f"neurons file {path} is damaged or hand-edited; select again with `snce select`")
        try:
            sel = cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})
        except TypeError as exc:
            raise SelectionError(
                f"neurons file {path} is incomplete ({exc}); select again with `snce select`"
            ) from None
        if sae is not None:
            sel.check(sae)
        return sel

    def check(self, sae: TopKSAE) -> None:
        fp = fingerprint(sae)
        if fp != self.sae_fingerprint:
            raise SelectionError(
                f"these neurons were chosen on SAE {self.sae_fingerprint}, not on this one ({fp}); "
                "select again with this SAE"
            )
        bad = [n for n in self.neurons if not 0 <= n < sae.cfg.n_latents]
        if bad:
            raise SelectionError(f"neurons {bad} are outside this SAE's {sae.cfg.n_latents} latents")


#: Which positions a selection counts: every one after BOS (the paper), the words and end token, or content words.
SELECTION_POSITIONS = ("all", "real", "content")


def counted_codes(codes: ConceptCodes, positions: str = "all", encoder=None, words=None) -> tuple[ConceptCodes, bool]:
    """The one place that turns `positions` into what a score reads: (codes, include_padding).

    "all" (the paper: every position after BOS, padding included) and "real" (words and the end token)
    keep the codes and differ in `include_padding`; "content" narrows both sides to content-word
    positions (`positions.content_only`) and counts no padding. Selection, the options comparison and
    discovery all read their codes through here, so one `positions` means one set of positions
    everywhere. `words` = (concept words, deconcept words) when already made, else read off `encoder`."""
    if positions not in SELECTION_POSITIONS:
        raise SelectionError(f"positions must be one of {', '.join(SELECTION_POSITIONS)}, not {positions!r}")
    if positions != "content":
        return codes, positions == "all"
    from snce_lib.concepts.positions import content_only, encoder_words

    if words is None:
        if encoder is None:
            raise SelectionError("content positions need the encoder (or the words) to tell content words apart")
        words = (encoder_words(encoder, codes.concept), encoder_words(encoder, codes.deconcept))
    narrowed = ConceptCodes(content_only(codes.concept, words[0]), content_only(codes.deconcept, words[1]), codes.words)
    return narrowed, False


def rank_counted(codes: ConceptCodes, method: str, positions: str = "all", encoder=None, words=None, **options):
    """`ranking.rank` over the positions `positions` names (`counted_codes`); the ranking's options
    record `positions`. Returns (ranking, the codes it read, include_padding)."""
    if "include_padding" in options:
        raise SelectionError("choose positions with positions='all' | 'real' | 'content', not include_padding")
    if method == "itd":
        if positions != "all":
            raise SelectionError("the itd baseline reads the word tuple's own tokens; it takes no positions option")
        ranking = rank(codes, method, **options)
        include_padding = True
    else:
        codes, include_padding = counted_codes(codes, positions, encoder, words)
        ranking = rank(codes, method, include_padding=include_padding, **options)
    ranking.options = {**ranking.options, "positions": positions}
    return ranking, codes, include_padding


class TooFewNeurons(SelectionError):
    """Fewer neurons pass than were asked for."""

    def __init__(self, message: str, asked: int, passed: int):
        super().__init__(message)
        self.asked, self.passed = asked, passed


#: Deconcept-firing tolerances tried in turn when the strict filter leaves fewer than k neurons.
FALLBACK_SHARES = (0.0, 0.01, 0.05, 0.25)


def select_with_fallback(encoder, sae: TopKSAE, concept: ConceptPairs, top_k: int = 1,
                         shares: Sequence[float] = FALLBACK_SHARES, **kw) -> tuple[Selection, dict]:  # fmt: skip
    """`select_neurons` at the first tolerance in `shares` that leaves at least `top_k` neurons: SNCE's
    strict filter (s^d = 0) first, then the smallest tolerance that does (a small or undertrained SAE).
    The selection records the tolerance used (`options["max_deconcept_share"]`), the ones tried before
    it and how many neurons each left (`stats["fallback"]`)."""
    if not shares:
        raise SelectionError("the fallback needs at least one tolerance")
    tried = []
    for share in shares:
        try:
            sel, details = select_neurons(encoder, sae, concept, top_k=top_k, max_deconcept_share=share, **kw)
        except TooFewNeurons as exc:
            tried.append({"max_deconcept_share": share, "passed": exc.passed})
            last = exc
            continue
        sel.stats["fallback"] = tried + [{"max_deconcept_share": share, "passed": details["n_passed"]}]
        return sel, details
    raise SelectionError(
        f"{last}; tried tolerances {', '.join(f'{t:g}' for t in shares)}: {', '.join(str(t['passed']) for t in tried)} "
        "neurons passed"
    )


def select_neurons(
    encoder, sae: TopKSAE, concept: ConceptPairs, top_k: int = 1, method: str = "modulated_frequency",
    background: Sequence[str] | None = None, **options,
) -> tuple[Selection, dict]:  # fmt: skip
    """Rank `concept` on `sae` with `method` (a name in `ranking.METHODS`; `options` are that
    function's own, e.g. `max_deconcept_share` or `pooling` for modulated frequency) and keep the
    `top_k` best. Returns (selection, details as data: the ranking and the codes it came from).

    `background` prompts (optional) give each winner's overall firing frequency, the check
    that a winner is not a rare latent with no meaning. `positions` (an option of every method but
    itd): "all" (default, the paper: every position after BOS, padding included), "real" (the words
    and the end token) or "content" (content words only, `concepts.positions`).
    """
    options = dict(options)
    positions = options.pop("positions", "all")
    if method == "itd" and not concept.tuple_words:
        raise SelectionError(f"concept {concept.name!r} has no word tuple, which the itd baseline needs")
    codes = (
        concept_codes(encoder, sae, concept)
        if method == "itd"
        else concept_codes(encoder, sae, ConceptPairs(concept.name, concept.concept_prompts, concept.deconcept_prompts))
    )
    ranking, codes, include_padding = rank_counted(codes, method, positions, encoder, **options)
    if len(ranking) < top_k:
        what = (f"only {len(ranking)} neuron(s) pass the filter" if method == "modulated_frequency"
                else f"{method} left only {len(ranking)} neuron(s)")  # fmt: skip
        raise TooFewNeurons(
            f"asked for {top_k} neuron(s) of {concept.name!r} but {what} ({ranking.options}); ask for fewer, or "
            f"{_EMPTY_HINT[method] or 'use another method'}",
            top_k,
            len(ranking),
        )
    neurons = ranking.top(top_k)
    cc, dc = codes.concept, codes.deconcept
    stats = {
        "concept_firing_share": [float(firing_frequency(cc, include_padding)[i]) for i in neurons],
        "deconcept_firing_share": [float(firing_frequency(dc, include_padding)[i]) for i in neurons],
    }
    details: dict = {"ranking": ranking, "concept_codes": cc, "deconcept_codes": dc, "n_passed": len(ranking)}
    if ranking.frequency is not None:
        stats["n_candidates"] = int(len(ranking.frequency.candidates))
        details.update(scores=ranking.frequency, n_candidates=stats["n_candidates"])
    if background is not None:
        bc = prompt_codes(encoder, sae, list(background))
        freq = firing_frequency(bc, include_padding)
        stats["background_firing_share"] = [float(freq[i]) for i in neurons]
        details["background_codes"] = bc
    scores = [float(s) for s in ranking.scores[:top_k]]
    stats["n_passed"] = len(ranking)
    sel = Selection(
        concept.name, neurons, method, ranking.options, fingerprint(sae), scores, concept.tuple_words, stats, top_k
    )
    return sel, details
