"""The ReLU + L1 sparse autoencoder (Towards Monosemanticity's recipe), beside TopK for teaching.

    z = ReLU(W_enc (x - b_pre) + b_enc),   x_hat = b_pre + z W_dec,   rows of W_dec at unit norm
    loss = FVU(x, x_hat) + l1 * mean_n sum_i z_i / mean_n ||x_n - mean(x)||

Sparsity comes from the penalty, so it is set indirectly (`l1` -> L0) and it pulls every active
latent towards zero as well: the activations come out smaller than the coefficients they stand
for (shrinkage), which TopK's hard selection avoids. The penalty is divided by the data's mean
norm so that `l1` means the same at any scale. `fit_l1_for_l0` finds the `l1` that gives a target L0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from snce_lib.rng import torch_generator


class ReLUSAE(nn.Module):
    def __init__(self, d_in: int, n_latents: int, seed: int = 0):
        super().__init__()
        g = torch_generator(seed, "l1-init")
        w = torch.nn.functional.normalize(torch.randn(n_latents, d_in, generator=g), dim=1)
        self.W_dec = nn.Parameter(w.clone())  # [n_latents, d_in]
        self.W_enc = nn.Parameter(w.clone())  # [n_latents, d_in], starts as the decoder's transpose
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        self.b_pre = nn.Parameter(torch.zeros(d_in))

    def encode_dense(self, x: torch.Tensor) -> torch.Tensor:
        """x: [batch, d_in] -> z: [batch, n_latents] (non-negative, most zero once trained)."""
        return torch.relu((x - self.b_pre) @ self.W_enc.T + self.b_enc)

    def decode_dense(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_pre

    @torch.no_grad()
    def set_decoder_norm_(self) -> None:
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))


@dataclass
class L1Result:
    sae: ReLUSAE
    history: list[dict] = field(default_factory=list)
    l1: float = 0.0


def train_l1_sae(x: torch.Tensor, n_latents: int, l1: float, steps: int = 2000, batch_size: int = 256,
                 lr: float = 3e-3, seed: int = 0, log_every: int = 100,
                 watch: Callable[[ReLUSAE], dict] | None = None) -> L1Result:  # fmt: skip
    """Adam on the loss above; the decoder is renormalised after every step. History rows: step, fvu,
    l0 (on the batch) and `watch(sae)`'s measurements."""
    x = x.float()
    sae = ReLUSAE(x.shape[1], n_latents, seed)
    with torch.no_grad():
        sae.b_pre.copy_(x.mean(0))
    scale = float((x - x.mean(0)).norm(dim=1).mean())
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    g = torch_generator(seed, "l1-batches")
    history = []
    for step in range(1, steps + 1):
        b = x[torch.randint(len(x), (batch_size,), generator=g)]
        z = sae.encode_dense(b)
        err = sae.decode_dense(z) - b
        fvu = err.pow(2).sum() / (b - b.mean(0)).pow(2).sum()
        loss = fvu + l1 * z.sum(1).mean() / scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sae.set_decoder_norm_()
        if step % log_every == 0 or step == steps:
            row = {"step": step, "fvu": float(fvu.detach()), "l0": float((z > 0).sum(1).float().mean())}
            if watch is not None:
                with torch.no_grad():
                    row.update(watch(sae))
            history.append(row)
    return L1Result(sae.requires_grad_(False), history, l1)


@torch.no_grad()
def l0_of(sae: ReLUSAE, x: torch.Tensor) -> float:
    return float((sae.encode_dense(x.float()) > 0).sum(1).float().mean())


def fit_l1_for_l0(x: torch.Tensor, n_latents: int, target_l0: float, steps: int = 1500, tries: int = 7,
                  lo: float = 1e-3, hi: float = 3.0, seed: int = 0, **kw) -> L1Result:  # fmt: skip
    """Bisection on log(l1) until the trained SAE's L0 on `x` is near `target_l0`; returns the closest run."""
    best, best_gap = None, math.inf
    for _ in range(tries):
        mid = math.sqrt(lo * hi)
        res = train_l1_sae(x, n_latents, mid, steps=steps, seed=seed, **kw)
        l0 = l0_of(res.sae, x)
        if abs(l0 - target_l0) < best_gap:
            best, best_gap = res, abs(l0 - target_l0)
        if l0 > target_l0:
            lo = mid  # too dense: a stronger penalty
        else:
            hi = mid
    return best
