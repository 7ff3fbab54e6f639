"""Tiny random-weight components in Stable Diffusion's and CLIP's shapes: a small CLIP BPE tokenizer
written from scratch, and UNet, VAE, CLIP text and vision configs a few thousand parameters wide.
The tiny pipeline (`pipelines.build_tiny_sd`) and the hub-shaped cache (`hubcache`) are built from
them, so both run the real loading code offline."""

from __future__ import annotations

import json
import os
from pathlib import Path

TINY_WORDS = [
    "a", "an", "the", "of", "on", "in", "with", "and", "photo", "painting", "portrait", "naked", "nude", "woman",
    "man", "cat", "dog", "beach", "street", "blood", "red", "blue", "green", "car", "house", "tree", "sky", "knife",
    "gun", "city", "night", "forest",
]  # fmt: skip


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
    tok = CLIPTokenizer(
        str(path / "vocab.json"), str(path / "merges.txt"), pad_token="<|endoftext|>", model_max_length=77
    )
    tok.save_pretrained(str(path))
    return tok


def tiny_unet(width: int, sample_size: int, **extra):
    """A two-level UNet2DConditionModel that cross-attends to `width`-wide text features (`extra`: more
    config, e.g. SD 2.x's linear projections)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=sample_size, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=width, norm_num_groups=16, attention_head_dim=8, **extra,
    )  # fmt: skip


def tiny_vae(channels: tuple[int, ...], groups: int, sample_size: int):
    """An AutoencoderKL with one block per entry of `channels` (SD has four: its 8x latent scale)."""
    from diffusers import AutoencoderKL

    n = len(channels)
    return AutoencoderKL(
        block_out_channels=channels, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n, latent_channels=4, norm_num_groups=groups, sample_size=sample_size,
    )  # fmt: skip


def tiny_text_config(tok, width: int, layers: int):
    """A CLIPTextConfig for `tok` (end-token padding, as SD's tokenizer pads)."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tok), hidden_size=width, intermediate_size=64, num_attention_heads=4,
        num_hidden_layers=layers, max_position_embeddings=77, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id, projection_dim=width,
    )  # fmt: skip


def tiny_clip_config(tok, width: int, image_size: int, patch_size: int):
    """A CLIPConfig (text as `tiny_text_config` with 12 blocks, a two-block vision tower)."""
    from transformers import CLIPConfig, CLIPVisionConfig

    vision = CLIPVisionConfig(
        hidden_size=width, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
        image_size=image_size, patch_size=patch_size, projection_dim=width,
    )  # fmt: skip
    text = tiny_text_config(tok, width, 12)
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=width)


#: Stable Diffusion v1's noise schedule, as its scheduler configs hold it.
SD_SCHEDULE = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1,
               "set_alpha_to_one": False}  # fmt: skip


def tiny_sd_pipeline(tok, text, unet, vae, scheduler, safety_checker=None, feature_extractor=None):
    """A StableDiffusionPipeline from tiny parts; with a safety checker it requires one, as SD v1.4 does."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=scheduler, safety_checker=safety_checker,
        feature_extractor=feature_extractor, requires_safety_checker=safety_checker is not None,
    )  # fmt: skip
