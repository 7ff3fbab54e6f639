"""A concept as a family of latents, found from a handful of examples and scored as one detector.

A latent usually tracks a word; a concept is said in many words ("rain", "drizzle", "downpour"), so
it lives across many latents. Four examples and four counterexamples name only a few of its words.
A dense probe fitted on them generalises further: it knows the concept's other words, and the
encoder's vocabulary is there to be scored (`concepts.vocabulary`). So:

1. fit a linear probe on the examples' mean-pooled block features (`fit_concept_probe`): a direction
   w in the space the SAE reads;
2. score every vocabulary word by w and keep the `n_words` best (the concept's words, found);
3. give each latent the weight v_i = W_dec[i] . w (how much of the probe's direction it writes), and
   take from each of those words, and from each example, the `per_word` latents that carry most of its
   projection on w (activation x v_i > 0);
4. drop latents that fire more on the counterexamples than on the examples;
5. score a prompt by sum_i v_i max_t a_i(t) over the family (positions after BOS).

The family is then a sparse, readable stand-in for the probe: its members are named latents, and a
prompt's score says which of them fired. `FAMILY_RECIPE` holds the knobs; they were chosen on the
project's own concept pairs (`benchmarks/discovery_recipe.py`: examples from one mention group, scored
on the other groups), never on the generalisation set that `evaluate_generalisation` reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from snce_lib.concepts.codes import PromptCodes, prompt_codes
from snce_lib.concepts.vocabulary import VocabularyCodes

#: The recipe `find_family` uses by default, chosen on the concept pairs by benchmarks/discovery_recipe.py
#: (32 draws: four examples from one mention group, scored on the other groups): of 36 recipes, then
#: 40 / 80 / 160 words at the best of the rest, 80 words with one latent each, max pooling and probe
#: weights had the best mean AUROC on that run (docs/findings.md gives its numbers).
FAMILY_RECIPE = {"n_words": 80, "per_word": 1, "pooling": "max", "weighting": "probe"}


@torch.no_grad()
def pooled_block(encoder, prompts: Sequence[str], layer=None, batch_size: int = 64) -> np.ndarray:
    """Each prompt's block output averaged over its real positions after BOS (words and end token). [N, d]"""
    out = []
    for s in range(0, len(prompts), batch_size):
        toks = encoder.tokenize(list(prompts[s : s + batch_size]))
        s0 = encoder.start  # after BOS (T5 has none)
        h = encoder.run_to_block(toks, layer)[:, s0:].float().cpu()
        m = toks.attention_mask[:, s0:].unsqueeze(-1).float()
        out.append(((h * m).sum(1) / m.sum(1).clamp_min(1.0)).numpy())
    return np.concatenate(out).astype(np.float64)


@dataclass
class ConceptProbe:
    """A linear probe in the block's own space: score(h) = h . w + b."""

    w: np.ndarray
    b: float

    def score(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features, dtype=np.float64) @ self.w + self.b


