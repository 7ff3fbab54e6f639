"""Planted dictionaries (chapter 00's data), the L1 SAE, and the measurements against the answer."""

import pytest
import torch

from snce_lib.sae.l1 import l0_of, train_l1_sae
from snce_lib.sae.planted import planted_data, recovery, shrinkage, structure
from snce_lib.sae.train import TrainConfig, train_sae


def test_hierarchy_parents_fire_exactly_with_one_child():
    pl = planted_data(5000, 16, 8, 0.2, hierarchy=[(0, [1, 2, 3])], seed=3)
    on = pl.coef > 0
    kids = on[:, [1, 2, 3]].sum(1)
    assert torch.equal(on[:, 0], kids == 1) and int(kids.max()) == 1 and on[:, 0].any()
    assert torch.allclose(pl.x, pl.coef @ pl.dirs) and torch.allclose(pl.dirs.norm(dim=1), torch.ones(16))
    with pytest.raises(ValueError, match="bad hierarchy"):
        planted_data(10, 4, 2, 0.2, hierarchy=[(0, [0, 1])])


def test_recovery_is_one_for_the_answer_and_low_for_random_directions():
    pl = planted_data(100, 32, 16, 0.1)
    assert recovery(pl.dirs, pl.dirs) == {"mean_max_cosine": pytest.approx(1.0), "share_found": 1.0}
    rnd = recovery(torch.randn(32, 16, generator=torch.Generator().manual_seed(1)), pl.dirs)
    assert rnd["share_found"] == 0.0 and rnd["mean_max_cosine"] < 0.8


def test_topk_recovers_planted_features_in_superposition():
    """32 features in 16 dimensions: a TopK SAE finds nearly every one (a property of a correct SAE)."""
    pl = planted_data(12_000, 32, 16, 0.06, seed=0)
    cfg = TrainConfig(n_latents=64, k=3, lr=3e-3, batch_size=256, tokens=1200 * 256, dead_after_tokens=50_000)
    sae = train_sae(pl.x, cfg, progress=False).sae
    assert recovery(sae.W_dec, pl.dirs)["share_found"] >= 0.9


def test_l1_shrinks_the_activations_it_keeps():
    """The theory: an L1 penalty pulls every active latent towards zero, so on the features it
    found the activations are smaller than the true coefficients (shrinkage > 0)."""
    pl = planted_data(12_000, 32, 16, 0.06, seed=0)
    res = train_l1_sae(pl.x, 64, l1=0.5, steps=800)
    sh = shrinkage(res.sae.encode_dense(pl.x), res.sae.W_dec, pl)
    assert sh["n_features"] >= 8 and sh["shrinkage"] > 0, sh["shrinkage"]
    assert l0_of(res.sae, pl.x) < 64  # the penalty made it sparse
    assert torch.allclose(res.sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)


def test_structure_counts_splits_and_absorption_on_a_hand_made_dictionary():
    """Latent 0 = the parent, 1 = child A with the parent absorbed, 2 and 3 = child B twice (split).
    Codes: the parent's latent fires on half of the parent's samples only."""
    pl = planted_data(400, 3, 8, 0.3, hierarchy=[(0, [1, 2])], seed=0)
    dirs = pl.dirs
    w = torch.stack([dirs[0], torch.nn.functional.normalize(dirs[1] + dirs[0], dim=0), dirs[2], dirs[2] * 0.99])
    codes = torch.zeros(len(pl.x), 4)
    parent_on = torch.nonzero(pl.coef[:, 0] > 0).flatten()
    codes[parent_on[::2], 0] = 1.0  # silent on every other parent sample
    st = structure(codes, w, pl, split_at=0.95)
    assert st["latents_per_feature"].tolist()[2] == 2 and st["share_split"] == pytest.approx(1 / 3)
    assert st["absorption"][0] == pytest.approx(1 - len(parent_on[::2]) / len(parent_on))
    assert st["child_parent_cosine"][0] > 0.2  # child A's latent leans towards the parent
