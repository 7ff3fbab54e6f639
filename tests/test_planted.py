"""Planted dictionaries (chapter 00's data), the L1 SAE, and the measurements against the answer:
recovery counted over latents that fire, beside its chance line; absorption and splitting that
can come out empty; what PCA can and cannot find."""

import math

import numpy as np
import pytest
import torch

from snce_lib.sae.l1 import ReLUSAE, l0_of, train_l1_sae
from snce_lib.sae.lesson import start_sae, train_watched
from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.planted import (
    best_rescale,
    chance_recovery,
    fvu_by_features_on,
    pca_limits,
    planted_data,
    recovery,
    shrinkage,
    structure,
)
from snce_lib.sae.superposition import as_planted, train_toy_models

HIER = [(0, [1, 2, 3]), (4, [5, 6, 7]), (8, [9, 10, 11]), (12, [13, 14, 15])]


#: tiny models: one thread (`one_thread` in conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_hierarchy_parents_fire_exactly_with_one_child():
    pl = planted_data(5000, 16, 8, 0.2, hierarchy=[(0, [1, 2, 3])], seed=3)
    on = pl.coef > 0
    kids = on[:, [1, 2, 3]].sum(1)
    assert torch.equal(on[:, 0], kids == 1) and int(kids.max()) == 1 and on[:, 0].any()
    assert torch.allclose(pl.x, pl.coef @ pl.dirs) and torch.allclose(pl.dirs.norm(dim=1), torch.ones(16))
    with pytest.raises(ValueError, match="bad hierarchy"):
        planted_data(10, 4, 2, 0.2, hierarchy=[(0, [0, 1])])


def test_recovery_is_one_for_the_answer_and_chance_for_random_directions():
    pl = planted_data(100, 32, 16, 0.1)
    assert recovery(pl.dirs, pl.dirs) == {"mean_max_cosine": pytest.approx(1.0), "share_found": 1.0}
    chance = chance_recovery(64, pl.dirs)
    assert chance["share_found"] == 0.0 and 0.3 < chance["mean_max_cosine"] < 0.8
    assert chance == chance_recovery(64, pl.dirs)  # its own stream: the same line every time


def test_recovery_counts_only_latents_that_fire():
    """The answer written into decoder rows of latents that never fire explains nothing: the old
    count (every row) read 100% here."""
    pl = planted_data(100, 8, 16, 0.2)
    w = torch.cat([pl.dirs, torch.randn(8, 16, generator=torch.Generator().manual_seed(0))])
    live = torch.zeros(16, dtype=torch.bool)
    live[8:] = True
    assert recovery(w, pl.dirs)["share_found"] == 1.0
    assert recovery(w, pl.dirs, live=live)["share_found"] == 0.0
    assert recovery(w, pl.dirs, live=torch.zeros(16, dtype=torch.bool))["mean_max_cosine"] == -1.0


def test_topk_recovers_planted_features_in_superposition_from_chance():
    """32 features in 16 dimensions: at step 0 a TopK SAE recovers what a random dictionary does,
    and training takes it to nearly every feature."""
    pl = planted_data(12_000, 32, 16, 0.06, seed=0)
    run = train_watched(pl, 64, 3, steps=1000, log_every=1000)
    assert run.history[0]["step"] == 0 and run.history[0]["share_found"] == run.chance["share_found"] == 0.0
    assert abs(run.history[0]["mean_max_cosine"] - run.chance["mean_max_cosine"]) < 0.1
    assert run.history[-1]["share_found"] >= 0.9


def _toy(steps=800):
    """The chapter's toy model (80 features, 20 dimensions, p = 0.05), trained for fewer steps."""
    models = train_toy_models(80, 20, (0.05,), steps=steps)
    return as_planted(models, 0, n_samples=8000)


