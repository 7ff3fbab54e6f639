"""Probe leakage and concept-specific latents: planted concepts with known answers."""

import numpy as np
import pytest
import torch

from snce_lib.concepts.codes import PromptCodes
from snce_lib.concepts.erase import Eraser
from snce_lib.concepts.leakage import LeakageError, concept_latents, concept_leakage, pooled_output, probe_leakage
from snce_lib.sae.model import SAEConfig, TopKSAE

D = 16


def planted(n: int, dirs: list[int], seed: int) -> np.ndarray:
    """n feature vectors: Gaussian noise plus 3 units along each of the basis directions `dirs`."""
    x = np.random.default_rng(seed).normal(size=(n, D))
    x[:, dirs] += 3.0
    return x


def project_out(x: np.ndarray, i: int) -> np.ndarray:
    """Remove the i-th coordinate's concept offset: what erasing a perfect one-direction concept does."""
    y = x.copy()
    y[:, i] = np.random.default_rng(99).normal(size=len(x))  # back to the background's distribution
    return y


def test_a_concept_in_one_direction_is_gone_once_that_direction_is_erased():
    con, oth = planted(80, [0], 1), planted(80, [], 2)
    res = probe_leakage(con, oth, project_out(con, 0), oth)
    assert res.auroc_before > 0.95 and res.called_before > 0.9
    assert res.auroc_fixed_probe < 0.7 and res.auroc_retrained < 0.7
    assert res.called_after < 0.5
    assert (res.n_concept, res.n_other) == (80, 80)


def test_a_concept_carried_twice_survives_erasing_one_carrier():
    con, oth = planted(80, [0, 1], 3), planted(80, [], 4)
    res = probe_leakage(con, oth, project_out(con, 0), oth)
    assert res.auroc_before > 0.95
    assert res.auroc_fixed_probe > 0.9  # the reader trained on the unedited model still sees it
    assert res.auroc_retrained > 0.9


def test_bad_inputs_name_the_fix():
    a = np.zeros((10, D))
    with pytest.raises(LeakageError, match="same prompts"):
        probe_leakage(a, a, a[:9], a)
    with pytest.raises(LeakageError, match="at least 5"):
        probe_leakage(a[:3], a, a[:3], a)
    with pytest.raises(LeakageError, match="one width"):
        probe_leakage(a, np.zeros((10, 4)), a, np.zeros((10, 4)))


def codes(fires: list[list[int]], m: int = 12) -> PromptCodes:
    """One prompt per entry: the latents that fire (value 1) at its only position."""
    c = torch.zeros(len(fires), 2, m)
    for p, lat in enumerate(fires):
        c[p, 0, lat] = 1.0
    real = torch.zeros(len(fires), 2, dtype=torch.bool)
    real[:, 0] = True
    return PromptCodes.from_dense(
        [str(i) for i in range(len(fires))],
        c,
        real,
        torch.zeros_like(real),
        torch.zeros(len(fires), 2, dtype=torch.long),
    )


def test_concept_latents_finds_the_co_firing_family_only():
    # latents 3 and 4 fire on every concept prompt and never elsewhere; 7 fires everywhere;
    # 5 fires on half the concept prompts; 8 on every concept prompt but also on 1 in 4 others.
    concept = codes([[3, 4, 7, 5], [3, 4, 7, 8], [3, 4, 7, 5, 8], [3, 4, 7, 8]])
    other = codes([[7], [7, 8], [7], [7]])
    fam, sc, so = concept_latents(concept, other, min_concept=0.9, max_other=0.05)
    assert fam == [3, 4]
    assert sc[5] == 0.5 and so[8] == 0.25
    assert concept_latents(concept, other, min_concept=0.5, max_other=0.3)[0] == [3, 4, 8, 5]
    with pytest.raises(LeakageError, match="max_other < min_concept"):
        concept_latents(concept, other, min_concept=0.1, max_other=0.2)


def test_concept_leakage_on_the_offline_encoder(offline_encoder):
    enc = offline_encoder
    sae = TopKSAE(SAEConfig(enc.width, 64, 8, "offline", "encoder.layer.4", 4)).requires_grad_(False)
    con = [f"a red {s}" for s in ("circle", "square", "star", "box", "disc", "dot")]
    oth = [f"a blue {s}" for s in ("circle", "square", "star", "box", "disc", "dot")]
    pooled = pooled_output(enc, con)
    assert pooled.shape == (6, enc.width) and np.isfinite(pooled).all()
    # lambda 0 edits nothing: the fixed probe sees exactly what it saw before
    same = concept_leakage(enc, Eraser(sae, [0, 1, 2], lam=0.0), con, oth, folds=3)
    assert same.auroc_fixed_probe == same.auroc_before and same.called_after == same.called_before
    # a large edit on latents that fire moves the pooled output
    z = sae.encode_dense(enc.run_to_block(enc.tokenize(con), 4).float())
    busiest = torch.topk((z > 0).float().sum((0, 1)), 4).indices.tolist()
    moved = pooled_output(enc, con, Eraser(sae, busiest, lam=5.0))
    assert np.abs(moved - pooled).max() > 1e-3
