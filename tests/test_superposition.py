"""The toy model of superposition (chapter 00, section 1): what it learns at each sparsity, with any
forward function, and its hidden layer as planted data whose answer is the model's own columns."""

import pytest
import torch

from snce_lib.sae.superposition import (
    as_planted,
    feature_norms,
    interference,
    sample_features,
    summarise,
    toy_forward,
    train_toy_models,
)

#: tiny models: one thread (`one_thread` in conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models():
    return train_toy_models(20, 5, (1.0, 0.02), steps=1500)


def test_dense_features_get_one_dimension_each_and_sparse_ones_share(models):
    """Elhage et al.'s result: at p = 1 the model keeps its m most important features, orthogonal;
    when features are rarely on together it represents more features than it has dimensions."""
    dense, sparse = summarise(models)
    assert dense["represented"] <= 5 < sparse["represented"], (dense, sparse)
    kept = feature_norms(models.W[0]) >= 0.5
    assert kept[:5].all() and not kept[5:].any()  # the five most important ones
    assert dense["in superposition"] < sparse["in superposition"]
    assert dense["dims per feature"] == pytest.approx(1.0, abs=0.05) and sparse["dims per feature"] < 0.5


def test_interference_is_zero_for_orthogonal_columns_and_counts_overlap():
    W = torch.eye(3, 4)  # features 0-2 on their own axes, feature 3 dropped
    assert torch.allclose(interference(W), torch.zeros(4))
    W[:, 3] = torch.tensor([1.0, 0.0, 0.0])  # feature 3 written on feature 0's axis
    assert interference(W)[0] == pytest.approx(1.0) and interference(W)[1] == 0.0


def test_a_forward_vmap_cannot_follow_trains_the_same_models():
    """A student's forward with Python control flow on tensor values runs through the per-instance loop."""

    def looped(x, W, b):
        if W.abs().sum().item() < 0:  # data-dependent Python: vmap cannot trace it
            return x
        return torch.relu((x @ W.T) @ W + b)

    a = train_toy_models(8, 3, (1.0, 0.1), steps=20)
    b = train_toy_models(8, 3, (1.0, 0.1), steps=20, forward=looped)
    assert torch.allclose(a.W, b.W, atol=1e-5) and torch.allclose(a.b, b.b, atol=1e-5)


def test_sample_features_is_sparse_and_uniform_when_on():
    x = sample_features((20_000, 10), torch.tensor(0.1), torch.Generator().manual_seed(0))
    on = x > 0
    assert on.float().mean() == pytest.approx(0.1, abs=0.01)
    assert x[on].mean() == pytest.approx(0.5, abs=0.02) and float(x.max()) < 1.0


def test_as_planted_answer_is_the_represented_columns(models):
    pl = as_planted(models, 1, n_samples=3000)
    W = models.W[1]
    norms = feature_norms(W)
    rep = norms >= 0.5
    assert pl.dirs.shape == (int(rep.sum()), 5)
    assert torch.allclose(pl.dirs.norm(dim=1), torch.ones(len(pl.dirs)))
    assert torch.allclose(pl.dirs, (W / norms).T[rep])
    residue = pl.x - pl.coef @ pl.dirs  # what the dropped features leave, small next to the signal
    assert float(residue.pow(2).sum()) < 0.05 * float(pl.x.pow(2).sum())
    assert toy_forward(torch.zeros(1, 20), W, models.b[1]).shape == (1, 20)


def test_bad_shapes_and_sparsities_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="d_hidden < n_features"):
        train_toy_models(5, 5, (0.1,))
    with pytest.raises(ValueError, match="p_active"):
        train_toy_models(10, 5, (0.0,))
