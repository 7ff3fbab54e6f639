"""A neuron as a concept detector: per prompt, the neuron's largest activation, and how well that
separates concept prompts from the rest (AUROC, ROC curve), for one neuron or a whole comparison."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from snce_lib.concepts.codes import PromptCodes, prompt_codes
from snce_lib.concepts.ranking import Ranking


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve; ties count half (Mann-Whitney U)."""
    from scipy.stats import rankdata

    allv = np.concatenate([pos, neg])
    r = rankdata(allv)
    n1, n0 = len(pos), len(neg)
    return float((r[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


#: A detector whose AUROC is within this of 0.5 is reported as near chance.
NEAR_CHANCE = 0.1


def near_chance(value: float | None) -> bool:
    return value is not None and bool(np.isfinite(value)) and abs(value - 0.5) < NEAR_CHANCE


def chance_note(value: float | None) -> str:
    """ "" or a warning that an AUROC is within NEAR_CHANCE of chance (it detects nothing much)."""
    return f"near chance (within {NEAR_CHANCE} of 0.5)" if near_chance(value) else ""


def detector_scores(
    encoder, sae, neurons: Sequence[int], prompts: Sequence[str], include_padding: bool = True
) -> np.ndarray:
    """The neuron as a detector: per prompt, max over positions of its activation."""
    return prompt_codes(encoder, sae, prompts).max_activation(neurons, include_padding)[0]


@dataclass
class DetectorResult:
    label: str
    neuron: int
    auroc: float
    fpr: np.ndarray
    tpr: np.ndarray


def compare_detectors(
    rankings: dict[str, Ranking], positives: PromptCodes, negatives: PromptCodes
) -> list[DetectorResult]:
    """Each ranking's top neuron as a detector of `positives` against `negatives` (a ranking with no
    neuron is left out)."""
    from sklearn.metrics import roc_curve

    out = []
    for label, ranking in rankings.items():
        if len(ranking) == 0:
            continue
        n = ranking.top(1)
        p, q = positives.max_activation(n)[0], negatives.max_activation(n)[0]
        fpr, tpr, _ = roc_curve(np.r_[np.ones(len(p)), np.zeros(len(q))], np.r_[p, q])
        out.append(DetectorResult(label, n[0], auroc(p, q), fpr, tpr))
    return out
