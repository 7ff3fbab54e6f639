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

Mode A or B is decided in one place (`Eraser.z_c`). The edit runs as a forward hook on the
block while the text encoder runs (`Eraser.hooked`); a pipeline gets the result as
`prompt_embeds` (`Eraser.embed`, through `snce_lib.models.pipelines.prompt_embeds`), so any
diffusers pipeline and the toy pipelines take it without being changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from snce_lib.concepts.selection import Selection
from snce_lib.models.encoders import TextEncoder
from snce_lib.sae.model import TopKSAE, fingerprint

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
            raise EraserError(
                f"lambda {self.lam} is negative: that adds the concept instead of erasing it; "
                "allow it explicitly (allow_negative=True, CLI --allow-negative-lam) if that is the intent"
            )
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
    def from_selection(cls, selection: Selection, sae: TopKSAE, **settings) -> Eraser:
        """The eraser of a saved selection (checked against `sae`); `settings`: lam, mode, move_negative, ..."""
        selection.check(sae)
        return cls(sae, list(selection.neurons), tuple_prompt=selection.tuple_prompt, **settings)

    @property
    def settings(self) -> dict:
        """Everything that decides the edit, the SAE's weight fingerprint included."""
        return {
            "neurons": [int(n) for n in self.neurons],
            "lam": float(self.lam),
            "mode": self.mode,
            "tuple_prompt": self.tuple_prompt if self.mode == "A" else "",
            "move_negative": self.move_negative,
            "sae_fingerprint": fingerprint(self.sae),
        }

    # ---- the edit -------------------------------------------------------------------
    @torch.no_grad()
    def codes(self, h: torch.Tensor) -> torch.Tensor:
        """Z[R]: the chosen neurons' TopK activations. h: [B, L, d] -> [B, L, |R|]."""
        sae = self.sae
        z = sae.encode_dense(h.to(sae.device, torch.float32))
        return z[..., list(self.neurons)]

    def tuple_codes(self, encoder: TextEncoder) -> torch.Tensor:
        """Mode A's Z_c: codes of the tuple string, per position, on clean features. [1, L, |R|]"""
        if self._tuple_codes is None or self._tuple_codes.shape[1] != encoder.max_length:
            toks = encoder.tokenize([self.tuple_prompt])
            h = encoder.run_to_block(toks, self.sae.cfg.layer or None)
            self._tuple_codes = self.codes(h)
        return self._tuple_codes

    def z_c(self, h: torch.Tensor, encoder: TextEncoder) -> torch.Tensor:
        """Z_c for the block output `h`: the one place where mode A and mode B differ. [B, L, |R|]"""
        if self.mode == "A":
            return self.tuple_codes(encoder).expand(h.shape[0], -1, -1)
        return self.codes(h)

    @torch.no_grad()
    def edit(self, h: torch.Tensor, z_r: torch.Tensor, sign: float = -1.0, start: int = 1) -> torch.Tensor:
        """h + sign * lambda * Z_c[R] W_dec[R] (zero before `start`: BOS), in h's dtype. A silent Z_c
        leaves h as it is."""
        z_r = z_r.clone()
        z_r[:, :start] = 0.0  # BOS is never edited: a firing there alone must not count as firing
        if not bool((z_r != 0).any()):
            return h  # the neuron is silent: leave the features bit-for-bit unchanged
        d = self.lam * (z_r @ self.sae.W_dec[list(self.neurons)].detach())
        return h + sign * d.to(h.device, h.dtype)

    # ---- running it -------------------------------------------------------------------
    def check(self, encoder: TextEncoder) -> None:
        if encoder.width != self.sae.cfg.d_in:
            raise EraserError(f"the SAE reads {self.sae.cfg.d_in}-wide features, the encoder is {encoder.width} wide")
        if self.sae.cfg.layer_index >= 0:
            _, idx = encoder.resolve_layer(self.sae.cfg.layer_index)
            if idx != self.sae.cfg.layer_index:
                raise EraserError("the SAE's layer does not exist in this encoder")

    @contextmanager
    def hooked(
        self,
        encoder: TextEncoder,
        sign: float = -1.0,
        z_source: torch.Tensor | None = None,
        capture: dict | None = None,
    ):
        """Edit the block's output on every forward pass of `encoder` inside the block.

        `z_source` fixes Z_c (the negative prompt is moved by its positive twin's codes);
        `capture["z"]` receives the Z_c used."""
        self.check(encoder)
        self.sae.to(encoder.device)
        if self.mode == "A":
            self.tuple_codes(encoder)  # computed before the hook exists, on clean features

        def hook(_mod, _inp, out):
            h = out[0] if isinstance(out, tuple) else out
            z = self.z_c(h, encoder) if z_source is None else z_source
            if capture is not None:
                capture["z"] = z
            new = self.edit(h, z, sign, encoder.start)
            return (new, *out[1:]) if isinstance(out, tuple) else new

        handle = encoder.block(self.sae.cfg.layer or None).register_forward_hook(hook)
        try:
            yield encoder
        finally:
            handle.remove()

    @torch.no_grad()
    def embed(
        self, encoder: TextEncoder, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`prompt_embeds` (and `negative_prompt_embeds`) with the concept erased, for `pipe(prompt_embeds=...)`.

        The negative prompt is edited only with `move_negative`: then it is pushed away from the
        concept by the positive prompt's own Z_c (mode B) or the tuple's (mode A).
        """
        captured: dict = {}
        with self.hooked(encoder, capture=captured):
            pe = encoder.embed(encoder.tokenize(list(prompts)))
        if negative_prompts is None:
            return pe, None
        if len(negative_prompts) != len(prompts):
            raise EraserError("give one negative prompt per prompt")
        toks = encoder.tokenize(list(negative_prompts))
        if not self.move_negative:
            return pe, encoder.embed(toks)
        with self.hooked(encoder, sign=+1.0, z_source=captured["z"]):
            return pe, encoder.embed(toks)


@torch.no_grad()
def embedding_cosine(
    encoder: TextEncoder, eraser: Eraser, prompts: Sequence[str], batch_size: int = 64
) -> torch.Tensor:
    """How much erasure moves what the UNet sees: per prompt, the mean over positions after
    BOS of cosine(original, edited) of the encoder's final output. [prompts]"""
    out = []
    for s in range(0, len(prompts), batch_size):
        toks = encoder.tokenize(list(prompts[s : s + batch_size]))
        a = encoder.embed(toks)
        with eraser.hooked(encoder):
            b = encoder.embed(toks)
        out.append(
            torch.nn.functional.cosine_similarity(a[:, encoder.start :].float(), b[:, encoder.start :].float(), dim=-1)
            .mean(1)
            .cpu()
        )
    return torch.cat(out)
