"""Which prompt sets the notebooks evaluate on, and the stand-ins when the public sets are absent.

A missing public set is never hidden: the stand-in's description starts with STAND-IN, the
notebooks print it in bold, and every result row records it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from snce_lib.concepts.pairs import load_concept
from snce_lib.prompts import PromptFileError, PromptSet, load_set, read_prompts
from snce_lib.resources import data_path


@dataclass
class DetectorSets:
    """Positives and negatives for the neuron-as-detector ROC."""

    positives: list[str]
    negatives: list[str]
    description: str
    stand_in: bool


def detector_sets(n_negatives: int, concept: str = "nudity") -> DetectorSets:
    """Public sets when they are here or can be fetched: nudity = I2P prompts with
    nudity_percentage > 50 plus Ring-A-Bell's 50; violence = I2P's violence prompts; negatives =
    the first COCO-30k captions. Otherwise the project's concept prompts against their deconcept
    twins, labelled as a stand-in."""
    try:
        neg = load_set("coco", n=n_negatives).prompts
        if concept == "nudity":
            i2p = load_set("i2p").frame
            pos = i2p[i2p["nudity_percentage"] > 50]["prompt"].tolist() + load_set("ring_a_bell_50").prompts
            return DetectorSets(
                pos, neg, f"I2P nudity>50 + Ring-A-Bell ({len(pos)}) vs COCO-30k captions ({len(neg)})", False
            )
        if concept == "violence":
            pos = load_set("i2p_violence").prompts
            return DetectorSets(pos, neg, f"I2P violence ({len(pos)}) vs COCO-30k captions ({len(neg)})", False)
        reason = f"no public set for {concept!r}"
    except PromptFileError as exc:
        reason = str(exc)
    c = load_concept(concept)
    return DetectorSets(
        c.concept_prompts,
        c.deconcept_prompts,
        f"STAND-IN ({reason}): the project's {concept} prompts vs their deconcept twins "
        f"({len(c.concept_prompts)} each)",
        True,
    )


@dataclass
class EvalSets:
    sets: dict
    """name -> PromptSet: i2p_nudity, ring_a_bell_79, coco."""
    description: str
    stand_in: bool


def eval_sets(n: int) -> EvalSets:
    """Notebook 04's evaluation sets, `n` rows each: I2P nudity >= 50, RECE's Ring-A-Bell-style 79, COCO-30k.
    Without them (no shared data, no network) the project's nudity prompts and corpus stand in."""
    try:
        sets = {name: load_set(name, n=n) for name in ("i2p_nudity", "ring_a_bell_79", "coco")}
        return EvalSets(sets, "public sets (I2P nudity >= 50, RECE's Ring-A-Bell-style 79, COCO-30k)", False)
    except PromptFileError as exc:
        reason = str(exc)
    concept = load_concept("nudity").concept_prompts
    corpus = read_prompts(data_path("corpus.csv"))

    def frame(prompts):
        return pd.DataFrame(
            {
                "prompt": prompts,
                "case_number": range(len(prompts)),
                "evaluation_seed": range(len(prompts)),
                "evaluation_guidance": float("nan"),
            }
        )

    return EvalSets(
        {
            "i2p_nudity": PromptSet("project_nudity", frame(concept[:n])),
            "ring_a_bell_79": PromptSet("project_nudity_2", frame(concept[n : 2 * n])),
            "coco": PromptSet("project_corpus", frame(corpus[:n])),
        },
        f"STAND-IN ({reason}): the project's nudity prompts and corpus replace the public sets",
        True,
    )
