"""Exploring a dictionary in one call: the atlas over a prompt sample, where each feature is strong
(content features shown, the rest set aside and counted), a scored label per feature, clusters in
the dictionary's own space measured against the corpus's categories (purity, balanced purity and
NMI, each beside its shuffled baseline), the vocabulary tokens that light each feature alone, a
concept's score per feature, and the shareable page;
and discovery from examples (features that separate a handful of prompts from another handful),
measured on a list of concepts the corpus contains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from snce_lib.atlas.clusters import (
    MapClusters,
    choose_space,
    coactivation_vectors,
    cofiring_counts,
    corpus_categories,
)
from snce_lib.atlas.html import atlas_data
from snce_lib.atlas.labels import FeatureLabel, label_features, label_kinds
from snce_lib.atlas.map import Atlas, build_atlas
from snce_lib.concepts.codes import PromptCodes, prompt_codes
from snce_lib.concepts.pairs import load_concept
from snce_lib.concepts.positions import (
    FeatureKinds,
    Words,
    describe_set_aside,
    encoder_words,
    kind_summary,
)
from snce_lib.concepts.ranking import ConceptCodes, Ranking, modulated_frequency, rank_variants
from snce_lib.concepts.selection import rank_counted

SHOW = ("content", "all")


@dataclass
class Exploration:
    atlas: Atlas
    labels: list[FeatureLabel]
    kinds: FeatureKinds
    set_aside: dict
    """`positions.kind_summary`: how many features are strongest on each kind of position."""
    show: str
    """"content" (the default: content features only) or "all"."""
    layout: MapClusters
    map_scores: dict
    """Per space ("decoder", "co-activation"): silhouette of its clustering, and its purity, balanced
    purity and NMI against the corpus's categories, each with its shuffled baseline (`clusters.fair_scores`)."""
    concept: str
    concept_score: np.ndarray
    """s^c of eq. 5 per feature, on the concept's prompts."""
    concept_top: list
    """The concept's best candidates: eq. 6's filter survivors ranked by s^c (eq. 7), best first."""
    page: dict
    """`atlas_data` for `render_html` / `write_atlas` / `notebook_frame`."""
    concept_tolerant: list | None = None
    """Every feature that fires on at most 1% of the deconcept positions, ranked by s^c, best first
    (notebook 03's "SNCE tol 1%"): s^c alone ranks busy features first, since it does not look at
    the deconcept prompts."""

    def shown(self) -> np.ndarray:
        """The features the atlas shows: content features by default, every live one with show="all"."""
        return self.kinds.content() if self.show == "content" else self.kinds.kind >= 0

    def describe(self) -> str:
        return shown_note(self.set_aside, self.show)


def shown_note(summary: dict, show: str) -> str:
    """What the atlas shows: the set-aside sentence for content features, or that it shows all."""
    return describe_set_aside(summary) if show == "content" else "showing every live feature"


