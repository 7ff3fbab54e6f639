"""The TopK SAE and its trainer on synthetic data with planted sparse directions."""

import json

import pytest
import torch

from snce_lib.sae.model import CheckpointError, SAEConfig, TopKSAE
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
    res.sae.save(tmp_path / "sae")
    back = TopKSAE.load(tmp_path / "sae")
    for k, v in res.sae.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    assert torch.equal(res.sae.encode_dense(x[:100]), back.encode_dense(x[:100]))
    assert back.metrics["fvu"] == pytest.approx(res.metrics["fvu"])


def test_load_ignores_unknown_keys(trained, tmp_path):
    _, _, res = trained
    res.sae.save(tmp_path / "sae")
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    cfg["added_by_a_future_version"] = 1
    (tmp_path / "sae" / "cfg.json").write_text(json.dumps(cfg))
    assert TopKSAE.load(tmp_path / "sae").cfg.n_latents == 96


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
    path = sae.save(tmp_path / "sae")
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
        TopKSAE.load(path)


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
