"""Every erasure method of the comparison behind one interface: `embed(encoder, prompts,
negative_prompts) -> (prompt_embeds, negative_prompt_embeds)`, the interface of the SNCE eraser,
so `models.pipelines.prompt_embeds(pipe, prompts, method)` conditions any pipeline on any of them
and one runner evaluates all. The methods (snce-method.md §6):

- SNCE: `concepts.erase.Eraser` itself (top-1 strict, top-1 with a tolerance, top-k; modes A, B);
  the concept's latent family is an Eraser over the family (`latent_family`);
- Interpret-then-Deactivate: an Eraser in mode B at lambda 1 over contrast-selected features (zeroing
  features in the reconstruction and adding back the error is exactly that subtraction);
- `ConceptSteerer`: the concept prompt's whole SAE code, decoded, subtracted scaled at every position;
- `BlockMap` with `leace_map` or `probe_projection`: a dense map applied to every position after BOS;
- `NegativePrompt`: the concept's words in the negative prompt, no internal edit;
- `WordRemoval`: the concept's words deleted from the prompt (an oracle: the most a text edit can do).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from snce_lib.concepts.codes import PromptCodes
from snce_lib.models.encoders import TextEncoder
from snce_lib.sae.model import TopKSAE


def _negatives(encoder: TextEncoder, prompts: Sequence[str], negative_prompts: Sequence[str] | None):
    if negative_prompts is None:
        return None
    if len(negative_prompts) != len(prompts):
        raise ValueError("give one negative prompt per prompt")
    return encoder.embed(encoder.tokenize(list(negative_prompts)))


def latent_family(concept: PromptCodes, other: PromptCodes, min_concept: float = 0.5,
                  max_other: float = 0.01) -> list[int]:  # fmt: skip
    """The concept's latent family: every latent that fires (anywhere in the prompt) on at least
    `min_concept` of the concept prompts and on at most `max_other` of the other prompts, most
    concept-specific first."""
    on_c = concept.fired_per_prompt().float().mean(0)
    on_o = other.fired_per_prompt().float().mean(0)
    keep = torch.nonzero((on_c >= min_concept) & (on_o <= max_other)).flatten()
    return [int(i) for i in keep[torch.argsort(on_c[keep] - on_o[keep], descending=True)]]


@contextmanager
def block_edit(encoder: TextEncoder, layer, fn: Callable[[torch.Tensor], torch.Tensor]):
    """Replace the block's output h by fn(h) at every position after BOS, while the encoder runs."""

    def hook(_mod, _inp, out):
        h = out[0] if isinstance(out, tuple) else out
        new = h.clone()
        s0 = encoder.start  # BOS is never edited (T5 has none)
        new[:, s0:] = fn(h[:, s0:]).to(h.dtype)
        return (new, *out[1:]) if isinstance(out, tuple) else new

    handle = encoder.block(layer).register_forward_hook(hook)
    try:
        yield encoder
    finally:
        handle.remove()


@dataclass
class BlockMap:
    """A dense map of the block's token features (LEACE, probe projection), at every position after BOS."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    layer: str | int | None = None
    encoder_index: int = 0
    """Which of the pipeline's text encoders the block belongs to (`models.families`)."""

    @torch.no_grad()
    def embed(self, encoder: TextEncoder, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None):
        with block_edit(encoder, self.layer, self.fn):
            pe = encoder.embed(encoder.tokenize(list(prompts)))
        return pe, _negatives(encoder, prompts, negative_prompts)


def leace_map(features: torch.Tensor, labels: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """LEACE (Belrose et al. 2023, the `concept-erasure` package) fitted on token features [n, d] and
    0/1 concept labels [n]: afterwards no linear classifier reads the label better than chance."""
    from concept_erasure import LeaceEraser

    eraser = LeaceEraser.fit(features.float(), labels.long())

    def apply(h: torch.Tensor) -> torch.Tensor:
        return eraser(h.float())

    return apply


def probe_direction(features: torch.Tensor, labels: torch.Tensor, steps: int = 300, l2: float = 1e-3) -> torch.Tensor:
    """A logistic probe's weight vector on features [n, d] with 0/1 labels (full-batch, standardised
    inputs, mapped back to the features' own coordinates). [d]"""
    x = features.float()
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mu) / sd
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")
    y = labels.float()

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return (w.detach() / sd).contiguous()


def probe_projection(direction: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """x - (x . u) u with u the probe's unit direction: nothing left along it at any position."""
    u = torch.nn.functional.normalize(direction.float(), dim=0)

    def apply(h: torch.Tensor) -> torch.Tensor:
        h = h.float()
        return h - (h @ u).unsqueeze(-1) * u

    return apply


@dataclass
class ConceptSteerer:
    """Concept Steerers: the concept prompt's whole SAE code (every active latent, pooled over its
    positions after BOS), decoded to one steering vector, subtracted scaled by lambda at every position;
    the reconstruction error stays. With `move_negative`, the negative prompt is pushed the other way."""

    sae: TopKSAE
    concept_prompt: str
    lam: float = 1.0
    move_negative: bool = False
    _vector: torch.Tensor | None = None

    def vector(self, encoder: TextEncoder) -> torch.Tensor:
        if self._vector is None:
            toks = encoder.tokenize([self.concept_prompt])
            h = encoder.run_to_block(toks, self.sae.cfg.layer or None)[0]
            real = toks.attention_mask[0].bool()
            s0 = encoder.start
            z = self.sae.encode_dense(h[s0:][real[s0:]].float())  # the prompt's own tokens and EOS
            self._vector = z.mean(0) @ self.sae.W_dec.detach()
        return self._vector

    @torch.no_grad()
    def embed(self, encoder: TextEncoder, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None):
        v = self.vector(encoder)
        with block_edit(encoder, self.sae.cfg.layer or None, lambda h: h - self.lam * v):
            pe = encoder.embed(encoder.tokenize(list(prompts)))
        if negative_prompts is None or not self.move_negative:
            return pe, _negatives(encoder, prompts, negative_prompts)
        with block_edit(encoder, self.sae.cfg.layer or None, lambda h: h + self.lam * v):
            return pe, _negatives(encoder, prompts, negative_prompts)


@dataclass
class NegativePrompt:
    """The concept's words as the negative prompt (classifier-free guidance steers away from them)."""

    concept_words: str
    text_level = True  # changes the text: every encoder of the pipeline reads it

    @torch.no_grad()
    def embed(self, encoder: TextEncoder, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None):
        pe = encoder.embed(encoder.tokenize(list(prompts)))
        negs = [
            self.concept_words if not n else f"{n}, {self.concept_words}"
            for n in (negative_prompts or [""] * len(prompts))
        ]
        return pe, encoder.embed(encoder.tokenize(negs))


@dataclass
class WordRemoval:
    """The oracle: every listed word (whole words, any case) deleted from the prompt before encoding."""

    words: Sequence[str]
    text_level = True  # changes the text: every encoder of the pipeline reads it

    def clean(self, prompt: str) -> str:
        pattern = r"\b(" + "|".join(re.escape(w) for w in sorted(self.words, key=len, reverse=True)) + r")\b"
        return re.sub(r"\s+", " ", re.sub(pattern, "", prompt, flags=re.IGNORECASE)).strip()

    def texts(self, prompts: Sequence[str]) -> list[str]:
        return [self.clean(p) for p in prompts]

    @torch.no_grad()
    def embed(self, encoder: TextEncoder, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None):
        pe = encoder.embed(encoder.tokenize(self.texts(prompts)))
        return pe, _negatives(encoder, prompts, negative_prompts)
