"""Per feature, the vocabulary's whole words that light it on their own: the card's "vocabulary
alone" view.

The atlas's sample holds the words its prompts happen to use. A feature that stands for snow may
fire hardest on "frozen" or "icicles", words the sample lacks; a cat feature on "kitten". The
encoder's whole vocabulary is read once per SAE, one word a prompt (`concepts.vocabulary`, the same
pass and the same cache that concept discovery uses), and each feature's row here is its `n`
strongest words from that pass, sorted exactly (two stable sorts, no combined float key).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from snce_lib.concepts.vocabulary import VocabularyCodes, vocabulary_codes
from snce_lib.models.encoders import TextEncoder
from snce_lib.sae.model import TopKSAE


@dataclass
class VocabTop:
    tokens: np.ndarray
    """[n_latents, n] token ids, strongest first; -1 where fewer tokens light the feature."""
    values: np.ndarray
    """[n_latents, n] the feature's activation on each token alone (0 where none)."""
    n_tokens: int
    """How many vocabulary words were run."""
    seconds: float
    """How long the vocabulary pass took when it was computed (a loaded cache keeps that figure)."""
    cached: bool = False
    """True when the pass was read from the cache beside the SAE."""

    def of(self, feature: int) -> list[tuple[int, float]]:
        """[(token id, activation)] of the tokens that light `feature` alone, strongest first."""
        keep = self.tokens[feature] >= 0
        return [(int(t), float(v)) for t, v in zip(self.tokens[feature][keep], self.values[feature][keep])]


def vocabulary_top(codes: VocabularyCodes, n: int = 10) -> VocabTop:
    """Each feature's `n` strongest words of the vocabulary pass `codes`."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    on = codes.values > 0
    word = torch.arange(len(codes.words)).view(-1, 1).expand_as(codes.indices)[on]
    f, v = codes.indices[on].long(), codes.values[on].float()
    order = torch.sort(v, descending=True, stable=True).indices  # feature, then strongest first: exact
    order = order[torch.sort(f[order], stable=True).indices]
    f, v, word = f[order].numpy(), v[order].numpy(), word[order].numpy()
    starts = np.searchsorted(f, np.arange(codes.n_latents + 1))
    rank = np.arange(len(f)) - starts[f]
    keep = rank < n
    tokens = np.full((codes.n_latents, n), -1, dtype=np.int64)
    values = np.zeros((codes.n_latents, n), dtype=np.float32)
    tokens[f[keep], rank[keep]] = codes.token_ids[word[keep]]
    values[f[keep], rank[keep]] = v[keep]
    return VocabTop(tokens, values, len(codes.words), codes.seconds, codes.cached)


def load_or_compute(encoder: TextEncoder, sae: TopKSAE, folder: str | os.PathLike | None, n: int = 10,
                    progress: bool = True) -> VocabTop:  # fmt: skip
    """`vocabulary_top` of the vocabulary pass, read from `folder` (the SAE's) when it was cached
    there for this SAE, otherwise computed and, with a folder, cached there."""
    return vocabulary_top(vocabulary_codes(encoder, sae, cache_dir=folder, progress=progress), n)
