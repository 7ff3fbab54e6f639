"""What a feature draws: for any SAE latent, a strip of images with fixed seeds on neutral prompts,
the original beside the feature ablated where it fires and the feature boosted.

- **ablated**: SNCE's own edit, mode B at λ 1 (`concepts.erase.Eraser`): the latent's contribution is
  removed where it fires, and a prompt where it is silent comes out unchanged;
- **boosted**: α times its (unit) decoder direction added to the block's output at every position
  after BOS (`FeatureBoost`), so the UNet reads the feature whether or not the prompt says it.

Any pipeline that `models.pipelines.prompt_embeds` conditions works: the toy worlds offline (the
MiniLM world reads the offline SAE's block directly, since it conditions on the same frozen MiniLM),
Stable Diffusion on a GPU. The figure's title says what was done, and images NudeNet flags stay
blurred (`evaluation.display`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from snce_lib.concepts.erase import Eraser
from snce_lib.concepts.methods import BlockMap


def one_image(pipe, prompt: str, seed: int, steps: int, guidance: float, resolution: int, method=None) -> np.ndarray:
    """uint8 [H, W, 3]: one image of `prompt` under `seed` from any pipeline, conditioned through `method`."""
    import torch

    from snce_lib.io import to_uint8
    from snce_lib.models.pipelines import prompt_embeds

    g = torch.Generator(device="cpu").manual_seed(seed)
    img = pipe(
        num_inference_steps=steps,
        guidance_scale=guidance,
        generator=[g],
        height=resolution,
        width=resolution,
        output_type="np",
        **prompt_embeds(pipe, [prompt], method),
    ).images[0]
    return to_uint8(img)


def feature_boost(sae, feature: int, alpha: float) -> BlockMap:
    """h(t) + alpha W_dec[feature] at every position after BOS of the SAE's block (a method object with
    the eraser's `embed`)."""
    direction = sae.W_dec[int(feature)].detach().float().clone()

    def add(h: torch.Tensor) -> torch.Tensor:
        return h + alpha * direction.to(h.device, h.dtype)

    return BlockMap(f"boost #{int(feature)} x {alpha:g}", add, sae.cfg.layer or None, sae.cfg.encoder_index)


#: A boost's default strength: this many times the largest activation the feature reaches on the
#: prompts it is drawn on (or `typical`), so a strong firing's worth of the feature is added.
BOOST = 2.0


@dataclass
class Strip:
    feature: int
    prompts: list[str]
    seeds: list[int]
    alpha: float
    images: dict
    """"original", "ablated", "boosted" -> one uint8 image a prompt."""
    fired: list[bool]
    """Whether the feature fires anywhere after BOS in each prompt (where ablation can change anything)."""

    def changed(self, which: str) -> list[float]:
        """Mean absolute pixel change of `which` against the original, per prompt (0-255)."""
        return [float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in zip(self.images["original"],
                                                                                    self.images[which])]  # fmt: skip


def feature_strip(pipe, encoder, sae, feature: int, prompts: Sequence[str], seeds: Sequence[int] | None = None,
                  alpha: float | None = None, typical: float | None = None, steps: int = 20, guidance: float = 3.0,
                  resolution: int | None = None) -> Strip:  # fmt: skip
    """The three images of each prompt (same seed in each column): see the module docstring. `alpha`
    defaults to BOOST x `typical` (else x the feature's largest activation on `prompts`, else 1)."""
    from snce_lib.concepts.codes import prompt_codes

    prompts = list(prompts)
    seeds = list(seeds) if seeds is not None else list(range(len(prompts)))
    if len(seeds) != len(prompts):
        raise ValueError(f"one seed a prompt: {len(prompts)} prompts, {len(seeds)} seeds")
    if not 0 <= int(feature) < sae.cfg.n_latents:
        raise ValueError(f"feature {feature} is not one of this SAE's {sae.cfg.n_latents} latents")
    codes = prompt_codes(encoder, sae, prompts)
    peak = codes.max_activation([feature])[0]
    if alpha is None:
        ref = typical if typical is not None else float(peak.max())
        alpha = BOOST * (ref if ref > 0 else 1.0)
    resolution = resolution or getattr(getattr(pipe, "cfg", None), "size", None) or 512
    methods = {"original": None, "ablated": Eraser(sae, [int(feature)], 1.0, "B"),
               "boosted": feature_boost(sae, feature, alpha)}  # fmt: skip
    images = {name: [one_image(pipe, p, s, steps, guidance, resolution, m) for p, s in zip(prompts, seeds)]
              for name, m in methods.items()}  # fmt: skip
    return Strip(int(feature), prompts, seeds, float(alpha), images, [bool(x > 0) for x in peak])


def strip_figure(strip: Strip, label: str = "", show_unsafe: bool | None = None):
    """The strip as one figure: a row a prompt (original | ablated | boosted), titled with what was done."""
    from snce_lib.evaluation.display import image_grid

    imgs, titles = [], []
    for i, p in enumerate(strip.prompts):
        note = "" if strip.fired[i] else " (silent here: unchanged)"
        for name, what in (("original", p), ("ablated", f"ablated{note}"), ("boosted", f"boosted +{strip.alpha:.2g}")):
            imgs.append(strip.images[name][i])
            titles.append(what)
    name = f"#{strip.feature}" + (f" ({label})" if label else "")
    title = (f"What feature {name} draws: original | ablated where it fires (mode B, λ 1) | boosted "
             f"(+{strip.alpha:.2g} × its decoder direction after BOS); seeds {strip.seeds}")  # fmt: skip
    return image_grid(imgs, titles, ncols=3, title=title, show_unsafe=show_unsafe, size=1.9)


def strip_html(strip: Strip, label: str = "", show_unsafe: bool | None = None) -> str:
    """`strip_figure` as one inline PNG, for a feature card's "what it draws" slot (flagged images
    stay blurred: the figure is drawn blurred before it is encoded)."""
    import base64
    import io

    import matplotlib.pyplot as plt

    fig = strip_figure(strip, label, show_unsafe)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return (f"<b>What it draws</b> (original | ablated | boosted, seeds {strip.seeds}):<br>"
            f"<img style='max-width:100%' src='data:image/png;base64,{data}'>")  # fmt: skip
