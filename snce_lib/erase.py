"""The eraser: subtract the chosen neurons' decoder directions from one block's output.

    h_m(t) = h(t) - lambda * Z_c[R](t) W_dec[R]          (SNCE eqs. 8-9)

applied to the ORIGINAL block output at every position t after BOS, so the SAE's
reconstruction error is kept; the edited features run through the remaining blocks.

Two readings of Z_c (method doc §4):
- mode "A" ("tuple", paper-literal): Z_c is the SAE code of the concept's word tuple,
  per position, computed once; the same vector is subtracted from every prompt.
- mode "B" ("prompt", default): Z_c is the code of the prompt being edited. At
  lambda = 1 this removes exactly that neuron's contribution, and a prompt where the
  neuron is silent comes out bit-for-bit unchanged. Default because it leaves benign
  prompts alone by construction, which is what "the rest of the picture should not
  change" asks for.

The eraser attaches as a forward hook on a bare `TextEncoder`, or to a diffusers
pipeline as a context manager; `edit_prompt_embeds` is the same edit as a pure function.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .encoders import TextEncoder, from_pipeline
from .sae import TopKSAE
from .selection import Selection

MODES = {"A": "A", "tuple": "A", "B": "B", "prompt": "B"}


class EraserError(ValueError):
    """An eraser that cannot be built or attached."""


@dataclass
class Eraser:
    sae: TopKSAE
    neurons: list[int]
    lam: float = 1.0
    mode: str = "B"
    tuple_prompt: str = ""
    move_negative: bool = False
    """Also push the negative (unconditional) prompt away from the concept: h + lambda Z_c W_dec."""
    allow_negative: bool = False
    """A negative lambda adds the concept instead of removing it; refused unless asked for."""
    _tuple_codes: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.mode not in MODES:
            raise EraserError(f"mode must be A/tuple or B/prompt, got {self.mode!r}")
        self.mode = MODES[self.mode]
        if isinstance(self.lam, bool) or not isinstance(self.lam, (int, float)) or not math.isfinite(self.lam):
            raise EraserError(f"lambda must be a finite number, got {self.lam!r}")
        if self.lam < 0 and not self.allow_negative:
            raise EraserError(f"lambda {self.lam} is negative: that adds the concept instead of erasing it; "
                              "allow it explicitly (allow_negative=True, CLI --allow-negative-lam) if that is the intent")
        if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in self.neurons):
            raise EraserError(f"neuron ids must be whole numbers, got {list(self.neurons)!r}")
        if not self.neurons:
            raise EraserError("the eraser needs at least one neuron")
        bad = [n for n in self.neurons if not 0 <= int(n) < self.sae.cfg.n_latents]
        if bad:
            raise EraserError(f"neurons {bad} are outside the SAE's {self.sae.cfg.n_latents} latents")
        if self.mode == "A" and not self.tuple_prompt:
            raise EraserError("mode A needs the concept's word tuple (tuple_prompt)")

    @classmethod
    def from_selection(cls, selection: Selection, sae: TopKSAE, lam: float = 1.0, mode: str = "B",
                       move_negative: bool = False, allow_negative: bool = False) -> "Eraser":
        selection.check(sae)
        return cls(sae, list(selection.neurons), lam, mode, ", ".join(selection.tuple_words), move_negative,
                   allow_negative)

    @property
    def settings(self) -> dict:
        """Everything that decides the edit, the SAE's weight fingerprint included."""
        from .sae import fingerprint

        return {"neurons": [int(n) for n in self.neurons], "lam": float(self.lam), "mode": self.mode,
                "tuple_prompt": self.tuple_prompt if self.mode == "A" else "", "move_negative": self.move_negative,
                "sae_fingerprint": fingerprint(self.sae)}

    # ---- the edit -------------------------------------------------------------------
    @torch.no_grad()
    def codes(self, h: torch.Tensor) -> torch.Tensor:
        """Z[R]: the chosen neurons' TopK activations. h: [B, L, d] -> [B, L, |R|]."""
        sae = self.sae
        z = sae.encode_dense(h.to(sae.device, torch.float32))
        return z[..., list(self.neurons)]

    def tuple_codes(self, encoder: TextEncoder) -> torch.Tensor:
        """Mode A's Z_c: codes of the tuple string, per position. [1, L, |R|]"""
        if self._tuple_codes is None or self._tuple_codes.shape[1] != encoder.max_length:
            toks = encoder.tokenize([self.tuple_prompt])
            h = encoder.run_to_block(toks, self.sae.cfg.layer or None)
            self._tuple_codes = self.codes(h)
        return self._tuple_codes

    @torch.no_grad()
    def delta(self, z_r: torch.Tensor) -> torch.Tensor:
        """lambda * Z_c[R] W_dec[R], zero at BOS. z_r: [B, L, |R|] -> [B, L, d]."""
        d = self.lam * (z_r @ self.sae.W_dec[list(self.neurons)].detach())
        d[:, 0] = 0.0
        return d

    def edit(self, h: torch.Tensor, encoder: TextEncoder | None = None, sign: float = -1.0,
             z_source: torch.Tensor | None = None) -> torch.Tensor:
        """Edited block output. h: [B, L, d] in any dtype -> same shape and dtype.

        `z_source` overrides Z_c (the negative prompt is moved by its positive twin's codes).
        """
        if z_source is not None:
            z_r = z_source
        elif self.mode == "A":
            if encoder is None:
                raise EraserError("mode A needs the encoder to compute the tuple's codes")
            z_r = self.tuple_codes(encoder).expand(h.shape[0], -1, -1)
        else:
            z_r = self.codes(h)
        if not bool((z_r != 0).any()):
            return h  # the neuron is silent: leave the features bit-for-bit unchanged
        return h + sign * self.delta(z_r).to(h.device, h.dtype)

    # ---- attaching --------------------------------------------------------------------
    def _check(self, encoder: TextEncoder) -> None:
        if encoder.width != self.sae.cfg.d_in:
            raise EraserError(f"the SAE reads {self.sae.cfg.d_in}-wide features, the encoder is {encoder.width} wide")
        if self.sae.cfg.layer_index >= 0:
            _, idx = encoder.resolve_layer(self.sae.cfg.layer_index)
            if idx != self.sae.cfg.layer_index:
                raise EraserError("the SAE's layer does not exist in this encoder")

    @contextmanager
    def attached(self, target):
        """Edit every forward pass of `target` (a TextEncoder or a diffusers pipeline) inside the block.

        On a pipeline, the prompt is edited and, with `move_negative`, the negative prompt is
        pushed the other way; without it, the negative prompt is left as it is.
        """
        if isinstance(target, TextEncoder):
            with self._hooked(target):
                yield target
            return
        encoder = from_pipeline(target)
        self._check(encoder)
        original = target.encode_prompt
        eraser = self

        def encode_prompt(prompt, device, num_images_per_prompt, do_classifier_free_guidance,
                          negative_prompt=None, prompt_embeds=None, negative_prompt_embeds=None, **kw):
            if kw.get("clip_skip") is not None:
                raise EraserError("the eraser edits the final output; clip_skip is not supported with it")
            if prompt_embeds is None:
                prompts = [prompt] if isinstance(prompt, str) else list(prompt)
                negs = None
                if do_classifier_free_guidance and negative_prompt_embeds is None:
                    negs = [""] * len(prompts) if negative_prompt is None else (
                        [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else list(negative_prompt))
                prompt_embeds, neg = edit_prompt_embeds(encoder, eraser, prompts, negs)
                if neg is not None:
                    negative_prompt_embeds = neg
            return original(prompt, device, num_images_per_prompt, do_classifier_free_guidance,
                            negative_prompt=negative_prompt, prompt_embeds=prompt_embeds,
                            negative_prompt_embeds=negative_prompt_embeds, **kw)

        target.encode_prompt = encode_prompt
        try:
            yield target
        finally:
            del target.encode_prompt  # the class method shows through again

    @contextmanager
    def _hooked(self, encoder: TextEncoder, sign: float = -1.0, z_source: torch.Tensor | None = None,
                capture: dict | None = None):
        self._check(encoder)
        self.sae.to(encoder.device)
        eraser = self

        def hook(_mod, _inp, out):
            h = out[0] if isinstance(out, tuple) else out
            z = z_source
            if z is None:
                z = eraser.codes(h) if eraser.mode == "B" else eraser.tuple_codes(encoder).expand(h.shape[0], -1, -1)
            if capture is not None:
                capture["z"] = z
            new = eraser.edit(h, encoder, sign, z_source=z)
            return (new, *out[1:]) if isinstance(out, tuple) else new

        if self.mode == "A":
            self.tuple_codes(encoder)  # computed before the hook exists, on clean features
        handle = encoder.block(self.sae.cfg.layer or None).register_forward_hook(hook)
        try:
            yield encoder
        finally:
            handle.remove()


@torch.no_grad()
def edit_prompt_embeds(encoder: TextEncoder, eraser: Eraser, prompts: Sequence[str],
                       negative_prompts: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`prompt_embeds` (and `negative_prompt_embeds`) with the concept erased, for `pipe(prompt_embeds=...)`.

    The negative prompt is edited only with `eraser.move_negative`: then it is pushed away from
    the concept by the positive prompt's own Z_c (mode B) or the tuple's (mode A).
    """
    captured: dict = {}
    with eraser._hooked(encoder, capture=captured):
        pe = encoder.embed(encoder.tokenize(list(prompts)))
    ne = None
    if negative_prompts is not None:
        if len(negative_prompts) != len(prompts):
            raise EraserError("give one negative prompt per prompt")
        toks = encoder.tokenize(list(negative_prompts))
        if eraser.move_negative:
            with eraser._hooked(encoder, sign=+1.0, z_source=captured["z"]):
                ne = encoder.embed(toks)
        else:
            ne = encoder.embed(toks)
    return pe, ne


@torch.no_grad()
def embedding_cosine(encoder: TextEncoder, eraser: Eraser, prompts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
    """How much erasure moves what the UNet sees: per prompt, the mean over positions after
    BOS of cosine(original, edited) of the encoder's final output. [prompts]"""
    out = []
    for s in range(0, len(prompts), batch_size):
        toks = encoder.tokenize(list(prompts[s : s + batch_size]))
        a = encoder.embed(toks)
        with eraser._hooked(encoder):
            b = encoder.embed(toks)
        out.append(torch.nn.functional.cosine_similarity(a[:, 1:].float(), b[:, 1:].float(), dim=-1).mean(1).cpu())
    return torch.cat(out)