def explore(encoder, sae, prompts: Sequence[str], concept: str = "nudity", n_clusters: int = 24,
            show: str = "content", progress: bool = True, vocab: bool = True,
            vocab_dir=None) -> Exploration:  # fmt: skip
    """The atlas of `sae` over `prompts` (module doc). Kinds and labels come from the half of the
    distinct prompts that makes labels (`labels.label_split`). `vocab`: run the encoder's
    vocabulary one token at a time (`vocab.vocabulary_top`), read from and cached in `vocab_dir`
    (the SAE's folder) when given."""
    if show not in SHOW:
        raise ValueError(f"show must be one of {', '.join(SHOW)}, not {show!r}")
    atlas = build_atlas(encoder, sae, prompts, progress=progress)
    if vocab:
        from snce_lib.atlas.vocab import load_or_compute

        atlas.vocab = load_or_compute(encoder, sae, vocab_dir, progress=progress)
    kinds = label_kinds(atlas)
    labels = label_features(atlas, kinds=kinds)
    members = kinds.content() if show == "content" else kinds.kind >= 0
    counts = atlas.cache["cofiring_counts"] = cofiring_counts(atlas.codes)  # clustered on, and shown on each card
    spaces = {"decoder": sae.W_dec.detach().float().cpu().numpy(),
              "co-activation": coactivation_vectors(atlas.codes, counts)}  # fmt: skip
    layout, map_scores = choose_space(spaces, members, labels, n_clusters, corpus_categories())
    pairs = load_concept(concept)
    c_codes, d_codes = (
        prompt_codes(encoder, sae, pairs.concept_prompts),
        prompt_codes(encoder, sae, pairs.deconcept_prompts),
    )
    scores = modulated_frequency(c_codes, d_codes)
    tolerant = modulated_frequency(c_codes, d_codes, max_deconcept_share=0.01)
    sc = scores.s_c
    summary = kind_summary(kinds)
    name = "MiniLM-L6 (offline)" if sae.cfg.encoder_id == "offline" else sae.cfg.encoder_id or "an encoder"
    title = f"SAE atlas: {sae.cfg.n_latents} features at {sae.cfg.layer} of {name}"
    page = atlas_data(atlas, labels, layout, sae.W_dec, sc, title=title, shown=members, note=shown_note(summary, show))
    return Exploration(atlas, labels, kinds, summary, show, layout, map_scores, concept, sc, scores.top(10), page,
                       [int(f) for f in tolerant.ranking])  # fmt: skip


#: The discovery rankings, default first: the plain lens over content positions, then the
#: selection notebook's rankings on the same examples (as `rank_variants` runs them).
DEFAULT_DISCOVERY = "max contrast, content positions"


def discover(encoder, sae, examples: Sequence[str], counterexamples: Sequence[str]) -> dict[str, Ranking]:
    """Features that separate `examples` (prompts that show a concept) from `counterexamples`, with
    no hand-written pairs. First (the default) each feature's largest activation over a prompt's
    content positions, averaged over the examples, minus the counterexamples' average
    (`ranking.rank_max_contrast`); then the selection notebook's rankings (modulated frequency,
    strict and with a 1% tolerance, and mean difference) for comparison, which on four examples
    favour the features that fire everywhere."""
    if not examples or not counterexamples:
        raise ValueError("discovery needs at least one example and one counterexample prompt")
    ex, cx = prompt_codes(encoder, sae, list(examples)), prompt_codes(encoder, sae, list(counterexamples))
    return discover_codes(ex, cx, encoder_words(encoder, ex), encoder_words(encoder, cx))


def discover_codes(ex: PromptCodes, cx: PromptCodes, ex_words: Words, cx_words: Words) -> dict[str, Ranking]:
    """`discover` on codes already made, with each position's whole word and kind."""
    lens, _, _ = rank_counted(ConceptCodes(ex, cx), "max_contrast", "content", words=(ex_words, cx_words))
    return {DEFAULT_DISCOVERY: lens, **rank_variants(ConceptCodes(ex, cx))}


def discovery_concepts() -> list[dict]:
    """The project's own list of concepts the corpus contains (`concepts.generalisation.discovery_concepts`)."""
    from snce_lib.concepts.generalisation import discovery_concepts as load

    return load()


def evaluate_discovery(encoder, sae, labels: list[FeatureLabel], concepts: list[dict] | None = None,
                       top: int = 3) -> dict:  # fmt: skip
    """For each concept and each ranking of `discover`: is a concept word among the label words of one
    of the `top` features? Returns {"rows": [...], "hit_rate": {ranking: share of concepts}, "n": concepts}."""
    concepts = concepts if concepts is not None else discovery_concepts()
    rows, hits = [], {}
    for c in concepts:
        words = {w.lower() for w in c["words"]}
        for name, r in discover(encoder, sae, c["examples"], c["counterexamples"]).items():
            feats = r.top(top)
            named = [f for f in feats if words & {w.lower() for w in labels[f].specific}]
            rows.append({"concept": c["name"], "ranking": name, "features": feats,
                         "labels": [labels[f].label for f in feats], "hit": bool(named)})  # fmt: skip
            hits.setdefault(name, []).append(bool(named))
    return {"rows": rows, "hit_rate": {k: float(np.mean(v)) for k, v in hits.items()}, "n": len(concepts), "top": top}
