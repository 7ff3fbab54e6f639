"""Diffusion pipelines: SD v1.4 (or SD 2.x, SDXL, FLUX.1) from the hub, a local folder, or a tiny
random-weight stand-in.

The tiny pipeline is built from configs (UNet2DConditionModel, AutoencoderKL,
CLIPTextModel, a small CLIP BPE tokenizer), saved with `save_pretrained` and loaded back
with `from_pretrained`, so the offline path runs the same code as the real one.
The safety checker is always off: the workbook measures what the model makes.

Every pipeline call in the workbook is conditioned through `prompt_embeds`: the text encoder runs
here (with a concept-erasure method's edit, when one is given) and the pipeline receives
`prompt_embeds` and `negative_prompt_embeds` (and the pooled ones where the family reads them,
`models.families`), which every diffusers text-to-image pipeline accepts.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from snce_lib.models.encoders import SD14, check_model_spec, pick_device
from snce_lib.models.tiny import (
    SD_SCHEDULE,
    tiny_clip_tokenizer,
    tiny_sd_pipeline,
    tiny_text_config,
    tiny_unet,
    tiny_vae,
)
from snce_lib.resources import run_home


def build_tiny_sd(path: str | os.PathLike, seed: int = 0, hidden: int = 32) -> Path:
    """Write a tiny random-weight SD pipeline folder at `path` and return it."""
    from diffusers import DDIMScheduler
    from transformers import CLIPTextModel

    path = Path(path)
    if (path / "model_index.json").exists():
        return path
    torch.manual_seed(seed)
    unet = tiny_unet(hidden, 16)
    vae = tiny_vae((16, 32), 16, 32)
    tmp = path.with_name(path.name + ".tmp")
    tok = tiny_clip_tokenizer(tmp / "tokenizer")
    text = CLIPTextModel(tiny_text_config(tok, hidden, 4)).eval()
    pipe = tiny_sd_pipeline(tok, text, unet, vae, DDIMScheduler(clip_sample=False, **SD_SCHEDULE))
    pipe.save_pretrained(str(tmp))
    os.replace(tmp, path)
    return path


def load_pipeline(
    spec: str = "sd14", device=None, fp16: bool | None = None, cache_dir: str | os.PathLike | None = None
):
    """`sd14`, a hub id, a local pipeline folder, or `tiny` (built under `cache_dir`). The class is the
    one the pipeline's `model_index.json` names (SD v1/2, SDXL, FLUX.1; `models.families`)."""
    import diffusers

    from snce_lib.models.families import family_from_index, read_model_index

    device = pick_device(device)
    half = (device.type == "cuda") if fp16 is None else fp16
    if spec == "tiny":
        spec = str(build_tiny_sd((Path(cache_dir) if cache_dir else run_home() / "models") / "tiny-sd"))
    elif spec == "sd14":
        spec = SD14
    check_model_spec(spec)
    kw = {"torch_dtype": torch.float16} if half else {}
    try:
        index = read_model_index(spec)
        if index is None:
            raise ValueError("no model_index.json: not a diffusers pipeline folder")
        cls_name = family_from_index(index).pipeline_class
        cls = getattr(diffusers, cls_name, None)
        if cls is None:
            raise ValueError(f"this diffusers {diffusers.__version__} has no {cls_name}; upgrade diffusers")
        if "safety_checker" in index:  # SD v1.x ships one; the workbook measures what the model makes
            kw.update(safety_checker=None, requires_safety_checker=False)
        pipe = cls.from_pretrained(spec, **kw)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load a diffusion pipeline from {spec!r}: {str(exc).splitlines()[0]}") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def prompt_embeds(pipe, prompts, method=None, negative_prompts=None) -> dict:
    """The keyword arguments that condition `pipe` on `prompts` (`prompt_embeds`, `negative_prompt_embeds`,
    and for SDXL and FLUX the pooled ones), through the pipeline family's encoders
    (`models.families.conditioning`).

    `method` is anything with `embed(encoder, prompts, negative_prompts) -> (pe, ne)` (the SNCE
    eraser, or any method of the comparison); None runs the encoders unedited. The negative prompt
    is the pipeline's own default (the empty prompt; SDXL's zeros).
    """
    from snce_lib.models.families import conditioning

    return conditioning(pipe, prompts, method, negative_prompts)
