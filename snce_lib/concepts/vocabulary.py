"""The encoder's vocabulary, one whole word at a time: each word's block features and SAE code at its
own position, computed once per SAE and kept beside it.

A prompt set holds a few thousand words; the tokenizer holds tens of thousands. Reading every word
on its own reaches the words a corpus lacks ("kitten", "frozen"): a dense probe fitted on four
examples of guns ranks "pistol", "revolver", "handgun" first, and the latents those words fire are
the concept's other carriers (`concepts.family`). Each word runs as [BOS, word, EOS] with no
padding: a causal encoder (CLIP) never lets a later position change an earlier one, and a
bidirectional one (MiniLM) masks padding, so the word's position holds what it holds in any prompt
that starts with it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from snce_lib.models.encoders import Tokens
from snce_lib.sae.model import TopKSAE, check_fits, fingerprint

#: A whole word worth reading: letters only, at least three of them (pieces, numbers, marks are left out).
WORD = re.compile(r"[a-z]{3,}")


@dataclass
class VocabularyCodes:
    """words [N]; features [N, d] (float16, the block's output at the word); values, indices [N, k]
    (the SAE's TopK code there)."""

    words: list[str]
    token_ids: np.ndarray
    features: torch.Tensor
    values: torch.Tensor
    indices: torch.Tensor
    n_latents: int
    seconds: float = 0.0
    """How long the pass took when it was computed (a cache read keeps that figure)."""
    cached: bool = False
    """True when read from the cache beside the SAE."""

    def activations(self, latent: int) -> np.ndarray:
        """Each word's activation of `latent` on its own. [N]"""
        hit = self.indices.long() == int(latent)
        return (self.values * hit).sum(-1).numpy()

    def top_words(self, latent: int, n: int = 10) -> list[tuple[str, float]]:
        """The words that most activate `latent` on their own, strongest first (only those that fire)."""
        a = self.activations(latent)
        order = np.argsort(-a, kind="stable")[:n]
        return [(self.words[i], round(float(a[i]), 3)) for i in order if a[i] > 0]


def vocabulary_words(encoder) -> list[tuple[str, int]]:
    """(word, token id) of every whole-word token: WordPiece tokens that are no continuation ("##ing"),
    BPE tokens that end a word ("cat</w>"), SentencePiece tokens that start one ("▁cat", T5), letters
    only, three or more."""
    out = []
    for tok, tid in sorted(encoder.tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        word = tok[:-4] if tok.endswith("</w>") else tok[1:] if tok.startswith("▁") else tok
        bpe_piece = encoder.family == "clip" and not tok.endswith("</w>")
        sp_piece = encoder.family == "t5" and not tok.startswith("▁")
        if not bpe_piece and not sp_piece and WORD.fullmatch(word):
            out.append((word, int(tid)))
    return out


def _bos_eos(encoder) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a prompt's words (read off an empty prompt); T5 puts
    none before (`TextEncoder.start` = 0)."""
    ids = list(encoder.tokenizer("")["input_ids"])
    if encoder.start == 0:
        return [], ids[:1]
    if len(ids) < 1:
        raise ValueError(f"the tokenizer of {encoder.encoder_id} adds no start token; cannot read words alone")
    return ids[:1], ids[1:2]


@torch.no_grad()
def vocabulary_codes(encoder, sae: TopKSAE, batch_size: int = 2048, progress: bool = True,
                     cache_dir: str | os.PathLike | None = None, only: Sequence[str] | None = None) -> VocabularyCodes:  # fmt: skip
    """Every whole word's block features and SAE code (see the module docstring). With `cache_dir`
    (the SAE's folder), the result is read from and written to `vocabulary_<fingerprint>.safetensors`
    there, so a notebook pays for it once per SAE (MiniLM's 21,358 words: about 15 s on 2 CPU cores).
    `only` keeps the whole words in that list (tests, quick looks); it is never cached."""
    from safetensors.torch import load_file

    from snce_lib.io import atomic_save_safetensors, atomic_write_text

    check_fits(sae.cfg, encoder.width, f"layer {sae.cfg.layer} of {encoder.encoder_id}")
    cache = Path(cache_dir) / f"vocabulary_{fingerprint(sae)}.safetensors" if cache_dir and only is None else None
    if cache is not None and cache.exists() and cache.with_suffix(".json").exists():
        t = load_file(str(cache))
        meta = json.loads(cache.with_suffix(".json").read_text())
        return VocabularyCodes(meta["words"], t["token_ids"].numpy(), t["features"], t["values"], t["indices"],
                               sae.cfg.n_latents, float(meta.get("seconds", 0.0)), cached=True)  # fmt: skip
    t0 = time.perf_counter()
    pairs = vocabulary_words(encoder)
    if only is not None:
        keep = set(only)
        pairs = [p for p in pairs if p[0] in keep]
    if not pairs:
        raise ValueError(
            f"no whole word of the vocabulary of {encoder.encoder_id} to read"
            + (f" among only={list(only)[:5]}" if only is not None else "")
        )
    bos, eos = _bos_eos(encoder)
    feats, vals, idxs = [], [], []
    for s in tqdm(range(0, len(pairs), batch_size), desc="read the vocabulary", disable=not progress):
        ids = torch.tensor([[*bos, tid, *eos] for _, tid in pairs[s : s + batch_size]])
        mask = torch.ones_like(ids)
        if encoder.family == "t5":
            # T5 attends both ways and FLUX passes no mask: every padding position shapes a word's
            # features, so the word is read padded to the pipeline's length, as in a prompt
            pad = torch.full((len(ids), encoder.max_length - ids.shape[1]), int(encoder.tokenizer.pad_token_id))
            ids, mask = torch.cat([ids, pad], 1), torch.cat([mask, torch.zeros_like(pad)], 1)
        h = encoder.run_to_block(Tokens(ids, mask), sae.cfg.layer or None)[:, len(bos)].float()
        v, i = sae.encode(h.to(sae.device))
        feats.append(h.half().cpu())
        vals.append(v.float().cpu())
        idxs.append(i.to(torch.int32).cpu())
    out = VocabularyCodes([w for w, _ in pairs], np.array([t for _, t in pairs]), torch.cat(feats), torch.cat(vals),
                          torch.cat(idxs), sae.cfg.n_latents, round(time.perf_counter() - t0, 2))  # fmt: skip
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_save_safetensors(cache, {"token_ids": torch.from_numpy(out.token_ids), "features": out.features,
                                        "values": out.values, "indices": out.indices})  # fmt: skip
        atomic_write_text(cache.with_suffix(".json"), json.dumps({"words": out.words, "seconds": out.seconds}))
    return out
