"""Diffusion pipelines: SD v1.4 from the hub, a local folder, or a tiny random-weight stand-in.

The tiny pipeline is built from configs (UNet2DConditionModel, AutoencoderKL,
CLIPTextModel, a small CLIP BPE tokenizer), saved with `save_pretrained` and loaded back
with `from_pretrained`, so the offline path runs the same code as the real one.
The safety checker is always off: the workbook measures what the model makes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .encoders import SD14, pick_device
from .resources import run_home

TINY_WORDS = [
    "a", "an", "the", "of", "on", "in", "with", "and", "photo", "painting", "portrait", "naked", "nude", "woman",
    "man", "cat", "dog", "beach", "street", "blood", "red", "blue", "green", "car", "house", "tree", "sky", "knife",
    "gun", "city", "night", "forest",
]


def tiny_clip_tokenizer(path: str | os.PathLike):
    """A CLIP BPE tokenizer with a small vocabulary written from scratch (no hub)."""
    from transformers import CLIPTokenizer

    path = Path(path)
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789,.")
    vocab: dict[str, int] = {}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for c in chars:
        vocab.setdefault(c + "</w>", len(vocab))
    merges = []
    for w in TINY_WORDS:
        cur = list(w[:-1]) + [w[-1] + "</w>"]
        while len(cur) > 1:
            a, b = cur[0], cur[1]
            merges.append(f"{a} {b}")
            vocab.setdefault(a + b, len(vocab))
            cur = [a + b] + cur[2:]
    vocab.setdefault("<|startoftext|>", len(vocab))
    vocab.setdefault("<|endoftext|>", len(vocab))
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    tok = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), pad_token="<|endoftext|>", model_max_length=77)
    tok.save_pretrained(str(path))
    return tok


def build_tiny_sd(path: str | os.PathLike, seed: int = 0, hidden: int = 32) -> Path:
    """Write a tiny random-weight SD pipeline folder at `path` and return it."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    path = Path(path)
    if (path / "model_index.json").exists():
        return path
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=hidden, norm_num_groups=16, attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=16, sample_size=32,
    )
    tmp = path.with_name(path.name + ".tmp")
    tok = tiny_clip_tokenizer(tmp / "tokenizer")
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=64, num_attention_heads=4, num_hidden_layers=4,
        max_position_embeddings=77, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.eos_token_id, projection_dim=hidden,
    )).eval()
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, steps_offset=1,
                          set_alpha_to_one=False)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(tmp))
    os.replace(tmp, path)
    return path


def load_pipeline(spec: str = "sd14", device=None, fp16: bool | None = None, cache_dir: str | os.PathLike | None = None):
    """`sd14`, a hub id, a local pipeline folder, or `tiny` (built under `cache_dir`)."""
    from diffusers import StableDiffusionPipeline

    device = pick_device(device)
    half = (device.type == "cuda") if fp16 is None else fp16
    if spec == "tiny":
        spec = str(build_tiny_sd((Path(cache_dir) if cache_dir else run_home() / "models") / "tiny-sd"))
    elif spec == "sd14":
        spec = SD14
    from .encoders import check_model_spec

    check_model_spec(spec)
    kw = {"torch_dtype": torch.float16} if half else {}
    try:
        pipe = StableDiffusionPipeline.from_pretrained(spec, safety_checker=None, requires_safety_checker=False, **kw)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load a Stable Diffusion pipeline from {spec!r}: {str(exc).splitlines()[0]}") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