def fit_concept_probe(encoder, examples: Sequence[str], counterexamples: Sequence[str], layer=None,
                      c: float = 1.0) -> ConceptProbe:  # fmt: skip
    """Logistic regression on standardised pooled block features (examples 1, counterexamples 0),
    folded back into the raw space so it scores any block vector, a single word's included."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if not examples or not counterexamples:
        raise ValueError("a concept probe needs at least one example and one counterexample")
    x = np.concatenate([pooled_block(encoder, examples, layer), pooled_block(encoder, counterexamples, layer)])
    y = np.r_[np.ones(len(examples)), np.zeros(len(counterexamples))]
    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x), y)
    w = lr.coef_[0] / scaler.scale_
    return ConceptProbe(w, float(lr.intercept_[0] - scaler.mean_ @ w))


@dataclass
class Family:
    """Latents that together stand for a concept, with their weights, and the words that led to them."""

    latents: list[int]
    weights: list[float]
    words: list[str] = field(default_factory=list)
    """The vocabulary words the probe scored highest (the concept's words, as found)."""
    pooling: str = "max"

    def scores(self, codes: PromptCodes) -> np.ndarray:
        """Per prompt: sum over the family of weight x the latent's activation pooled over positions after
        BOS ("max": its largest; "mean": its mean). [prompts]"""
        if not self.latents:
            return np.zeros(len(codes.prompts))
        mask = codes.mask(True)
        out = np.zeros(len(codes.prompts))
        for f, wt in zip(self.latents, self.weights):
            a = codes.activation([f]).masked_fill(~mask, 0.0)
            pooled = a.max(dim=1).values if self.pooling == "max" else a.sum(1) / mask.sum(1).clamp_min(1)
            out += wt * pooled.clamp_min(0).numpy()
        return out


def _carriers(vals: torch.Tensor, idx: torch.Tensor, v: np.ndarray, per: int) -> dict[int, float]:
    """Per position row: its `per` latents with the largest activation x v_i > 0. {latent: summed share}"""
    share = vals.double().numpy() * v[idx.long().numpy()]
    got: dict[int, float] = {}
    for row_s, row_i in zip(share, idx.long().numpy()):
        for j in np.argsort(-row_s)[:per]:
            if row_s[j] > 0:
                got[int(row_i[j])] = got.get(int(row_i[j]), 0.0) + float(row_s[j])
    return got


def find_family(encoder, sae, examples: Sequence[str], counterexamples: Sequence[str], vocab: VocabularyCodes,
                n_words: int = FAMILY_RECIPE["n_words"], per_word: int = FAMILY_RECIPE["per_word"],
                pooling: str = FAMILY_RECIPE["pooling"], weighting: str = FAMILY_RECIPE["weighting"],
                ex_codes: PromptCodes | None = None, cx_codes: PromptCodes | None = None,
                probe: ConceptProbe | None = None) -> Family:  # fmt: skip
    """The concept's family (module docstring). `ex_codes`/`cx_codes`/`probe` may be given when already
    made. `weighting`: "probe" (v_i) or "uniform" (1 for every member)."""
    if pooling not in ("max", "mean") or weighting not in ("probe", "uniform"):
        raise ValueError("pooling is 'max' or 'mean'; weighting is 'probe' or 'uniform'")
    layer = sae.cfg.layer or None
    probe = probe or fit_concept_probe(encoder, examples, counterexamples, layer)
    v = sae.W_dec.detach().float().cpu().double().numpy() @ probe.w  # [n_latents]
    word_scores = probe.score(vocab.features.float().numpy())
    top = np.argsort(-word_scores, kind="stable")[:n_words]
    weight = _carriers(vocab.values[top], vocab.indices[top], v, per_word)
    ex_codes = ex_codes or prompt_codes(encoder, sae, list(examples))
    cx_codes = cx_codes or prompt_codes(encoder, sae, list(counterexamples))
    real = ex_codes.real  # the examples' own words and end token
    for k, s in _carriers(ex_codes.values[real], ex_codes.indices[real], v, per_word).items():
        weight[k] = weight.get(k, 0.0) + s
    # a latent that fires as much on the counterexamples is context ("a", "photo"), not the concept
    members = [f for f in sorted(weight, key=lambda k: -weight[k])
               if ex_codes.max_activation([f])[0].mean() > cx_codes.max_activation([f])[0].mean()]  # fmt: skip
    wts = [float(v[f]) if weighting == "probe" else 1.0 for f in members]
    return Family(members, wts, [vocab.words[i] for i in top], pooling)


def coverage(codes: PromptCodes, words, latents: Sequence[int]) -> list[dict]:
    """Per latent: in how many of the prompts it fires (anywhere after BOS), and on which whole words
    (`positions.Words` of the same codes), most frequent first. What a user reads before trusting a
    latent for a concept: "fires in 4 of 4 examples, on rain, storm, snow, fog" is a concept;
    "fires in 1 of 4, on rainy" is a word."""
    mask = codes.mask(True)
    out = []
    for f in latents:
        a = codes.activation([f]).masked_fill(~mask, 0.0)
        on = a > 0
        seen: dict[str, int] = {}
        for p, j in torch.nonzero(on).tolist():
            w = words.word_of(p, j)
            seen[w] = seen.get(w, 0) + 1
        out.append({"latent": int(f), "prompts": int(on.any(1).sum()), "of": len(codes.prompts),
                    "words": [w for w, _ in sorted(seen.items(), key=lambda kv: -kv[1])]})  # fmt: skip
    return out


def concept_scores(encoder, sae, prompts: Sequence[str], top: int, family: Family,
                   probe: ConceptProbe | None = None) -> list[dict]:  # fmt: skip
    """ "Test it": for each typed prompt, the top-1 latent's largest activation after BOS, the family's
    score, and (given) the dense probe's. Plain data for a table or a widget."""
    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        return []
    codes = prompt_codes(encoder, sae, prompts)
    rows = [{"prompt": p, "top-1 latent": float(t), "family": float(f)}
            for p, t, f in zip(prompts, codes.max_activation([top])[0], family.scores(codes))]  # fmt: skip
    if probe is not None:
        for r, s in zip(rows, probe.score(pooled_block(encoder, prompts, sae.cfg.layer or None))):
            r["dense probe"] = float(s)
    return rows