def test_every_planted_experiment_of_chapter_00_starts_at_chance_and_training_raises_it():
    """Each experiment the chapter runs, at its own sizes with fewer steps: the SAE on the toy model's
    hidden layer, the L1 SAE, the dead-start run, and the hierarchy at m = 32..256. Before training,
    recovery by the latents that fire is within chance's reach (nothing found, mean best cosine near
    a random dictionary's); after, it is higher. The old chapter started at 100% found."""
    toy = _toy()
    experiments = [(toy, dict(n_latents=160, k=4)), (toy, dict(n_latents=80, k=4, dead_start=0.5, k_aux=8,
                                                                 dead_after_tokens=2048))]  # fmt: skip
    ph = planted_data(20_000, n_features=64, d=32, p_active=0.05, hierarchy=HIER, seed=1)
    experiments += [(ph, dict(n_latents=m, k=4)) for m in (32, 64, 128, 256)]
    for data, kw in experiments:
        run = train_watched(data, steps=250, log_every=250, **kw)
        first, last = run.history[0], run.history[-1]
        assert first["share_found"] <= run.chance["share_found"] + 0.02, (kw, first, run.chance)
        assert abs(first["mean_max_cosine"] - run.chance["mean_max_cosine"]) < 0.12, (kw, first, run.chance)
        assert last["mean_max_cosine"] > first["mean_max_cosine"] + 0.1, (kw, first, last)
    l1 = ReLUSAE(toy.x.shape[1], 80, seed=0)  # the L1 SAE's own init stream
    assert recovery(l1.W_dec, toy.dirs)["share_found"] <= chance_recovery(80, toy.dirs)["share_found"] + 0.02
    res = train_l1_sae(toy.x, 80, l1=0.3, steps=600)
    assert recovery(res.sae.W_dec, toy.dirs)["mean_max_cosine"] > recovery(l1.W_dec, toy.dirs)["mean_max_cosine"] + 0.1


def test_l1_shrinks_the_activations_it_keeps():
    """The theory: an L1 penalty pulls every active latent towards zero, so on the features it
    found the activations are smaller than the true coefficients (shrinkage > 0)."""
    pl = planted_data(12_000, 32, 16, 0.06, seed=0)
    res = train_l1_sae(pl.x, 64, l1=0.5, steps=800)
    sh = shrinkage(res.sae.encode_dense(pl.x), res.sae.W_dec, pl)
    assert sh["n_features"] >= 8 and sh["shrinkage"] > 0, sh["shrinkage"]
    assert l0_of(res.sae, pl.x) < 64  # the penalty made it sparse
    assert torch.allclose(res.sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)


def _hand_made():
    """Latent 0 = the parent, 1 = child A with part of the parent absorbed, 2 and 3 = child B twice (a
    duplicate), 4 = child B with the parent (with 2, a split), 5 = feature 3 (outside the hierarchy)."""
    pl = planted_data(4000, 4, 32, 0.3, hierarchy=[(0, [1, 2])], seed=0)
    d = pl.dirs
    unit = torch.nn.functional.normalize
    w = torch.stack([d[0], unit(d[1] + 0.6 * d[0], dim=0), d[2], unit(d[2] + 0.05 * d[3], dim=0),
                     unit(d[2] + 0.6 * d[0], dim=0), d[3]])  # fmt: skip
    return pl, w


def test_structure_counts_absorption_only_for_a_learned_parent_beside_its_baseline():
    pl, w = _hand_made()
    codes = torch.zeros(len(pl.x), 6)
    parent_on = torch.nonzero(pl.coef[:, 0] > 0).flatten()
    codes[parent_on[::4], 0] = 1.0  # the parent's latent fires on a quarter of the parent's samples
    for f, latent in ((1, 1), (2, 2), (2, 3), (2, 4), (3, 5)):
        codes[pl.coef[:, f] > 0, latent] = 1.0
    f3_on = torch.nonzero(pl.coef[:, 3] > 0).flatten()
    codes[f3_on[::10], 5] = 0.0  # feature 3's latent silent on a tenth of its samples
    st = structure(codes, w, pl)
    (row,) = st["parents"]
    assert row["learned"] and st["n_learned_parents"] == 1
    assert row["absorption"] == pytest.approx(1 - len(parent_on[::4]) / len(parent_on))
    assert st["mean_absorption"] == row["absorption"]
    assert st["silence_baseline"] == pytest.approx(0.1, abs=0.03)  # feature 3, the only one outside the hierarchy
    assert row["lean"] > row["planted_lean"] + 0.1 and st["lean_excess"] > 0.1  # child A's latent leans to the parent
    # feature 2: latents 2 and 3 are near-copies, latent 4 points elsewhere -> split, not duplicated
    assert st["latents_per_feature"].tolist()[2] == 3 and st["share_split"] == pytest.approx(1 / 4)
    assert st["dead_share"] == 0.0


def test_duplicates_are_called_duplicates_and_dead_copies_are_not_counted_as_splits():
    pl, w = _hand_made()
    codes = torch.zeros(len(pl.x), 6)
    for f, latent in ((0, 0), (1, 1), (2, 2), (2, 3), (3, 5)):  # latent 4 never fires
        codes[pl.coef[:, f] > 0, latent] = 1.0
    st = structure(codes, w, pl)
    assert st["share_duplicated"] == pytest.approx(1 / 4) and st["share_split"] == 0.0
    assert st["dead_share"] == pytest.approx(1 / 6) and st["dead_copies"] == 1


