"""The encoder's whole vocabulary, one token at a time: which tokens light each feature on their own.

The atlas's sample holds the words its prompts happen to use. A feature that stands for snow may
fire hardest on "frozen" or "icicles", words the sample lacks; a cat feature on "kitten". So every
whole-word token of the encoder's vocabulary is run alone, as a prompt of one word (BOS, the token,
the end token: the same first positions a real prompt gives it), to the SAE's block, and its code
at the token's position is kept. Each feature's `n` strongest tokens are its row.

Exact and cheap: padding is left off because it cannot change the token's position (CLIP's
attention is causal; BERT's masks padding out), so each prompt is three tokens long and the pass is
one batched run over the vocabulary (MiniLM: about 23,000 whole-word tokens). It is computed once
per SAE and cached beside it (`vocab_top.safetensors` + `vocab_top.json`, which records a
fingerprint of the SAE and encoder and how long the pass took); a cache of another SAE is recomputed.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from snce_lib.io import atomic_save_safetensors, atomic_write_json, read_json
from snce_lib.models.encoders import TextEncoder, Tokens
from snce_lib.sae.model import TopKSAE, check_fits

CACHE = "vocab_top"
KIND = "snce-vocabulary-top"


@dataclass
class VocabTop:
    tokens: np.ndarray
    """[n_latents, n] token ids, strongest first; -1 where fewer tokens light the feature."""
    values: np.ndarray
    """[n_latents, n] the feature's activation on each token alone (0 where none)."""
    n_tokens: int
    """How many vocabulary tokens were run."""
    seconds: float
    """How long the pass took when it was computed (a loaded cache keeps the first figure)."""
    cached: bool = False
    """True when read from the cache beside the SAE."""

    def of(self, feature: int) -> list[tuple[int, float]]:
        """[(token id, activation)] of the tokens that light `feature` alone, strongest first."""
        keep = self.tokens[feature] >= 0
        return [(int(t), float(v)) for t, v in zip(self.tokens[feature][keep], self.values[feature][keep])]


def whole_word_ids(encoder: TextEncoder) -> list[int]:
    """The vocabulary's whole-word tokens: no special tokens, no "[unused]" slots, no word pieces that
    continue a word (WordPiece's "##ing") or stop short of one (CLIP's BPE marks a word's end "</w>")."""
    tok = encoder.tokenizer
    ids = list(range(len(tok)))
    strings = tok.convert_ids_to_tokens(ids)
    special = {int(t) for t in getattr(tok, "all_special_ids", ()) or ()}
    bpe = any(str(s).endswith("</w>") for s in strings)
    out = []
    for i, s in zip(ids, strings):
        s = str(s)
        if i in special or (len(s) > 2 and s.startswith("[") and s.endswith("]")):
            continue
        if (bpe and not s.endswith("</w>")) or (not bpe and s.startswith("##")):
            continue
        out.append(i)
    return out


def _frame(encoder: TextEncoder) -> tuple[list[int], list[int]]:
    """The ids a one-word prompt has before and after its word (BOS; the end token), from an empty prompt."""
    ids = list(encoder.tokenizer("")["input_ids"])
    if not ids:
        raise ValueError(f"the tokenizer of {encoder.encoder_id} gives an empty prompt no tokens (no BOS)")
    return ids[:1], ids[1:]


