"""The sparse training path computes the dense path's loss and gradients."""

import pytest
import torch

from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.train import TrainConfig, train_sae


def loss_and_grads(sae, x, dead, k_aux, sparse):
    sae.zero_grad()
    out = sae(x, dead_mask=dead, k_aux=k_aux, sparse=sparse)
    (out.fvu + out.auxk_loss / 32).backward()
    return out, {n: p.grad.clone() for n, p in sae.named_parameters()}


@pytest.mark.parametrize("n_dead", [0, 5, 60], ids=["no dead", "fewer dead than k_aux", "many dead"])
@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_and_dense_agree_on_loss_and_gradients(seed, n_dead):
    g = torch.Generator().manual_seed(seed)
    sae = TopKSAE(SAEConfig(48, 192, 8))
    sae.reset_parameters(g)
    with torch.no_grad():
        sae.b_pre.copy_(torch.randn(48, generator=g) * 0.1)
    x = torch.randn(256, 48, generator=g) @ torch.randn(48, 48, generator=g) * 0.3 + 0.5
    dead = torch.zeros(192, dtype=torch.bool)
    dead[torch.randperm(192, generator=g)[:n_dead]] = True
    dense, gd = loss_and_grads(sae, x, dead, 24, sparse=False)
    sparse, gs = loss_and_grads(sae, x, dead, 24, sparse=True)
    assert torch.equal(dense.latent_indices.sort(-1).values, sparse.latent_indices.sort(-1).values)
    assert torch.allclose(dense.sae_out, sparse.sae_out, atol=1e-5)
    assert float(dense.fvu.detach()) == pytest.approx(float(sparse.fvu.detach()), rel=1e-5)
    assert float(dense.auxk_loss.detach()) == pytest.approx(float(sparse.auxk_loss.detach()), rel=1e-5, abs=1e-7)
    for name in gd:
        scale = float(gd[name].abs().max())
        assert scale > 0, name
        assert torch.allclose(gd[name], gs[name], atol=1e-5 * scale, rtol=1e-4), name


def test_training_on_either_path_ends_at_the_same_quality():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6000, 32, generator=g) @ torch.randn(32, 32, generator=g)
    runs = {
        path: train_sae(
            x,
            TrainConfig(n_latents=128, k=4, batch_size=256, tokens=20_000, path=path, precision="fp32"),
            progress=False,
        )
        for path in ("dense", "sparse")
    }
    fvu = {path: r.metrics["fvu"] for path, r in runs.items()}
    assert fvu["sparse"] == pytest.approx(fvu["dense"], rel=0.02), fvu
    # the same steps in the same order: the weights stay close (float sums differ only in order)
    assert torch.allclose(runs["dense"].sae.W_dec, runs["sparse"].sae.W_dec, atol=1e-3)


def test_sparse_path_under_autocast_matches_fp32_to_bf16_precision():
    """The GPU's mixed-precision path, exercised on the CPU's bf16 autocast."""
    g = torch.Generator().manual_seed(5)
    sae = TopKSAE(SAEConfig(64, 256, 8))
    sae.reset_parameters(g)
    x = torch.randn(512, 64, generator=g)
    dead = torch.zeros(256, dtype=torch.bool)
    dead[:40] = True
    ref, g_ref = loss_and_grads(sae, x, dead, 32, sparse=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, g_low = loss_and_grads(sae, x, dead, 32, sparse=True)
    assert float(low.fvu.detach()) == pytest.approx(float(ref.fvu.detach()), rel=0.05)
    for name in g_ref:
        cos = torch.nn.functional.cosine_similarity(g_ref[name].flatten(), g_low[name].float().flatten(), dim=0)
        assert cos > 0.95, (name, float(cos))
