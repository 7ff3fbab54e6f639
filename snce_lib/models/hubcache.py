"""A hub-shaped local cache: random-weight models saved where the Hugging Face hub client looks for
`CompVis/stable-diffusion-v1-4` and `openai/clip-vit-base-patch32`, with SD v1.4's real tokenizer.

With `HF_HOME` pointed at the folder and `HF_HUB_OFFLINE=1`, `from_pretrained` of the real
ids runs the real hub client code (refs, snapshot resolution) and returns these models, so CI
takes the colab profile's exact path without a network. The layout is the client's:
`hub/models--ORG--NAME/refs/main` holds a revision, `snapshots/REV/` the repository's files.
The class names and folder structure are those of the real repositories. Two sizes:

- `tiny` (colab-smoke): 32 wide, seconds to build; the text encoder keeps CLIP's 12 blocks, so
  `encoder.layers.9` exists as it does in SD.
- `real` (colab-rehearsal): the public configs' shapes, random weights: CLIP ViT-L/14's text
  tower, SD v1.x's UNet and VAE, CLIP ViT-B/32 (the CLIP scorer); about 5 GB on disk. Only the
  safety checker stays tiny: the workbook never loads it.

Both carry SD v1.4's own tokenizer, rebuilt exactly from CLIP's byte-pair file (shipped in the
PyPI package open_clip_torch, MIT; `pip install --no-deps open_clip_torch`): `a photo of a cat`
gives the ids SD v1.4's tokenizer gives, long prompts are cut at 77 tokens where SD cuts them.

    python -m snce_lib.models.hubcache DIR [--size real]     # then: HF_HOME=DIR HF_HUB_OFFLINE=1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import torch

from snce_lib.models.encoders import SD14
from snce_lib.models.tiny import (
    SD_SCHEDULE,
    tiny_clip_config,
    tiny_text_config,
    tiny_unet,
    tiny_vae,
)
from snce_lib.models.toy.clip import bytes_to_unicode  # CLIP's byte table, one home

# ---- SD v1.4's tokenizer, rebuilt from the byte-pair file open_clip_torch ships ------------------
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2  # CLIP keeps the first 48,894 merges: 256 bytes x 2 + merges + 2 specials = 49,408
VOCAB_SIZE = 49408
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
INSTALL_HINT = "pip install --no-deps open_clip_torch"


class TokenizerSourceError(RuntimeError):
    """CLIP's byte-pair file is not on this machine."""


def clip_bpe_path() -> Path:
    """The CLIP byte-pair file inside the installed open_clip_torch (MIT), found without importing
    open_clip: its `__init__` imports torchvision, which this project does not need."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / BPE_FILE
        if path.exists():
            return path
    raise TokenizerSourceError(
        f"SD v1.4's tokenizer is rebuilt from CLIP's byte-pair file {BPE_FILE}, which ships in the package "
        f"open_clip_torch; install it without its dependencies (they would pull torchvision): {INSTALL_HINT}"
    )


def clip_vocab(bpe_path: str | os.PathLike | None = None) -> tuple[dict[str, int], list[str]]:
    """(vocab, merges) as CLIP's own tokenizer builds them: the 256 byte symbols, the same with
    `</w>`, the first 48,894 merges joined, then `<|startoftext|>` and `<|endoftext|>` (49,408 ids)."""
    import gzip

    lines = gzip.open(bpe_path or clip_bpe_path()).read().decode("utf-8").split("\n")
    merges = lines[1 : N_MERGES + 1]  # line 0 is the file's version header
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + [BOS, EOS]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(merges) != N_MERGES or len(vocab) != VOCAB_SIZE:
        raise TokenizerSourceError(
            f"{bpe_path or clip_bpe_path()} gave {len(merges)} merges and {len(vocab)} tokens, not {N_MERGES} and "
            f"{VOCAB_SIZE}: not CLIP's byte-pair file; reinstall it ({INSTALL_HINT})"
        )
    return vocab, merges


def _special(content: str) -> dict:
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def write_clip_tokenizer(
    folder: str | os.PathLike, name_or_path: str = "openai/clip-vit-large-patch14", pad: str = EOS
):
    """SD v1.4's `tokenizer/` folder (vocab.json, merges.txt, special_tokens_map.json,
    tokenizer_config.json, as the hub repository holds them); returns the CLIPTokenizer read back from it.
    CLIP ViT-B/32 and ViT-L/14 share this vocabulary; OpenCLIP's towers (SD 2.x, SDXL's second) use it
    too and pad with "!" (`pad`)."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    specials = {"bos_token": _special(BOS), "eos_token": _special(EOS), "pad_token": pad, "unk_token": _special(EOS)}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    config = {
        "add_prefix_space": False, "do_lower_case": True, "errors": "replace", "model_max_length": 77,
        "name_or_path": name_or_path, "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        **{k: ({"__type": "AddedToken", **v} if isinstance(v, dict) else v) for k, v in specials.items()},
    }  # fmt: skip
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return CLIPTokenizer.from_pretrained(str(folder))


CLIP_B32 = "openai/clip-vit-base-patch32"
REVISION = "0" * 40  # any 40-hex revision; refs/main points at it
WIDTH = 32
SIZES = ("tiny", "real")
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


