"""The TopK SAE and its trainer on synthetic data with planted sparse directions."""

import json

import pytest
import torch

from snce_lib.sae import formats
from snce_lib.sae.formats import CheckpointError
from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.train import TrainConfig, TrainError, train_sae


def planted_data(n=40_000, d=32, n_feat=48, active=3, seed=0):
    """Each row is a sparse non-negative mix of `active` of `n_feat` unit directions."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n_feat, d, generator=g)
    dirs /= dirs.norm(dim=1, keepdim=True)
    idx = torch.stack([torch.randperm(n_feat, generator=g)[:active] for _ in range(n)])
    coef = torch.rand(n, active, generator=g) * 2 + 0.5
    x = (coef.unsqueeze(-1) * dirs[idx]).sum(1) + 0.01 * torch.randn(n, d, generator=g)
    return x, dirs


def small_cfg(**kw):
    base = dict(
        n_latents=96,
        k=4,
        lr=3e-3,
        batch_size=512,
        tokens=600 * 512,
        dead_after_tokens=20_000,
        log_every=50,
        checkpoint_every=100,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained():
    x, dirs = planted_data()
    res = train_sae(x, small_cfg(), progress=False)
    return x, dirs, res


def test_planted_directions_are_recovered(trained):
    _, dirs, res = trained
    cos = dirs @ res.sae.W_dec.detach().T  # [n_feat, n_latents]
    best = cos.max(dim=1).values
    recovered = float((best >= 0.9).float().mean())
    assert recovered >= 0.9, (
        f"only {recovered:.0%} of planted directions found at cos>=0.9 (best: {best.sort().values[:5]})"
    )
    assert res.metrics["fvu"] < 0.1, res.metrics
    assert res.metrics["l0"] <= 4.0


def test_history_is_data(trained):
    _, _, res = trained
    assert [h["step"] for h in res.history] == sorted(h["step"] for h in res.history)
    assert set(res.history[-1]) >= {"fvu", "l0", "dead_fraction", "auxk_loss", "tokens"}
    assert res.history[-1]["fvu"] < res.history[0]["fvu"]


def test_decoder_rows_stay_unit_norm(trained):
    _, _, res = trained
    norms = res.sae.W_dec.detach().norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_save_load_is_exact(trained, tmp_path):
    x, _, res = trained
    formats.save(res.sae, tmp_path / "sae")
    back = formats.load(tmp_path / "sae")
    for k, v in res.sae.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    assert torch.equal(res.sae.encode_dense(x[:100]), back.encode_dense(x[:100]))
    assert back.metrics["fvu"] == pytest.approx(res.metrics["fvu"])


def test_load_ignores_unknown_keys(trained, tmp_path):
    _, _, res = trained
    formats.save(res.sae, tmp_path / "sae")
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    cfg["added_by_a_future_version"] = 1
    (tmp_path / "sae" / "cfg.json").write_text(json.dumps(cfg))
    assert formats.load(tmp_path / "sae").cfg.n_latents == 96


def test_resume_continues_from_saved_step(tmp_path):
    x, _ = planted_data(n=8000)
    cfg = small_cfg(tokens=40 * 512, checkpoint_every=10)
    full = train_sae(x, cfg, out_dir=tmp_path / "a", progress=False)
    part = train_sae(x, cfg, out_dir=tmp_path / "b", progress=False, stop_after_steps=20)
    assert part.metrics == {}  # not finished: no final metrics written
    assert not (tmp_path / "b" / "metrics.json").exists()
    state = json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 20
    resumed = train_sae(x, cfg, out_dir=tmp_path / "b", progress=False)
    assert resumed.history[-1]["step"] == 40
    assert [h["step"] for h in resumed.history] == [h["step"] for h in full.history]
    for k, v in full.sae.state_dict().items():
        assert torch.allclose(v, resumed.sae.state_dict()[k], atol=1e-6), k
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["tokens_seen"] == 40 * 512


def test_resume_with_other_settings_is_refused(tmp_path):
    x, _ = planted_data(n=4000)
    train_sae(
        x, small_cfg(tokens=20 * 512, checkpoint_every=5), out_dir=tmp_path / "a", progress=False, stop_after_steps=5
    )
    with pytest.raises(TrainError, match="other settings"):
        train_sae(x, small_cfg(tokens=20 * 512, checkpoint_every=5, k=8), out_dir=tmp_path / "a", progress=False)


def test_non_finite_activations_are_refused():
    x, _ = planted_data(n=1000)
    x[17, 3] = float("nan")
    with pytest.raises(TrainError, match="NaN or inf"):
        train_sae(x, small_cfg(tokens=512), progress=False)


@pytest.mark.parametrize("damage", ["garbage_weights", "foreign_cfg", "missing", "bad_json", "wrong_shape"])
def test_corrupt_or_foreign_checkpoints_are_refused(tmp_path, damage):
    sae = TopKSAE(SAEConfig(8, 16, 2))
    path = formats.save(sae, tmp_path / "sae")
    if damage == "garbage_weights":
        (path / "sae.safetensors").write_bytes(b"\x00\x01 not a safetensors file")
    elif damage == "foreign_cfg":
        (path / "cfg.json").write_text(json.dumps({"d_in": 8, "n_latents": 16}))
    elif damage == "missing":
        (path / "sae.safetensors").unlink()
    elif damage == "bad_json":
        (path / "cfg.json").write_text("{ not json")
    elif damage == "wrong_shape":
        cfg = json.loads((path / "cfg.json").read_text())
        cfg["n_latents"] = 32
        (path / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError):
        formats.load(path)


def test_auxk_revives_dead_latents():
    """With AuxK, a latent that starts dead gets gradient; without, it stays dead."""
    x, _ = planted_data(n=4000, d=16, n_feat=8)
    sae = TopKSAE(SAEConfig(16, 32, 2))
    dead = torch.zeros(32, dtype=torch.bool)
    dead[:16] = True
    out = sae(x[:512], dead_mask=dead, k_aux=8)
    out.auxk_loss.backward()
    assert out.auxk_loss > 0
    assert sae.W_enc.grad[:16].abs().sum() > 0
    assert sae.W_enc.grad[16:].abs().sum() == 0


def test_encoder_init_scale_minimises_the_first_reconstruction_error():
    from snce_lib.sae.train import init_b_pre_, init_encoder_scale_

    x, _ = planted_data(n=4000)
    x = torch.as_tensor(x).float()
    sae = TopKSAE(SAEConfig(x.shape[1], 4 * x.shape[1], 4))
    sae.reset_parameters(torch.Generator().manual_seed(0))
    init_b_pre_(sae, x, "median")

    def err(s: float) -> float:
        with torch.no_grad():
            r = sae.decode(*sae.encode(x)) - sae.b_pre
            return float((x - sae.b_pre - s * r).pow(2).sum())

    unit = err(1.0)
    s = init_encoder_scale_(sae, x)
    assert 0 < s < 1 and err(1.0) < unit  # the unit-norm start overshoots; the fitted one does not
    assert err(1.0) <= min(err(0.95), err(1.05))  # a minimum along the scale
    assert torch.allclose(sae.W_enc.norm(dim=1), torch.full((sae.cfg.n_latents,), s))


@pytest.mark.parametrize(
    "capability, dtype", [((7, 5), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)]
)
def test_auto_precision_follows_the_gpus_compute_capability(monkeypatch, capability, dtype):
    """A T4 (7.5) trains in fp16 with loss scaling, an A100 (8.0) and later in bf16 without. The
    capability decides, not `is_bf16_supported` (True on a T4 through emulation)."""
    from snce_lib.sae.train import autocast_dtype, make_scaler

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # GradScaler disables itself without CUDA
    cuda = torch.device("cuda")
    amp = autocast_dtype("auto", cuda)
    assert amp == dtype
    assert make_scaler(amp, cuda).is_enabled() == (dtype == torch.float16)
    assert autocast_dtype("fp32", cuda) is None and autocast_dtype("bf16", cuda) == torch.bfloat16


def test_train_cli_takes_precision_and_path(tiny_clip_dir, tmp_path, capsys):
    """`snce train --precision fp32 --path dense` trains with those, and the metrics say so."""
    from snce_lib.cli import main
    from snce_lib.models.encoders import load_sd
    from snce_lib.sae.collect import collect
    from tests.helpers import PROMPTS

    collect(load_sd(str(tiny_clip_dir), device="cpu"), PROMPTS * 8, tmp_path / "st", layer=2, progress=False)
    base = ["train", "--activations", str(tmp_path / "st"), "--latents", "32", "--k", "4", "--tokens", "8192"]
    for precision, path in (("fp32", "dense"), ("bf16", "sparse")):
        out = tmp_path / f"sae_{precision}"
        assert main([*base, "--out", str(out), "--precision", precision, "--path", path]) == 0
        m = json.loads((out / "metrics.json").read_text())
        assert (m["autocast"], m["backward_path"]) == (precision, path)
        assert m["train_config"]["precision"] == precision and m["train_config"]["path"] == path
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*base, "--out", str(tmp_path / "x"), "--precision", "fp8"])


@pytest.mark.parametrize("sparse", [False, True])
def test_auxk_revives_dead_latents_in_training_and_without_it_they_stay_dead(sparse):
    """Half of 32 latents start dead on data with 32 planted features in 16 dimensions (so they are
    needed): AuxK brings most back; without it they get no gradient and stay dead."""
    from snce_lib.sae.dead import dead_start_run
    from snce_lib.sae.planted import planted_data

    pl = planted_data(8000, n_features=32, d=16, p_active=0.06, seed=0)
    on = dead_start_run(pl, 32, 2, auxk_alpha=1 / 32, steps=150, k_aux=8, dead_after_tokens=1024, sparse=sparse)
    off = dead_start_run(pl, 32, 2, auxk_alpha=0.0, steps=150, k_aux=8, dead_after_tokens=1024, sparse=sparse)
    assert on["n_started_dead"] == 16
    assert on["revived"] >= 12 and on["still_dead"] <= 4, on["history"][-1]
    assert off["revived"] <= 3 and off["still_dead"] >= 13, off["history"][-1]
    assert on["history"][-1]["mean_max_cosine"] > off["history"][-1]["mean_max_cosine"]


def test_since_fired_counts_tokens_since_each_latent_last_fired():
    """After a step, a latent that fired on the batch reads 0, every other one its old count plus the batch."""
    from snce_lib.sae.train import make_optimizer, make_scaler, training_step

    x, _ = planted_data(n=256, d=16, n_feat=8)
    cfg = TrainConfig(n_latents=32, k=2, batch_size=64)
    sae = TopKSAE(SAEConfig(16, 32, 2))
    sae.reset_parameters(torch.Generator().manual_seed(0))
    since = torch.arange(32, dtype=torch.long) * 100
    old = since.clone()
    out = training_step(sae, make_optimizer(sae, cfg), make_scaler(None, torch.device("cpu")), x[:64], since, cfg,
                        0, None, False)  # fmt: skip
    hit = torch.zeros(32, dtype=torch.bool)
    hit[out.latent_indices[out.latent_acts > 0].unique()] = True
    assert hit.any() and (~hit).any()
    assert torch.equal(since[hit], torch.zeros(int(hit.sum()), dtype=torch.long))
    assert torch.equal(since[~hit], old[~hit] + 64)


def test_geometric_median_minimises_the_summed_distance_and_resists_outliers():
    from scipy.optimize import minimize

    from snce_lib.sae.train import geometric_median

    line = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [100.0, 0.0]])
    assert torch.allclose(geometric_median(line, iters=200), torch.tensor([2.0, 0.0]), atol=1e-2)  # the 1-d median
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(200, 5, generator=g), 50 + torch.randn(20, 5, generator=g)]).double()

    def cost(m):
        return float((x - torch.as_tensor(m)).norm(dim=1).sum())

    best = minimize(cost, x.mean(0).numpy(), method="Nelder-Mead", options={"maxiter": 20000, "fatol": 1e-10}).fun
    gm = geometric_median(x)
    assert cost(gm) <= best * (1 + 1e-4) and cost(gm) < 0.9 * cost(x.mean(0))
    assert gm.norm() < 3  # near the 200 inliers, not pulled halfway to the outliers as the mean is


def test_held_out_rows_are_whole_prompts_when_groups_are_given():
    """The SAE's held-out FVU once split rows, so one prompt's positions sat on both sides; with the
    store's prompt ids each prompt is on one side only, and the held-out share stays near eval_rows."""
    import numpy as np

    from snce_lib.sae.batches import held_out_split

    groups = np.repeat(np.arange(300), 20)  # 300 prompts of 20 rows
    train, held = held_out_split(len(groups), 0, 400, groups)
    assert not set(groups[train]) & set(groups[held])
    assert len(train) + len(held) == len(groups) and 300 <= len(held) <= 400 and len(held) % 20 == 0
    rows_train, rows_held = held_out_split(len(groups), 0, 400)
    assert set(groups[rows_train]) & set(groups[rows_held])  # without groups, prompts straddle the split
    with pytest.raises(TrainError, match="one group per row"):
        held_out_split(10, 0, 5, np.zeros(3))
