"""The TopK sparse autoencoder (Gao et al. 2024), as SNCE uses it.

    z  = TopK_k(ReLU(W_enc (h - b_pre) + b_enc))          z: [..., n_latents], k non-zeros
    h' = W_dec z + b_pre                                  decoder rows have unit norm

The SAE knows nothing of diffusion or text: it maps vectors to sparse codes and back. It knows
nothing of files either: every format it is saved in or read from (snce's own, SAELens', sparsify's,
the hub) lives in `sae.formats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn


class SAEMismatchError(ValueError):
    """An SAE asked to read features it was not trained on (another width)."""


@dataclass
class SAEConfig:
    d_in: int
    """Width of the features the SAE reads (768 for SD 1.x's CLIP, 384 for MiniLM)."""
    n_latents: int
    """Dictionary size m (the paper: 4 x d_in)."""
    k: int = 32
    """Latents kept per token by TopK."""
    encoder_id: str = ""
    """Which text encoder produced the training features (hub id, path, or "offline")."""
    layer: str = ""
    """Module path of the hooked block, e.g. "encoder.layers.9"."""
    layer_index: int = -1
    """Block index of `layer`; used to check that an SAE fits an encoder."""
    encoder_index: int = 0
    """Which of the pipeline's text encoders (0: `text_encoder`; SDXL's and FLUX's second is 1)."""


class SAEOutput(NamedTuple):
    sae_out: torch.Tensor  # [batch, d_in]
    latent_acts: torch.Tensor  # [batch, k]
    latent_indices: torch.Tensor  # [batch, k]
    fvu: torch.Tensor  # scalar: ||h - h'||^2 / ||h - mean(h)||^2
    auxk_loss: torch.Tensor  # scalar, 0 when no latent is dead


class TopKSAE(nn.Module):
    def __init__(self, cfg: SAEConfig):
        super().__init__()
        if cfg.k <= 0 or cfg.k > cfg.n_latents:
            raise ValueError(f"k must be in 1..n_latents ({cfg.n_latents}), got {cfg.k}")
        self.cfg = cfg
        self.metrics: dict = {}  # training metrics (metrics.json), filled by training or by `formats.load`
        d, m = cfg.d_in, cfg.n_latents
        self.W_enc = nn.Parameter(torch.empty(m, d))
        self.b_enc = nn.Parameter(torch.zeros(m))
        self.W_dec = nn.Parameter(torch.empty(m, d))
        self.b_pre = nn.Parameter(torch.zeros(d))
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        with torch.no_grad():
            w = torch.randn(self.cfg.n_latents, self.cfg.d_in, generator=generator)
            w /= w.norm(dim=1, keepdim=True)
            self.W_dec.copy_(w)
            # Tied init (Gao et al.): the encoder starts as the decoder's transpose.
            self.W_enc.copy_(w)
            self.b_enc.zero_()
            self.b_pre.zero_()

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    # ---- encode / decode ------------------------------------------------------------
    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU pre-activations. x: [..., d_in] -> [..., n_latents]."""
        x = x.to(self.W_enc.dtype)
        return torch.relu((x - self.b_pre) @ self.W_enc.T + self.b_enc)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """TopK code as (values, indices), each [..., k]."""
        return self.pre_acts(x).topk(self.cfg.k, dim=-1, sorted=False)

    def encode_dense(self, x: torch.Tensor) -> torch.Tensor:
        """TopK code as a dense tensor [..., n_latents] (zeros off the top k)."""
        return self.to_dense(*self.encode(x))

    def to_dense(self, vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(values, indices) [..., k] -> dense code [..., n_latents]."""
        z = torch.zeros(*vals.shape[:-1], self.cfg.n_latents, dtype=vals.dtype, device=vals.device)
        return z.scatter(-1, idx, vals)

    def decode(self, vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Decode a TopK code. vals, idx: [..., k] -> [..., d_in].

        Scatter-then-matmul: on a CPU it is ~4x faster than gathering k decoder rows per
        token (measured at 4096 x 1536 x 384), and on a GPU the matmul is cheap anyway.
        """
        return self.decode_dense(self.to_dense(vals, idx))

    def decode_dense(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_pre

    def forward(
        self, x: torch.Tensor, dead_mask: torch.Tensor | None = None, k_aux: int = 0, sparse: bool = False
    ) -> SAEOutput:
        """x: [batch, d_in]. `dead_mask` [n_latents] marks dead latents for the AuxK loss.

        `sparse=True` computes the same loss on the sparse path (`snce_lib.sae.sparse`): decoder and
        encoder backward touch only the active latents. The dense path below is the reference."""
        if sparse:
            from snce_lib.sae.sparse import sparse_forward

            return SAEOutput(*sparse_forward(self, x, dead_mask, k_aux))
        x = x.to(self.W_enc.dtype)
        lin = (x - self.b_pre) @ self.W_enc.T + self.b_enc
        vals, idx = torch.relu(lin).topk(self.cfg.k, dim=-1, sorted=False)
        out = self.decode(vals, idx)
        err = x - out
        total_var = (x - x.mean(0)).pow(2).sum()
        fvu = err.pow(2).sum() / total_var
        auxk = x.new_zeros(())
        if dead_mask is not None and k_aux > 0 and bool(dead_mask.any()):
            # AuxK: let the top dead latents explain the residual, so they get gradient
            # and come back to life. Ranked before the ReLU (a dead latent's ReLU output
            # is usually 0), normalised like fvu so alpha means the same at any scale.
            k_eff = min(k_aux, int(dead_mask.sum()))
            a_lin, a_idx = lin.masked_fill(~dead_mask, float("-inf")).topk(k_eff, dim=-1, sorted=False)
            e_hat = self.to_dense(torch.relu(a_lin), a_idx) @ self.W_dec
            e = err.detach()
            auxk = (e_hat - e).pow(2).sum() / (e - e.mean(0)).pow(2).sum().clamp_min(1e-12)
            auxk = torch.nan_to_num(auxk, nan=0.0)
        return SAEOutput(out, vals, idx, fvu, auxk)

    # ---- decoder norm -------------------------------------------------------------------
    @torch.no_grad()
    def set_decoder_norm_(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def remove_parallel_grad_(self) -> None:
        """Project out the gradient component along each (unit) decoder row."""
        if self.W_dec.grad is None:
            return
        par = (self.W_dec.grad * self.W_dec).sum(1, keepdim=True)
        self.W_dec.grad -= par * self.W_dec


def check_fits(cfg: SAEConfig, width: int, what: str = "the activation store") -> None:
    """Raise if an SAE cannot read features of `width`."""
    if cfg.d_in != width:
        raise SAEMismatchError(
            f"the SAE reads {cfg.d_in}-wide features but {what} is {width} wide; "
            "use an SAE trained on this encoder and layer"
        )


def fingerprint(sae: TopKSAE) -> str:
    """A short hash of the weights: ties neuron selections to the SAE that made them."""
    import hashlib

    h = hashlib.sha256()
    for name in ("W_enc", "b_enc", "W_dec", "b_pre"):
        h.update(getattr(sae, name).detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]