# ---- the public configs' shapes ----------------------------------------------------------------
def sd14_text_config():
    """SD v1.4's text encoder: CLIP ViT-L/14's text tower (768 wide, 12 blocks, 12 heads, MLP 3,072,
    quick-GELU), with the special ids its config.json holds."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=VOCAB_SIZE, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768, bos_token_id=0, eos_token_id=2,
        pad_token_id=1,
    )  # fmt: skip


def sd14_unet():
    """SD v1.x's UNet2DConditionModel: blocks 320-640-1280-1280, two layers each, cross-attention 768."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
    )  # fmt: skip


def sd14_vae():
    """SD v1.x's AutoencoderKL: blocks 128-256-512-512, 4 latent channels, 512 px."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
        latent_channels=4, norm_num_groups=32, sample_size=512,
    )  # fmt: skip


def clip_b32_config():
    """CLIP ViT-B/32: text 512 wide, 12 blocks, 8 heads; vision 768 wide, 12 blocks, patch 32 at 224 px."""
    from transformers import CLIPConfig, CLIPTextConfig, CLIPVisionConfig

    text = CLIPTextConfig(vocab_size=VOCAB_SIZE, hidden_size=512, intermediate_size=2048, num_attention_heads=8,
                          num_hidden_layers=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=512,
                          bos_token_id=0, eos_token_id=2, pad_token_id=1)  # fmt: skip
    vision = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                              image_size=224, patch_size=32, hidden_act="quick_gelu", projection_dim=512)  # fmt: skip
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=512)


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; sizes: {', '.join(SIZES)}")


def build_sd14(hf_home: str | os.PathLike, seed: int = 0, size: str = "tiny") -> Path:
    """A random-weight StableDiffusionPipeline in SD v1.4's repository layout (vae, unet,
    text_encoder, tokenizer, scheduler, safety_checker, feature_extractor, model_index.json), one
    component at a time, so a real-size build holds one module in memory at once."""
    from diffusers import PNDMScheduler
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor, CLIPTextModel

    _check_size(size)
    real = size == "real"
    hf_home = Path(hf_home)
    tmp = hf_home / f".sd14.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    repo = tmp / "repo"
    torch.manual_seed(seed)
    tok = write_clip_tokenizer(repo / "tokenizer")
    text = CLIPTextModel(sd14_text_config() if real else tiny_text_config(tok, WIDTH, LAYERS)).eval()
    text.save_pretrained(str(repo / "text_encoder"), safe_serialization=True)
    del text
    _prefix_text_model(repo / "text_encoder" / "model.safetensors")
    # four VAE blocks, as in SD: the pipeline derives its 8x latent scale from them
    parts = {"unet": lambda: sd14_unet() if real else tiny_unet(WIDTH, 8),
             "vae": lambda: sd14_vae() if real else tiny_vae((16, 16, 16, 16), 8, 64)}  # fmt: skip
    for name, make in parts.items():
        module = make()
        module.save_pretrained(str(repo / name), safe_serialization=True)
        del module
    PNDMScheduler(skip_prk_steps=True, **SD_SCHEDULE).save_pretrained(str(repo / "scheduler"))
    # never loaded by the workbook (it passes safety_checker=None): tiny at both sizes
    checker = StableDiffusionSafetyChecker(tiny_clip_config(tok, WIDTH, 32, 8))
    checker.save_pretrained(str(repo / "safety_checker"), safe_serialization=True)
    px = 224 if real else 32
    CLIPImageProcessor(crop_size=px, size=px).save_pretrained(str(repo / "feature_extractor"))
    # the repository's own index, whatever this diffusers/transformers release would name things
    (repo / "model_index.json").write_text(json.dumps(SD14_INDEX, indent=2))
    dest = _publish(repo, hf_home, SD14)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def build_clip_b32(hf_home: str | os.PathLike, seed: int = 0, size: str = "tiny") -> Path:
    """A random-weight CLIPModel with its tokenizer and image processor, in CLIP ViT-B/32's repository layout."""
    from transformers import CLIPImageProcessor, CLIPModel

    _check_size(size)
    hf_home = Path(hf_home)
    tmp = hf_home / f".clip.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(seed)
    tok = write_clip_tokenizer(tmp / "repo", name_or_path=CLIP_B32)
    model = CLIPModel(clip_b32_config() if size == "real" else tiny_clip_config(tok, WIDTH, 224, 32))
    model.save_pretrained(str(tmp / "repo"), safe_serialization=True)
    CLIPImageProcessor(crop_size=224, size=224).save_pretrained(str(tmp / "repo"))
    dest = _publish(tmp / "repo", hf_home, CLIP_B32)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def build_hub_cache(hf_home: str | os.PathLike, size: str = "tiny") -> Path:
    """Both models; returns HF_HOME. Seconds on a CPU at `tiny`, a few minutes and about 5 GB at `real`."""
    _check_size(size)
    hf_home = Path(hf_home)
    build_sd14(hf_home, size=size)
    build_clip_b32(hf_home, size=size)
    return hf_home


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m snce_lib.models.hubcache", description=__doc__.splitlines()[0])
    ap.add_argument("hf_home", help="the folder to use as HF_HOME")
    ap.add_argument("--size", choices=SIZES, default="tiny")
    ap.add_argument("--families", default="", help="also these tiny stand-ins, comma-separated: sd2,sd-turbo,sdxl,flux")
    args = ap.parse_args(argv)
    try:
        print(build_hub_cache(args.hf_home, args.size))
        if args.families:
            from snce_lib.models.standins import build_standins

            for name, path in build_standins(args.hf_home, [n for n in args.families.split(",") if n]).items():
                print(f"{name}: {path}")
    except TokenizerSourceError as exc:
        ap.exit(2, f"hubcache: error: {exc}\n")


if __name__ == "__main__":
    main()