def test_a_random_dictionary_and_silent_codes_report_no_absorption():
    """The old `structure` took the parent's best latent at any cosine: a random dictionary read
    absorption 0.38 and an all-zero code 1.0. Now nothing is learned, so nothing can be absorbed."""
    ph = planted_data(20_000, n_features=64, d=32, p_active=0.05, hierarchy=HIER, seed=1)
    rand = TopKSAE(SAEConfig(32, 128, 4))
    rand.reset_parameters(torch.Generator().manual_seed(0))
    st = structure(rand.encode_dense(ph.x), rand.W_dec, ph)
    assert st["n_learned_parents"] == 0 and math.isnan(st["mean_absorption"]) and st["share_found"] == 0.0
    assert all(math.isnan(r["absorption"]) for r in st["parents"])
    silent = structure(torch.zeros(len(ph.x), 64), ph.dirs, ph)  # the answer itself, never firing
    assert silent["n_learned_parents"] == 0 and math.isnan(silent["mean_absorption"]) and silent["dead_share"] == 1.0
    assert silent["share_found"] == 0.0 and silent["dead_copies"] == 64


def test_shrinkage_reads_only_latents_that_fire():
    pl = planted_data(2000, 8, 16, 0.2)
    codes = torch.zeros(2000, 8)  # the right dictionary, never firing
    assert shrinkage(codes, pl.dirs, pl)["n_features"] == 0
    assert shrinkage(pl.coef, pl.dirs, pl)["shrinkage"] == pytest.approx(0.0, abs=1e-6)
    assert shrinkage(0.5 * pl.coef, pl.dirs, pl)["shrinkage"] == pytest.approx(0.5, abs=1e-6)


def test_fvu_by_features_on_puts_the_error_where_k_runs_out():
    pl = planted_data(4000, 16, 8, 0.2, seed=2)
    k = 2
    over = (pl.coef > 0).sum(1) > k
    x_hat = pl.x.clone()
    x_hat[over] = pl.x.mean(0)  # exact where k is enough, the mean elsewhere
    got = fvu_by_features_on(pl.x, x_hat, pl.coef, k)
    assert got["share_over_k"] == pytest.approx(float(over.float().mean()))
    assert got["error_share_over_k"] == pytest.approx(1.0) and got["fvu_at_most_k"] == 0.0
    assert got["fvu_over_k"] == pytest.approx(1.0, abs=0.2)


def test_pca_finds_orthogonal_features_with_distinct_variances_and_nothing_else():
    """PCA's directions lie in the span the features fill, so it beats a random basis a little in
    every case; it matches the features themselves only when they are orthogonal with distinct variances."""
    rows = {r["case"]: r for r in pca_limits(d=32, n_samples=8000)}
    distinct = rows["d/2 orthogonal features, variances 1 to 100"]
    assert distinct["PCA"] > 0.95
    for name, r in rows.items():
        assert r["random basis (chance)"] < 0.5 and r["coordinate axis"] < 0.5, name
        if r is not distinct:
            assert r["random basis (chance)"] < r["PCA"] < 0.8, name


def test_start_sae_is_trains_own_start():
    """`start_sae` is what `train_sae` does before its first step: same decoder, same encoder scale."""
    from snce_lib.sae.train import TrainConfig, train_sae

    pl = planted_data(3000, 16, 8, 0.2)
    ours = start_sae(pl.x, 32, 2)
    cfg = TrainConfig(n_latents=32, k=2, batch_size=64, tokens=64, eval_rows=0, device="cpu", precision="fp32")
    theirs = train_sae(pl.x, cfg, progress=False, stop_after_steps=0).sae
    for name in ("W_dec", "W_enc", "b_pre"):
        assert torch.allclose(getattr(ours, name), getattr(theirs, name), atol=1e-5), name
    assert np.isfinite(float(ours.W_enc.norm()))


def test_best_rescale_finds_the_scale_the_codes_lost():
    pl = planted_data(2000, 8, 16, 0.2)
    b = torch.randn(16, generator=torch.Generator().manual_seed(3))
    scale, err = best_rescale(pl.x + b, 0.25 * pl.coef, pl.dirs, b)  # codes shrunk to a quarter
    assert scale == pytest.approx(4.0, rel=1e-4) and err == pytest.approx(0.0, abs=1e-6)
