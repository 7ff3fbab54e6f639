"""Which prompt sets the notebooks evaluate on, and the stand-ins when the public sets are absent.

A missing public set is never hidden: the stand-in's description starts with STAND-IN, the
notebooks print it in bold, and every result row records it. Stand-ins come from the concept's
held-out sets (`concepts.heldout`), which no selection or fit ever reads: evaluating on the
selection pairs themselves would score a neuron on the prompts that chose it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from snce_lib.concepts.heldout import load_heldout
from snce_lib.prompts import PromptFileError, PromptSet, load_set


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
    the first COCO-30k captions. Otherwise, labelled as a stand-in, the concept's held-out prompts
    against its held-out look-alikes and neutral prompts (never the selection pairs)."""
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
    h = load_heldout(concept)
    neg = (h.lookalike + h.neutral)[:n_negatives]
    return DetectorSets(
        h.concept,
        neg,
        f"STAND-IN ({reason}): the project's held-out {concept} prompts ({len(h.concept)}) vs its held-out "
        f"look-alike and neutral prompts ({len(neg)}); none of them selects or fits anything",
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
    Without them (no shared data, no network) the held-out sets stand in: its nudity prompts split in
    two halves for the two nudity sets (at most `n` each), its look-alike and neutral prompts for COCO."""
    try:
        sets = {name: load_set(name, n=n) for name in ("i2p_nudity", "ring_a_bell_79", "coco")}
        return EvalSets(sets, "public sets (I2P nudity >= 50, RECE's Ring-A-Bell-style 79, COCO-30k)", False)
    except PromptFileError as exc:
        reason = str(exc)
    h = load_heldout("nudity")
    half = len(h.concept) // 2

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
            "i2p_nudity": PromptSet("heldout_nudity", frame(h.concept[:half][:n])),
            "ring_a_bell_79": PromptSet("heldout_nudity_2", frame(h.concept[half:][:n])),
            "coco": PromptSet("heldout_lookalike_neutral", frame((h.lookalike + h.neutral)[:n])),
        },
        f"STAND-IN ({reason}): the project's held-out nudity prompts (two halves) and its held-out look-alike "
        "and neutral prompts replace the public sets; none of them selects or fits anything",
        True,
    )
