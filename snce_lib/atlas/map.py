"""The atlas: a dictionary's codes over a sample of prompts, and its map (decoder UMAP)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from snce_lib.concepts.codes import PromptCodes, firing_frequency, prompt_codes
from snce_lib.models.encoders import TextEncoder
from snce_lib.sae.model import TopKSAE


@dataclass
class Atlas:
    """Everything the feature atlas shows, computed once over a sample of prompts."""

    codes: PromptCodes
    frequency: np.ndarray  # [n_latents] share of positions where each latent fires
    tokens: list  # token id -> string lookup, as a function
    n_latents: int

    def token(self, tid: int) -> str:
        return self.tokens(int(tid))


def build_atlas(encoder: TextEncoder, sae: TopKSAE, prompts: Sequence[str], progress: bool = True) -> Atlas:
    codes = prompt_codes(encoder, sae, prompts, progress=progress)
    cache: dict[int, str] = {}

    def tok(tid: int) -> str:
        if tid not in cache:
            cache[tid] = encoder.token_strings([tid])[0]
        return cache[tid]

    return Atlas(codes, firing_frequency(codes), tok, sae.cfg.n_latents)


def decoder_umap(sae: TopKSAE, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """2-d UMAP of the decoder directions (cosine metric). [n_latents, 2]"""
    import warnings

    import umap

    warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)  # a fixed seed runs one job
    w = sae.W_dec.detach().float().cpu().numpy()
    return umap.UMAP(n_neighbors=n_neighbors, min_dist=0.1, metric="cosine", random_state=seed).fit_transform(w)
