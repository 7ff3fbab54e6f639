"""The atlas: a dictionary's codes over a sample of prompts, each feature's firings and per-prompt peaks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from snce_lib.concepts.codes import PromptCodes, firing_frequency, prompt_codes
from snce_lib.concepts.positions import Firings, prompt_peaks, sorted_firings, special_ids, whole_words
from snce_lib.models.encoders import TextEncoder
from snce_lib.sae.model import TopKSAE


@dataclass
class Atlas:
    """Everything the feature atlas shows, computed once over a sample of prompts."""

    codes: PromptCodes
    frequency: np.ndarray  # [n_latents] share of positions where each latent fires
    tokens: list  # token id -> string lookup, as a function
    n_latents: int
    special_ids: tuple = ()
    """The tokenizer's special tokens (end, separator, padding): end-or-padding positions."""
    vocab: object = field(default=None, repr=False)
    """`vocab.VocabTop`: the vocabulary tokens that light each feature alone (None: not computed)."""
    _words: object = field(default=None, repr=False)
    cache: dict = field(default_factory=dict, repr=False)
    """Things computed once an atlas (the search index)."""

    def token(self, tid: int) -> str:
        return self.tokens(int(tid))

    @property
    def words(self):
        """Every position's whole word and kind (`concepts.positions.whole_words`), computed once."""
        if self._words is None:
            self._words = whole_words(self.codes, self.token, self.special_ids)
        return self._words

    def firings(self) -> Firings:
        """Every firing, grouped by feature, strongest first (`positions.sorted_firings`), made once."""
        if "firings" not in self.cache:
            self.cache["firings"] = sorted_firings(self.codes)
        return self.cache["firings"]

    def peaks(self) -> Firings:
        """Each prompt's peak per feature, strongest first (`positions.prompt_peaks`), made once."""
        if "peaks" not in self.cache:
            self.cache["peaks"] = prompt_peaks(self.codes, firings=self.firings())
        return self.cache["peaks"]


def build_atlas(encoder: TextEncoder, sae: TopKSAE, prompts: Sequence[str], progress: bool = True) -> Atlas:
    codes = prompt_codes(encoder, sae, prompts, progress=progress)
    cache: dict[int, str] = {}

    def tok(tid: int) -> str:
        if tid not in cache:
            cache[tid] = encoder.token_strings([tid])[0]
        return cache[tid]

    return Atlas(codes, firing_frequency(codes), tok, sae.cfg.n_latents, special_ids(encoder))
