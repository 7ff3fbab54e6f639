"""Latents against raw coordinates: how much of what each unit does one short label explains.

The claim the workbook rests on is that an SAE latent reads as one thing where a coordinate of the
block's output does not. Here it is measured on the content-word positions of a prompt sample
(whole words, pieces joined; function words, the end token and padding set aside:
`concepts.positions`), with prompts split in two halves so that no label is scored where it was made:

- a unit's *activity*: a latent's code (zero where it is silent); a coordinate's distance from its
  median on one side, the side whose 20 strongest positions hold fewer distinct words on the
  label half (a coordinate has no zero, so it gets its better end);
- its *label*: the 3 commonest whole words among its 20 strongest positions on the label half
  (even prompts), and the entropy of the words there (0 bits: one word twenty times);
- its *label share*, on the other half (odd prompts): the share of its summed activity that falls
  on positions whose word is in the label. A unit that stands for its label scores near 1; one that
  does many things near its label's *chance* share, the share of positions holding a label word
  (what a unit active everywhere alike would score).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from snce_lib.concepts.codes import PromptCodes
from snce_lib.concepts.positions import CONTENT, Words, encoder_words
from snce_lib.models.encoders import TextEncoder, Tokens
from snce_lib.rng import numpy_rng
from snce_lib.sae.batches import held_out_split
from snce_lib.sae.model import TopKSAE

#: A unit's strongest positions: where its label comes from.
TOP = 20
#: Words in a label.
LABEL_WORDS = 3


def held_out_prompts(store, sae: TopKSAE) -> list[str]:
    """The prompts of `store` whose rows the SAE's training held out (`train_sae` with the store's
    prompt ids as groups): prompts it never trained on, from the same corpus."""
    tc = sae.metrics.get("train_config", {})
    if sae.metrics.get("eval_split") != "prompts" or "seed" not in tc or "eval_rows" not in tc:
        raise ValueError("this SAE's metrics do not say which whole prompts its training held out "
                         "(retrain it with a store's prompt ids as groups)")  # fmt: skip
    ids = store.meta()["prompt_id"]
    _, held = held_out_split(len(ids), tc["seed"], tc["eval_rows"], ids)
    prompts = store.prompts()
    return [prompts[i] for i in np.unique(ids[held])]


def trimmed(tokens: Tokens) -> Tokens:
    """The batch cut after its longest prompt's last real token. The positions cut are padding, and no
    real position reads them: a masked encoder ignores them, a causal one never looks ahead."""
    n = int(tokens.attention_mask.sum(1).max())
    return Tokens(tokens.input_ids[:, :n], tokens.attention_mask[:, :n])


@dataclass
class Units:
    """Activations of every unit at the content-word positions of a prompt sample."""

    latents: torch.Tensor
    """[positions, n_latents] the SAE's codes (dense)."""
    coordinates: torch.Tensor
    """[positions, d] the block's output."""
    words: np.ndarray
    """[positions] index into `vocabulary` of each position's whole word."""
    prompt: np.ndarray
    """[positions] index of each position's prompt."""
    vocabulary: list[str]


@torch.no_grad()
def content_units(encoder: TextEncoder, sae: TopKSAE, prompts: Sequence[str], batch_size: int = 64) -> Units:
    """Run `prompts` to the SAE's block; keep the content-word positions after BOS. Prompts run in
    batches of similar length (each batch `trimmed`), and `Units.prompt` indexes `prompts` as given."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    prompts = [prompts[i] for i in order]
    parts: dict[str, list] = {k: [] for k in ("h", "vals", "idx", "real", "ids")}
    width = 0
    for s in range(0, len(prompts), batch_size):
        toks = trimmed(encoder.tokenize(prompts[s : s + batch_size]))
        s0 = encoder.start  # after BOS (T5 has none)
        h = encoder.run_to_block(toks, sae.cfg.layer or None)[:, s0:].float().cpu()
        v, i = sae.encode(h.to(sae.device))
        for k, t in zip(parts, (h, v.cpu(), i.cpu().to(torch.int32), toks.attention_mask[:, s0:].bool(),
                                toks.input_ids[:, s0:])):  # fmt: skip
            parts[k].append(t)
        width = max(width, h.shape[1])

    def cat(ts, fill=0):  # batches trimmed to different lengths: pad them back to one width
        return torch.cat([torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, width - t.shape[1]), value=fill)
                          for t in ts])  # fmt: skip

    real = cat(parts["real"], False)
    codes = PromptCodes(list(prompts), cat(parts["vals"]), cat(parts["idx"]), real, ~real, cat(parts["ids"]),
                        sae.cfg.n_latents)  # fmt: skip
    words: Words = encoder_words(encoder, codes)
    keep = torch.from_numpy(words.kind == CONTENT) & real
    v, i = codes.values[keep], codes.indices[keep].long()
    dense = torch.zeros(len(v), sae.cfg.n_latents).scatter(1, i, v)
    prompt = np.broadcast_to(np.array(order)[:, None], keep.shape)[keep.numpy()]
    return Units(dense, cat(parts["h"])[keep], words.word[keep.numpy()], prompt.copy(), words.vocabulary)


def entropy_bits(word_ids: np.ndarray) -> float:
    """Entropy (bits) of the distribution of words among some positions."""
    _, counts = np.unique(word_ids, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: one word reads 0, not -0


def _top(activity: np.ndarray, top: int) -> np.ndarray:
    return np.argpartition(-activity, top - 1)[:top] if len(activity) > top else np.arange(len(activity))


def _read(activity: np.ndarray, words: np.ndarray, label_half: np.ndarray, top: int) -> dict:
    a, w = activity[label_half], words[label_half]
    strongest = w[_top(a, top)]
    label = [int(x) for x, _ in Counter(strongest.tolist()).most_common(LABEL_WORDS)]
    a2, in_label = activity[~label_half], np.isin(words[~label_half], label)
    return {"label": label, "entropy": entropy_bits(strongest),
            "label_share": float(a2[in_label].sum() / a2.sum()) if a2.sum() > 0 else float("nan"),
            "chance": float(in_label.mean())}  # fmt: skip


def chance_entropy(units: Units, top: int = TOP, draws: int = 200, seed: int = 0) -> float:
    """Median entropy of the words at `top` content-word positions drawn at random: what a unit whose
    strongest positions say nothing about words would read."""
    rng = numpy_rng(seed, "readability-chance")
    return float(np.median([entropy_bits(rng.choice(units.words, top, replace=False)) for _ in range(draws)]))


def read_units(units: Units, top: int = TOP) -> list[dict]:
    """Every latent that fires at `top` or more label-half positions, and every coordinate, read as the
    module's docstring says: [{kind, unit, label (words), entropy, label_share, chance}]."""
    label_half = units.prompt % 2 == 0
    rows = []
    lat = units.latents.numpy()
    for j in np.flatnonzero((lat[label_half] > 0).sum(0) >= top):
        r = _read(lat[:, j], units.words, label_half, top)
        rows.append({"kind": "latent", "unit": int(j), **r})
    h = units.coordinates.numpy()
    med = np.median(h, axis=0)
    for j in range(h.shape[1]):
        ends = [np.maximum(s * (h[:, j] - med[j]), 0.0) for s in (1.0, -1.0)]
        best = min(ends, key=lambda a: entropy_bits(units.words[label_half][_top(a[label_half], top)]))
        rows.append({"kind": "coordinate", "unit": j, **_read(best, units.words, label_half, top)})
    for r in rows:
        r["label"] = ", ".join(units.vocabulary[w] for w in r["label"])
    return rows