@torch.no_grad()
def vocabulary_top(encoder: TextEncoder, sae: TopKSAE, n: int = 10, batch_size: int = 1024,
                   ids: list[int] | None = None, progress: bool = True) -> VocabTop:  # fmt: skip
    """Run each token of `ids` (default `whole_word_ids`) alone to the SAE's block and keep, per
    feature, the `n` tokens it is strongest on."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    check_fits(sae.cfg, encoder.width, f"layer {sae.cfg.layer} of {encoder.encoder_id}")
    t0 = time.perf_counter()
    ids = whole_word_ids(encoder) if ids is None else list(ids)
    if not ids:
        raise ValueError("no vocabulary tokens to run")
    head, tail = _frame(encoder)
    layer = sae.cfg.layer or None
    feats, toks, vals = [], [], []
    for s in tqdm(range(0, len(ids), batch_size), desc="vocabulary, one token at a time", disable=not progress):
        chunk = torch.tensor(ids[s : s + batch_size]).view(-1, 1)
        rows = torch.cat([torch.tensor(head).expand(len(chunk), -1), chunk,
                          torch.tensor(tail, dtype=torch.long).view(1, -1).expand(len(chunk), -1)], 1)  # fmt: skip
        h = encoder.run_to_block(Tokens(rows, torch.ones_like(rows)), layer)[:, len(head)]
        v, i = sae.encode(h.to(sae.device).float())
        on = v > 0
        feats.append(i[on].long().cpu())
        toks.append(chunk.expand_as(i)[on.cpu()].cpu())
        vals.append(v[on].float().cpu())
    f, t, v = torch.cat(feats), torch.cat(toks), torch.cat(vals)
    order = torch.sort(v, descending=True, stable=True).indices  # feature, then strongest first: exact
    order = order[torch.sort(f[order], stable=True).indices]
    f, t, v = f[order].numpy(), t[order].numpy(), v[order].numpy()
    starts = np.searchsorted(f, np.arange(sae.cfg.n_latents + 1))
    rank = np.arange(len(f)) - starts[f]
    keep = rank < n
    tokens = np.full((sae.cfg.n_latents, n), -1, dtype=np.int64)
    values = np.zeros((sae.cfg.n_latents, n), dtype=np.float32)
    tokens[f[keep], rank[keep]] = t[keep]
    values[f[keep], rank[keep]] = v[keep]
    return VocabTop(tokens, values, len(ids), round(time.perf_counter() - t0, 2))


def fingerprint(encoder: TextEncoder, sae: TopKSAE) -> str:
    """What the cache belongs to: the SAE's weights, its block, the encoder's name and vocabulary size."""
    h = hashlib.sha256()
    for name, tensor in sorted(sae.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(f"{encoder.encoder_id}|{sae.cfg.layer}|{len(encoder.tokenizer)}".encode())
    return h.hexdigest()


def load_or_compute(encoder: TextEncoder, sae: TopKSAE, folder: str | os.PathLike | None, n: int = 10,
                    progress: bool = True) -> VocabTop:  # fmt: skip
    """`vocabulary_top`, read from `folder` (the SAE's) when a cache of this SAE with at least `n`
    tokens a feature is there; otherwise computed and, with a folder, written there."""
    key = fingerprint(encoder, sae)
    if folder is not None:
        folder = Path(folder)
        meta_path, data_path = folder / f"{CACHE}.json", folder / f"{CACHE}.safetensors"
        if meta_path.exists() and data_path.exists():
            meta = read_json(meta_path, "vocabulary cache")
            if meta.get("kind") == KIND and meta.get("fingerprint") == key and int(meta.get("n", 0)) >= n:
                from safetensors.torch import load_file

                data = load_file(str(data_path))
                return VocabTop(data["tokens"].numpy()[:, :n], data["values"].numpy()[:, :n], int(meta["n_tokens"]),
                                float(meta["seconds"]), cached=True)  # fmt: skip
    top = vocabulary_top(encoder, sae, n=n, progress=progress)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_save_safetensors(data_path, {"tokens": torch.from_numpy(top.tokens),
                                            "values": torch.from_numpy(top.values)})  # fmt: skip
        atomic_write_json(meta_path, {"kind": KIND, "fingerprint": key, "n": n, "n_tokens": top.n_tokens,
                                      "seconds": top.seconds, "encoder": encoder.encoder_id,
                                      "layer": sae.cfg.layer})  # fmt: skip
    return top
