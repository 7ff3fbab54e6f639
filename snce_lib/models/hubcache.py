"""A hub-shaped local cache: tiny random-weight models saved where the Hugging Face hub client
looks for `CompVis/stable-diffusion-v1-4` and `openai/clip-vit-base-patch32`.

With `HF_HOME` pointed at the folder and `HF_HUB_OFFLINE=1`, `from_pretrained` of the real
ids runs the real hub client code (refs, snapshot resolution) and returns these tiny models,
so CI takes the colab profile's exact path without a network. The layout is the client's:
`hub/models--ORG--NAME/refs/main` holds a revision, `snapshots/REV/` the repository's files.
The class names and folder structure are those of the real repositories; only the sizes are
small. The text encoder keeps CLIP's 12 blocks, so `encoder.layers.9` exists as it does in SD.

    python -m snce_lib.models.hubcache DIR     # then: HF_HOME=DIR HF_HUB_OFFLINE=1
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import torch

from snce_lib.models.encoders import SD14
from snce_lib.models.tiny import (
    SD_SCHEDULE,
    tiny_clip_config,
    tiny_clip_tokenizer,
    tiny_sd_pipeline,
    tiny_text_config,
    tiny_unet,
    tiny_vae,
)

CLIP_B32 = "openai/clip-vit-base-patch32"
REVISION = "0" * 40  # any 40-hex revision; refs/main points at it
WIDTH = 32
SD14_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.2.2",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
LAYERS = 12


def _publish(tmp: Path, hf_home: Path, repo_id: str) -> Path:
    """Move a saved model folder into the cache as the snapshot of `repo_id` at REVISION."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    dest = repo / "snapshots" / REVISION
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    return dest


def _prefix_text_model(path: Path) -> None:
    """Store CLIPTextModel weights under `text_model.*`, as the hub checkpoints do. transformers 5
    saves them without the prefix, which transformers 4.x would silently not load."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    save_file(
        {k if k.startswith("text_model.") else f"text_model.{k}": v for k, v in tensors.items()},
        str(path),
        metadata={"format": "pt"},
    )


def build_sd14(hf_home: str | os.PathLike, seed: int = 0) -> Path:
    """Tiny StableDiffusionPipeline in SD v1.4's repository layout (vae, unet, text_encoder,
    tokenizer, scheduler, safety_checker, feature_extractor, model_index.json)."""
    from diffusers import PNDMScheduler
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor, CLIPTextModel

    hf_home = Path(hf_home)
    tmp = hf_home / f".sd14.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(seed)
    tok = tiny_clip_tokenizer(tmp / "tokenizer_src")
    unet = tiny_unet(WIDTH, 8)
    vae = tiny_vae((16, 16, 16, 16), 8, 64)  # four blocks, as in SD: the pipeline derives its 8x latent scale from them
    text = CLIPTextModel(tiny_text_config(tok, WIDTH, LAYERS)).eval()
    checker = StableDiffusionSafetyChecker(tiny_clip_config(tok, WIDTH, 32, 8))
    sched = PNDMScheduler(skip_prk_steps=True, **SD_SCHEDULE)
    pipe = tiny_sd_pipeline(tok, text, unet, vae, sched, checker, CLIPImageProcessor(crop_size=32, size=32))
    pipe.save_pretrained(str(tmp / "repo"), safe_serialization=True)
    # The repository's own index, whatever this diffusers/transformers release would name things.
    (tmp / "repo" / "model_index.json").write_text(json.dumps(SD14_INDEX, indent=2))
    _prefix_text_model(tmp / "repo" / "text_encoder" / "model.safetensors")
    # The real tokenizer folder holds the slow tokenizer's files too.
    shutil.copy(tmp / "tokenizer_src" / "vocab.json", tmp / "repo" / "tokenizer" / "vocab.json")
    shutil.copy(tmp / "tokenizer_src" / "merges.txt", tmp / "repo" / "tokenizer" / "merges.txt")
    dest = _publish(tmp / "repo", hf_home, SD14)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def build_clip_b32(hf_home: str | os.PathLike, seed: int = 0) -> Path:
    """Tiny CLIPModel with its tokenizer and image processor, in CLIP ViT-B/32's repository layout."""
    from transformers import CLIPImageProcessor, CLIPModel

    hf_home = Path(hf_home)
    tmp = hf_home / f".clip.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(seed)
    tok = tiny_clip_tokenizer(tmp / "repo")
    model = CLIPModel(tiny_clip_config(tok, WIDTH, 224, 32))
    model.save_pretrained(str(tmp / "repo"), safe_serialization=True)
    CLIPImageProcessor(crop_size=224, size=224).save_pretrained(str(tmp / "repo"))
    dest = _publish(tmp / "repo", hf_home, CLIP_B32)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def build_hub_cache(hf_home: str | os.PathLike) -> Path:
    """Both models; returns HF_HOME. Seconds on a CPU."""
    hf_home = Path(hf_home)
    build_sd14(hf_home)
    build_clip_b32(hf_home)
    return hf_home


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m snce_lib.models.hubcache HF_HOME_DIR")
    print(build_hub_cache(sys.argv[1]))
