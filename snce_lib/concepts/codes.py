"""SAE codes of prompts, stored sparse, and the per-latent sums every score is built from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from snce_lib.models.encoders import TextEncoder
from snce_lib.sae.model import TopKSAE, check_fits


@dataclass
class PromptCodes:
    """Sparse TopK codes of a prompt list at every position after BOS.

    Nothing of size prompts x positions x latents is ever built: at the colab profile's atlas
    size (5,000 prompts x 76 positions x 3,072 latents) a dense float32 copy is 4.4 GiB, the
    sparse one 73 MB. Values stay float32 so every score matches the dense computation exactly.

    values:  [prompts, L-1, k] float32 (position j here is token position j+1)
    indices: [prompts, L-1, k] int16 (int32 past 32,767 latents)
    real:    [prompts, L-1] bool, True for words and EOS
    pad:     [prompts, L-1] bool, True for padding positions
    token_ids: [prompts, L-1]
    """

    prompts: list[str]
    values: torch.Tensor
    indices: torch.Tensor
    real: torch.Tensor
    pad: torch.Tensor
    token_ids: torch.Tensor
    n_latents: int

    @classmethod
    def from_dense(
        cls, prompts: list[str], dense: torch.Tensor, real: torch.Tensor, pad: torch.Tensor, token_ids: torch.Tensor
    ) -> PromptCodes:
        """Sparse codes from a small dense [prompts, L-1, n_latents] tensor (hand-made examples, tests)."""
        k = max(int((dense != 0).sum(-1).max()), 1)
        vals, idx = dense.float().topk(k, dim=-1)
        return cls(list(prompts), vals, idx.to(torch.int32), real, pad, token_ids, dense.shape[-1])

    def mask(self, include_padding: bool = True) -> torch.Tensor:
        return (self.real | self.pad) if include_padding else self.real

    def activation(self, neurons: Sequence[int]) -> torch.Tensor:
        """Summed activation of `neurons` at every position. [prompts, L-1] float32"""
        hit = torch.isin(self.indices, torch.as_tensor(list(neurons), dtype=self.indices.dtype))
        return (self.values * hit).sum(-1)

    def positions(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, indices) of the positions where `mask` [prompts, L-1] is True. [N, k] each"""
        return self.values[mask], self.indices[mask].long()

    def latent_sums(self, mask: torch.Tensor, normalise: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
        """Per latent over the masked positions: (firing count, summed activation, N positions).
        `normalise` first L2-normalises each position's code (SNCE eqs. 4-5). [n_latents] float64 each"""
        v, i = self.positions(mask)
        v = v.double()
        if normalise:
            v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        fired = (v > 0).double()
        count = torch.zeros(self.n_latents, dtype=torch.float64).index_add_(0, i.reshape(-1), fired.reshape(-1))
        total = torch.zeros(self.n_latents, dtype=torch.float64).index_add_(0, i.reshape(-1), v.reshape(-1))
        return count.numpy(), total.numpy(), int(v.shape[0])

    def feature_token_counts(self, include_padding: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(feature, token id, count) of every firing over the masked positions, one row a distinct
        pair: how often each latent fires on each token. Three 1-d int64 tensors."""
        vals, idx = self.positions(self.mask(include_padding))
        tok = self.token_ids[self.mask(include_padding)].long().unsqueeze(1).expand_as(idx)
        on = vals > 0
        vocab = int(self.token_ids.max()) + 1 if self.token_ids.numel() else 1
        pair, count = torch.unique(idx[on] * vocab + tok[on], return_counts=True)
        return pair // vocab, pair % vocab, count

    def fired_per_prompt(self, include_padding: bool = True) -> torch.Tensor:
        """Whether each latent fires anywhere in each prompt. [prompts, n_latents] bool"""
        on = (self.values > 0) & self.mask(include_padding).unsqueeze(-1)
        p = torch.arange(len(self.prompts)).view(-1, 1, 1).expand_as(self.indices)
        out = torch.zeros(len(self.prompts), self.n_latents, dtype=torch.bool)
        out[p[on], self.indices[on].long()] = True
        return out

    def dense(self, prompt: int) -> torch.Tensor:
        """One prompt's dense code, for display. [L-1, n_latents]"""
        z = torch.zeros(self.values.shape[1], self.n_latents)
        return z.scatter(-1, self.indices[prompt].long(), self.values[prompt])

    def max_activation(self, neurons: Sequence[int], include_padding: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Per prompt: max over positions of the summed activation of `neurons`, and the arg-max position (1-based)."""
        a = self.activation(neurons).masked_fill(~self.mask(include_padding), float("-inf"))
        best, where = a.max(dim=1)
        return best.clamp_min(0).numpy(), (where + 1).numpy()


@torch.no_grad()
def prompt_codes(
    encoder: TextEncoder, sae: TopKSAE, prompts: Sequence[str], layer=None, batch_size: int = 64, progress: bool = False
) -> PromptCodes:
    """Run prompts to the SAE's block and encode every position after BOS (sparse)."""
    check_fits(sae.cfg, encoder.width, f"layer {layer or sae.cfg.layer} of {encoder.encoder_id}")
    layer = layer if layer is not None else (sae.cfg.layer or None)
    prompts = list(prompts)
    if not prompts:
        raise ValueError("the prompt list is empty")
    idx_dtype = torch.int16 if sae.cfg.n_latents <= torch.iinfo(torch.int16).max else torch.int32
    vals, idxs, real, pad, ids = [], [], [], [], []
    dev = sae.device
    for s in tqdm(range(0, len(prompts), batch_size), desc="encode prompts", disable=not progress):
        toks = encoder.tokenize(prompts[s : s + batch_size])
        s0 = encoder.start  # the positions after BOS (T5 has none)
        h = encoder.run_to_block(toks, layer)[:, s0:].to(dev).float()
        v, i = sae.encode(h)
        vals.append(v.cpu())
        idxs.append(i.to(idx_dtype).cpu())
        m = toks.attention_mask[:, s0:].bool()
        real.append(m)
        pad.append(~m)
        ids.append(toks.input_ids[:, s0:])
    return PromptCodes(
        prompts, torch.cat(vals), torch.cat(idxs), torch.cat(real), torch.cat(pad), torch.cat(ids), sae.cfg.n_latents
    )


def firing_frequency(codes: PromptCodes, include_padding: bool = True) -> np.ndarray:
    """Share of positions on which each latent fires. [n_latents]"""
    count, _, n = codes.latent_sums(codes.mask(include_padding))
    return count / max(n, 1)
