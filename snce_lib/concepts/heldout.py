"""Does a detector find the concept, or the word? A held-out check no selection ever sees.

Three prompt sets per concept (`data/concepts/<name>_heldout.csv`, columns prompt, kind):
- concept: the concept said without any of the tuple's words ("unclothed", "in the buff");
- lookalike: the tuple's words in other senses ("the naked eye", "bare hands", "exposed brick");
- neutral: everyday prompts close to the concept prompts' scenes, with nothing of either.

A detector that has learned the concept scores concept prompts above both other sets; one that has
learned the word scores the look-alikes high and the concept prompts low (AUROC against look-alikes
under 0.5). The sets were written for this check and are never used to select or fit anything.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.detection import auroc_ci
from snce_lib.concepts.leakage import _probe, pooled_output
from snce_lib.resources import data_path

KINDS = ("concept", "lookalike", "neutral")


@dataclass
class HeldoutSets:
    name: str
    concept: list[str]
    lookalike: list[str]
    neutral: list[str]

    @property
    def sizes(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in KINDS}


def load_heldout(name: str = "nudity") -> HeldoutSets:
    path = data_path("concepts") / f"{name}_heldout.csv"
    if not path.exists():
        raise FileNotFoundError(f"no held-out sets for {name!r} (expected {path})")
    sets: dict[str, list[str]] = {k: [] for k in KINDS}
    with path.open(newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            if row.get("kind") not in sets:
                raise ValueError(f"{path}:{i}: kind must be one of {', '.join(KINDS)}, got {row.get('kind')!r}")
            sets[row["kind"]].append(row["prompt"])
    sizes = {k: len(v) for k, v in sets.items()}
    if min(sizes.values()) < 5:
        raise ValueError(f"{path}: every kind needs at least 5 prompts, got {sizes}")
    return HeldoutSets(name, **sets)


def _aurocs(label: str, scores: dict[str, np.ndarray]) -> dict:
    c = scores["concept"]
    vs = {"lookalike": scores["lookalike"], "neutral": scores["neutral"],
          "both": np.concatenate([scores["lookalike"], scores["neutral"]])}  # fmt: skip
    cis = {k: auroc_ci(c, v) for k, v in vs.items()}
    return {
        "detector": label,
        **{f"auroc_vs_{k}": a.auroc for k, a in cis.items()},
        **{f"ci95_vs_{k}": [a.lo, a.hi] for k, a in cis.items()},
        "mean_concept": float(np.mean(c)),
        "mean_lookalike": float(np.mean(scores["lookalike"])),
        "mean_neutral": float(np.mean(scores["neutral"])),
    }


def neuron_detectors(encoder, sae, detectors: dict[str, Sequence[int]], sets: HeldoutSets) -> list[dict]:
    """Each entry's latents as a detector: per prompt, the max over positions of their summed activation."""
    codes = {k: prompt_codes(encoder, sae, getattr(sets, k)) for k in KINDS}
    return [
        {**_aurocs(label, {k: codes[k].max_activation(list(n))[0] for k in KINDS}), "neurons": [int(i) for i in n]}
        for label, n in detectors.items()
        if len(n)
    ]


def fit_output_probe(encoder, concept_prompts: Sequence[str], other_prompts: Sequence[str]):
    """A linear probe on the encoder's pooled final output (what the UNet reads), fitted on the concept
    pairs: concept prompts 1, deconcept prompts 0."""
    x = np.concatenate([pooled_output(encoder, concept_prompts), pooled_output(encoder, other_prompts)])
    y = np.r_[np.ones(len(concept_prompts), dtype=int), np.zeros(len(other_prompts), dtype=int)]
    return _probe().fit(x, y)


def probe_detector(encoder, probe, sets: HeldoutSets, method=None, label: str = "dense probe") -> dict:
    """The fitted probe as a detector on the held-out sets, on the output as `method` leaves it (none:
    the unedited encoder). After an edit that removed the concept from what the UNet reads, the
    probe can no longer tell concept prompts from the rest (AUROC near 0.5)."""
    return _aurocs(label, {k: probe.decision_function(pooled_output(encoder, getattr(sets, k), method)) for k in KINDS})
