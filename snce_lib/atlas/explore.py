"""Exploring a dictionary in one call: the atlas over a prompt sample, a label per feature, the
clearer of two maps with named clusters, a concept's score per feature, and the shareable page;
and discovery from examples (features that separate a handful of prompts from another handful)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from snce_lib.atlas.clusters import MapClusters, choose_map, coactivation_umap
from snce_lib.atlas.html import atlas_data
from snce_lib.atlas.labels import FeatureLabel, label_features
from snce_lib.atlas.map import Atlas, build_atlas, decoder_umap
from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.pairs import load_concept
from snce_lib.concepts.ranking import ConceptCodes, Ranking, modulated_frequency, rank_variants


@dataclass
class Exploration:
    atlas: Atlas
    labels: list[FeatureLabel]
    layout: MapClusters
    map_scores: dict
    """Silhouette of each candidate map's clustering (the higher one was kept)."""
    concept: str
    concept_score: np.ndarray
    """s^c of eq. 5 per feature, on the concept's prompts."""
    concept_top: list
    """The concept's best candidates: eq. 6's filter survivors ranked by s^c (eq. 7), best first."""
    page: dict
    """`atlas_data` for `render_html` / `write_atlas` / `notebook_frame`."""


def explore(encoder, sae, prompts: Sequence[str], concept: str = "nudity", n_clusters: int = 24,
            progress: bool = True) -> Exploration:  # fmt: skip
    atlas = build_atlas(encoder, sae, prompts, progress=progress)
    labels = label_features(atlas)
    layouts = {"decoder": decoder_umap(sae), "co-activation": coactivation_umap(atlas.codes)}
    layout, map_scores = choose_map(layouts, atlas.frequency, labels, n_clusters)
    pairs = load_concept(concept)
    scores = modulated_frequency(prompt_codes(encoder, sae, pairs.concept_prompts),
                                 prompt_codes(encoder, sae, pairs.deconcept_prompts))  # fmt: skip
    sc = scores.s_c
    title = f"SAE atlas: {sae.cfg.n_latents} features at {sae.cfg.layer} of {sae.cfg.encoder_id or 'an encoder'}"
    page = atlas_data(atlas, labels, layout, sae.W_dec, sc, title=title)
    return Exploration(atlas, labels, layout, map_scores, concept, sc, scores.top(10), page)


def discover(encoder, sae, examples: Sequence[str], counterexamples: Sequence[str]) -> dict[str, Ranking]:
    """Features that separate `examples` (prompts that show a concept) from `counterexamples`, with
    no hand-written pairs: the selection notebook's rankings (modulated frequency, strict and with a
    1% tolerance, and mean difference), the examples standing in for concept prompts and the
    counterexamples for deconcept ones."""
    if not examples or not counterexamples:
        raise ValueError("discovery needs at least one example and one counterexample prompt")
    codes = ConceptCodes(prompt_codes(encoder, sae, list(examples)), prompt_codes(encoder, sae, list(counterexamples)))
    return rank_variants(codes)
