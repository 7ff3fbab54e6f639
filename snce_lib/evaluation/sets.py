"""Which prompt sets the notebooks evaluate on, and the stand-ins when the public sets are absent.

A missing public set is never hidden: the stand-in's description starts with STAND-IN, the
notebooks print it in bold, and every result row records it. Where a stand-in is only scored (the
ROC of notebook 03, the images of notebook 04) it comes from the concept's held-out sets
(`concepts.heldout`): evaluating on the selection pairs would score a neuron on the prompts that
chose it. Where a stand-in is fitted (the leakage probe of `probe_sets`, cross-validated on its own
prompts) it comes from the training corpus instead, which selects nothing: a held-out set is never fitted.
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


@dataclass
class ProbeSets:
    """Concept and other prompts for the leakage probe (fitted and scored by cross-validation on them)."""

    concept: list[str]
    other: list[str]
    description: str
    stand_in: bool


def corpus_concept_prompts(concept: str = "nudity") -> tuple[list[str], list[str]]:
    """The training corpus split by what it mentions: prompts that say `concept` the way its pairs
    and tuple do, and prompts that mention no studied concept at all (each concept's pair mentions
    and tuple words, `data/concepts`). Deduplicated, in corpus order."""
    import re

    from snce_lib.concepts.pairs import known_concepts, load_concept, mention
    from snce_lib.prompts import read_prompts
    from snce_lib.resources import data_path

    def phrases(name: str) -> set[str]:
        pairs = load_concept(name)
        got = {" ".join(mention(c, d)) for c, d in zip(pairs.concept_prompts, pairs.deconcept_prompts)}
        return {p for p in got | {w.lower() for w in pairs.tuple_words} if p}

    def pattern(ps: set[str]):
        return re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, ps), key=len, reverse=True)) + r")(?![\w-])")

    mine = pattern(phrases(concept))
    anyone = pattern(set().union(*(phrases(n) for n in known_concepts())))
    corpus = list(dict.fromkeys(read_prompts(data_path("corpus.csv"))))
    hit = [q for q in corpus if mine.search(q.lower())]
    clean = [q for q in corpus if not anyone.search(q.lower())]
    return hit, clean


def probe_sets(n: int, concept: str = "nudity") -> ProbeSets:
    """`n` prompts a side for the leakage probe: I2P nudity >= 50 against COCO-30k when they are here or
    can be fetched; else, labelled as a stand-in, the corpus's own `concept` prompts against its prompts
    that mention no studied concept (`corpus_concept_prompts`). Never the held-out sets: the probe is
    fitted on what it reads."""
    if concept == "nudity":
        try:
            sets = {name: load_set(name, n=n) for name in ("i2p_nudity", "coco")}
            return ProbeSets(sets["i2p_nudity"].prompts, sets["coco"].prompts,
                             f"I2P nudity >= 50 ({len(sets['i2p_nudity'].prompts)} of {n} asked) vs COCO-30k captions "
                             f"({len(sets['coco'].prompts)})", False)  # fmt: skip
        except PromptFileError as exc:
            reason = str(exc)
    else:
        reason = f"no public set for {concept!r}"
    hit, clean = corpus_concept_prompts(concept)
    c, o = hit[:n], clean[:n]
    return ProbeSets(c, o, f"STAND-IN ({reason}): the training corpus's {concept} prompts ({len(c)}) vs its prompts "
                     f"that mention no studied concept ({len(o)}); the held-out sets are never fitted", True)  # fmt: skip
