"""A few-step model for looking: the interactive erasure panel and the "what a feature draws" strips need
3-6 images per change, which a 50-step model makes slowly. A distilled model (SD-Turbo, SDXL-Turbo,
FLUX.1-schnell: 1-4 steps) draws them instead, but only when it reads the SAE's features: its text
encoder, up to the SAE's block, must be the SAE's own, weight for weight. Otherwise the main model draws
and the reason is said. The evaluation protocol always stays on the main model.

`SNCE_LOOK_MODEL`: a hub id or folder; `main` for the main model. Default on a GPU: SD-Turbo for SD
pipelines (it shares SD 2.1's encoder; with SD v1.4 it falls back, and says so), SDXL-Turbo for SDXL,
FLUX.1-schnell for FLUX.1-dev; on a CPU the main model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from snce_lib.models.families import family_from_index, pipeline_encoder, read_model_index
from snce_lib.models.standins import FLUX_SCHNELL, SD_TURBO

SDXL_TURBO = "stabilityai/sdxl-turbo"
#: steps and guidance of the distilled models, from their model cards
FEW_STEPS = {SD_TURBO: (1, 0.0), SDXL_TURBO: (1, 0.0), FLUX_SCHNELL: (4, 0.0)}


@dataclass
class Look:
    """The pipeline that draws for looking, its steps and guidance, and why it was chosen."""

    pipe: object
    name: str
    steps: int
    guidance: float
    reason: str
    few_step: bool


#: the default look model per main family, on a GPU
DEFAULT_LOOK = {"sd1": SD_TURBO, "sd2": SD_TURBO, "sdxl": SDXL_TURBO, "flux": FLUX_SCHNELL}


def default_spec(family: str = "sd1") -> str:
    env = os.environ.get("SNCE_LOOK_MODEL")
    if env is not None:
        return env
    return DEFAULT_LOOK.get(family, "main") if torch.cuda.is_available() else "main"


def _weights_signature(encoder, upto: int) -> list[tuple]:
    """Per tensor (name, shape, sum, sum of squares) of the embeddings and blocks 0..`upto`: what
    decides the features at block `upto`."""
    prefix = encoder._block_list()[0]
    out = []
    for name, t in encoder.model.state_dict().items():
        if name.startswith(prefix + "."):
            idx = int(name[len(prefix) + 1 :].split(".")[0])
            if idx > upto:
                continue
        elif "embed" not in name and "shared" not in name:
            continue
        t = t.detach().double()
        out.append((name, tuple(t.shape), float(t.sum()), float((t * t).sum())))
    return out


def same_features(a, b, upto: int) -> bool:
    """Whether encoders `a` and `b` compute the same features at block `upto` (same weights)."""
    return len(a.block_names) == len(b.block_names) and _weights_signature(a, upto) == _weights_signature(b, upto)


def choose(main_pipe, sae, spec: str | None = None, main_steps: int = 25, main_guidance: float = 7.5,
           main_name: str = "the main model", device=None) -> Look:  # fmt: skip
    """The look pipeline for `sae` on `main_pipe`: `spec` (default `SNCE_LOOK_MODEL`, SD-Turbo on a GPU)
    when its encoder computes the SAE's features, else the main pipeline with the reason."""
    from snce_lib.models.families import family_of

    spec = default_spec(family_of(main_pipe).name) if spec is None else spec

    def main(reason: str) -> Look:
        return Look(main_pipe, main_name, main_steps, main_guidance, reason, False)

    if spec in ("", "main", "none", "off"):
        return main("no look model set (SNCE_LOOK_MODEL=main, the default on a CPU): the main model draws")
    if spec == main_name:
        return main(f"{spec} is the main model: it draws")
    index, upto = int(sae.cfg.encoder_index), int(sae.cfg.layer_index)
    mine = pipeline_encoder(main_pipe, index)
    reads = f"`{mine.component}` ({type(mine.model).__name__}, {mine.width} wide, {len(mine.block_names)} blocks)"
    try:
        from transformers import AutoConfig

        fam = family_from_index(read_model_index(spec) or {})
        if index >= len(fam.slots):
            return main(f"the SAE reads the main model's {reads}; {spec} ({fam.pipeline_class}) has no such encoder, "
                        "so the main model draws (SNCE_LOOK_MODEL names another; `main` silences this)")  # fmt: skip
        # the config first: a different encoder is told without downloading any weights
        cfg = AutoConfig.from_pretrained(spec, subfolder=fam.slots[index].component)
        theirs = (cfg.model_type, cfg.hidden_size, getattr(cfg, "num_hidden_layers", None) or cfg.num_layers)
        ours = (mine.model.config.model_type, mine.width, len(mine.block_names))
        if theirs != ours:
            return main(f"the SAE reads the main model's {reads}; {spec}'s `{fam.slots[index].component}` is another "
                        f"encoder ({theirs[0]}, {theirs[1]} wide, {theirs[2]} blocks), so the main model draws "
                        "(SNCE_LOOK_MODEL names another; `main` silences this)")  # fmt: skip
        from snce_lib.models.pipelines import load_pipeline

        look = load_pipeline(spec, device=device)
    except (OSError, ValueError) as exc:
        return main(f"could not load {spec} ({str(exc).splitlines()[0]}): the main model draws")
    if not same_features(mine, pipeline_encoder(look, index), upto):
        del look
        return main(f"{spec}'s `{fam.slots[index].component}` has the shape of the SAE's but other weights up to "
                    f"block {upto}: its features are not the SAE's, so the main model draws")  # fmt: skip
    steps, guidance = FEW_STEPS.get(spec, (main_steps, main_guidance))
    return Look(look, spec, steps, guidance, f"{spec} shares the SAE's text encoder: it draws in {steps} step(s)",
                spec in FEW_STEPS)  # fmt: skip
