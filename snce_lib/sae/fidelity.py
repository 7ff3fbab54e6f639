"""What splicing the SAE into the encoder costs downstream, beside the ablations that bracket it.

The SAE stands in for the block it was trained on: its reconstruction h_hat = decode(encode(h))
replaces the block's output at every position after BOS (BOS is left as it is, as the eraser
leaves it), the encoder runs its remaining blocks on it, and its final output, what the image
model reads, is compared with the clean one. Two baselines say what the number means:
zero-ablation (h := 0, the block's output removed) and mean-ablation (h := the mean feature vector,
the block's output with everything prompt-specific removed). A faithful dictionary sits far
closer to clean than either. `Splice` has the `embed(encoder, prompts, negative_prompts)` of an
erasure method, so a pipeline (the toy world's included) can generate images from it as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from snce_lib.models.encoders import TextEncoder
from snce_lib.sae.model import TopKSAE


@dataclass
class Splice:
    """Replace the output of block `layer` after BOS by `replace(h)` ([batch, L-1, d] -> same) while
    the encoder runs."""

    name: str
    layer: str | int | None
    replace: Callable[[torch.Tensor], torch.Tensor]

    @contextmanager
    def hooked(self, encoder: TextEncoder):
        def hook(_mod, _inp, out):
            h = out[0] if isinstance(out, tuple) else out
            new = h.clone()
            s0 = encoder.start  # BOS is never edited (T5 has none)
            new[:, s0:] = self.replace(h[:, s0:]).to(h.dtype)
            return (new, *out[1:]) if isinstance(out, tuple) else new

        handle = encoder.block(self.layer).register_forward_hook(hook)
        try:
            yield encoder
        finally:
            handle.remove()

    @torch.no_grad()
    def embed(self, encoder: TextEncoder, prompts: Sequence[str],
              negative_prompts: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        """(prompt_embeds with the splice, negative_prompt_embeds left clean), as a pipeline takes them."""
        with self.hooked(encoder):
            pe = encoder.embed(encoder.tokenize(list(prompts)))
        return pe, None if negative_prompts is None else encoder.embed(encoder.tokenize(list(negative_prompts)))


def sae_splice(sae: TopKSAE, name: str = "SAE reconstruction") -> Splice:
    """The SAE's reconstruction in place of the block's output (the block the SAE was trained on)."""

    @torch.no_grad()
    def replace(h: torch.Tensor) -> torch.Tensor:
        x = h.to(sae.device, torch.float32)
        return sae.decode(*sae.encode(x)).to(h.device)

    return Splice(name, sae.cfg.layer or None, replace)


def zero_ablation(layer: str | int | None) -> Splice:
    return Splice("zero-ablation", layer, torch.zeros_like)


def mean_ablation(layer: str | int | None, mean: torch.Tensor) -> Splice:
    """Every position's output replaced by `mean` [d] (e.g. the activation store's mean row)."""
    mean = torch.as_tensor(mean).float()
    return Splice("mean-ablation", layer, lambda h: mean.to(h.device, h.dtype).expand_as(h))


@torch.no_grad()
def output_cosines(encoder: TextEncoder, prompts: Sequence[str], splices: Sequence[Splice],
                   batch_size: int = 64) -> dict[str, dict]:  # fmt: skip
    """Per splice and prompt, the cosine of the encoder's final output with and without the splice,
    averaged over the prompt's tokens after BOS (`words`: its words and end token) and over every
    position after BOS, padding included, as the image model reads them (`all`).
    {splice name: {"words": [prompts], "all": [prompts]}}"""
    out = {sp.name: {"words": [], "all": []} for sp in splices}
    for s in range(0, len(prompts), batch_size):
        toks = encoder.tokenize(list(prompts[s : s + batch_size]))
        clean = encoder.embed(toks).float()
        s0 = encoder.start
        real = toks.attention_mask[:, s0:].bool()
        for sp in splices:
            with sp.hooked(encoder):
                moved = encoder.embed(toks).float()
            cos = torch.nn.functional.cosine_similarity(clean[:, s0:], moved[:, s0:], dim=-1).cpu()
            out[sp.name]["words"].append((cos * real).sum(1) / real.sum(1).clamp_min(1))
            out[sp.name]["all"].append(cos.mean(1))
    return {name: {k: torch.cat(v).numpy() for k, v in d.items()} for name, d in out.items()}


def fidelity(encoder: TextEncoder, prompts: Sequence[str], splices: Sequence[Splice]) -> list[dict]:
    """`output_cosines` summed up per splice: the mean over prompts, and the 5th percentile (the worst prompts)."""
    rows = []
    for name, c in output_cosines(encoder, prompts, splices).items():
        rows.append({"replaced by": name, "prompts": len(prompts), "cosine, words": float(np.mean(c["words"])),
                     "5th percentile, words": float(np.percentile(c["words"], 5)),
                     "cosine, all positions": float(np.mean(c["all"]))})  # fmt: skip
    return rows


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's 95% interval for a share of `successes` in `n` (it stays inside [0, 1] at small n)."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    mid, half = (
        (p + z * z / (2 * n)) / (1 + z * z / n),
        z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n),
    )
    return float(mid - half), float(mid + half)


def image_agreement(pipe, detector, prompts: Sequence[str], splices: Sequence[Splice], steps: int = 20,
                    guidance: float = 3.0, seed: int = 11) -> list[dict]:  # fmt: skip
    """In a toy world: generate each prompt clean and with each splice (same seeds), and the share of
    images whose detected colour and shape both stay as they were clean, with its 95% interval."""
    seeds = [seed * 1000 + i for i in range(len(prompts))]
    clean = pipe.generate(list(prompts), seeds, steps, guidance)
    ref = list(zip(detector.colours(clean), detector.shapes(clean)))
    rows = []
    for sp in splices:
        imgs = pipe.generate(list(prompts), seeds, steps, guidance, method=sp)
        got = list(zip(detector.colours(imgs), detector.shapes(imgs)))
        same = sum(a == b for a, b in zip(got, ref))
        lo, hi = wilson(same, len(prompts))
        rows.append({"replaced by": sp.name, "images": len(prompts), "same colour and shape": same / len(prompts),
                     "95% interval": f"{lo:.2f}-{hi:.2f}"})  # fmt: skip
    return rows
