"""Hub-shaped tiny stand-ins for the pipeline families beyond SD v1.4: SD 2.1-base, SD-Turbo, SDXL base
and FLUX.1-schnell, saved into a local Hugging Face cache (`hubcache`'s layout) under their real ids.

Each repository holds the real one's folders and class names (`model_index.json`, `text_encoder`,
`text_encoder_2`, `tokenizer`, `tokenizer_2`, `unet` or `transformer`, `vae`, `scheduler`), with
random weights 32 wide and the real encoders' block counts (CLIP ViT-L 12, OpenCLIP ViT-H as SD 2.x
keeps it 23, OpenCLIP bigG 32, T5 v1.1 XXL 24), so every family's default block exists. The CLIP
tokenizers are SD v1.4's own (rebuilt from CLIP's byte-pair file; SD 2.x's and SDXL's second pad with
"!", as theirs do). FLUX's T5 tokenizer is a small SentencePiece-style unigram vocabulary written
here (the real one's `spiece.model` is not on this machine): whole words of `tiny.TINY_WORDS` plus
single characters, so any prompt tokenises.

The repository layouts follow the public repositories' `model_index.json` as the diffusers classes
name them; with no hub here they were not fetched and compared file by file.

    python -m snce_lib.models.hubcache DIR --families sd2,sd-turbo,sdxl,flux
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from snce_lib.models.hubcache import _prefix_text_model, _publish, write_clip_tokenizer
from snce_lib.models.tiny import TINY_WORDS, tiny_unet, tiny_vae

SD21_BASE = "stabilityai/stable-diffusion-2-1-base"
SD_TURBO = "stabilityai/sd-turbo"
SDXL_BASE = "stabilityai/stable-diffusion-xl-base-1.0"
FLUX_SCHNELL = "black-forest-labs/FLUX.1-schnell"
#: name on the command line -> hub id
STANDINS = {"sd2": SD21_BASE, "sd-turbo": SD_TURBO, "sdxl": SDXL_BASE, "flux": FLUX_SCHNELL}
WIDTH = 32
T5_MAX_LENGTH = 512


def _clip_text(tok, layers: int, act: str, with_projection: bool = False):
    """A CLIP text tower `WIDTH` wide with `layers` blocks and the hub configs' special ids (BOS 0, EOS 2,
    pad 1: the ids the public configs hold, whatever the tokenizer's)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(
        vocab_size=len(tok), hidden_size=WIDTH, intermediate_size=64, num_attention_heads=4, num_hidden_layers=layers,
        max_position_embeddings=77, hidden_act=act, projection_dim=WIDTH, bos_token_id=0, eos_token_id=2,
        pad_token_id=1,
    )  # fmt: skip
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(cfg).eval()


def _save_text(model, folder: Path) -> None:
    model.save_pretrained(str(folder), safe_serialization=True)
    if type(model).__name__ == "CLIPTextModel":
        _prefix_text_model(folder / "model.safetensors")


def _index(cls: str, parts: dict, **extra) -> dict:
    return {"_class_name": cls, "_diffusers_version": "0.30.0", **extra, **parts}


def _finish(repo: Path, hf_home: Path, repo_id: str, index: dict) -> Path:
    (repo / "model_index.json").write_text(json.dumps(index, indent=2))
    return _publish(repo, hf_home, repo_id)


def _start(hf_home: Path, name: str, seed: int) -> Path:
    tmp = hf_home / f".{name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(seed)
    return tmp / "repo"


def build_sd2(hf_home: str | os.PathLike, repo_id: str = SD21_BASE, seed: int = 0) -> Path:
    """SD 2.1-base (PNDM, 50 steps) or SD-Turbo (Euler with trailing timesteps, 1-4 steps): one
    OpenCLIP ViT-H text tower kept to 23 blocks, a UNet with linear projections, SD's VAE."""
    from diffusers import EulerDiscreteScheduler, PNDMScheduler

    hf_home = Path(hf_home)
    repo = _start(hf_home, repo_id.split("/")[1], seed)
    tok = write_clip_tokenizer(repo / "tokenizer", "stabilityai/stable-diffusion-2-1-base", pad="!")
    _save_text(_clip_text(tok, 23, "gelu"), repo / "text_encoder")
    unet = tiny_unet(WIDTH, 8, use_linear_projection=True)
    unet.save_pretrained(str(repo / "unet"), safe_serialization=True)
    tiny_vae((16, 16, 16, 16), 8, 64).save_pretrained(str(repo / "vae"), safe_serialization=True)
    schedule = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1}
    if repo_id == SD_TURBO:
        sched, name = EulerDiscreteScheduler(timestep_spacing="trailing", **schedule), "EulerDiscreteScheduler"
    else:
        sched, name = PNDMScheduler(skip_prk_steps=True, set_alpha_to_one=False, **schedule), "PNDMScheduler"
    sched.save_pretrained(str(repo / "scheduler"))
    parts = {"scheduler": ["diffusers", name], "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"]}  # fmt: skip
    if repo_id == SD21_BASE:
        parts.update(feature_extractor=[None, None], safety_checker=[None, None])
    dest = _finish(repo, hf_home, repo_id, _index("StableDiffusionPipeline", parts, requires_safety_checker=False))
    shutil.rmtree(repo.parent, ignore_errors=True)
    return dest


def build_sdxl(hf_home: str | os.PathLike, seed: int = 0) -> Path:
    """SDXL base: CLIP ViT-L (12 blocks) and OpenCLIP bigG with projection (32 blocks), a UNet that
    reads their concatenation (64 wide) and the added time and pooled-text conditions, Euler."""
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel

    hf_home = Path(hf_home)
    repo = _start(hf_home, "sdxl", seed)
    tok = write_clip_tokenizer(repo / "tokenizer", "openai/clip-vit-large-patch14")
    tok2 = write_clip_tokenizer(repo / "tokenizer_2", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k", pad="!")
    _save_text(_clip_text(tok, 12, "quick_gelu"), repo / "text_encoder")
    _save_text(_clip_text(tok2, 32, "gelu", with_projection=True), repo / "text_encoder_2")
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, transformer_layers_per_block=(1, 2),
        cross_attention_dim=2 * WIDTH, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=WIDTH + 6 * 8, norm_num_groups=16,
    )  # fmt: skip
    unet.save_pretrained(str(repo / "unet"), safe_serialization=True)
    tiny_vae((16, 16, 16, 16), 8, 64).save_pretrained(str(repo / "vae"), safe_serialization=True)
    EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                           timestep_spacing="leading").save_pretrained(str(repo / "scheduler"))  # fmt: skip
    parts = {"scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
             "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}  # fmt: skip
    index = _index("StableDiffusionXLPipeline", parts, force_zeros_for_empty_prompt=True)
    dest = _finish(repo, hf_home, SDXL_BASE, index)
    shutil.rmtree(repo.parent, ignore_errors=True)
    return dest


def t5_tokenizer(folder: Path):
    """A T5TokenizerFast (unigram pieces, "▁" word starts, `</s>` appended, `<pad>` 0) over the tiny
    words and single characters."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    chars = "abcdefghijklmnopqrstuvwxyz0123456789,.'-!?"
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [("▁" + w, -1.0) for w in TINY_WORDS] + [(c, -5.0) for c in chars]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])  # fmt: skip
    fast = T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                           extra_ids=0, model_max_length=T5_MAX_LENGTH)  # fmt: skip
    fast.save_pretrained(str(folder))
    return fast


def build_flux(hf_home: str | os.PathLike, seed: int = 0) -> Path:
    """FLUX.1-schnell: CLIP ViT-L (pooled vector), T5 v1.1 encoder (24 blocks, gated GELU), a
    FluxTransformer2DModel with one double and one single block, a 16-channel VAE, flow-matching Euler."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    hf_home = Path(hf_home)
    repo = _start(hf_home, "flux", seed)
    tok = write_clip_tokenizer(repo / "tokenizer", "openai/clip-vit-large-patch14")
    _save_text(_clip_text(tok, 12, "quick_gelu"), repo / "text_encoder")
    tok2 = t5_tokenizer(repo / "tokenizer_2")
    t5 = T5EncoderModel(T5Config(vocab_size=len(tok2), d_model=WIDTH, d_kv=8, d_ff=64, num_layers=24, num_heads=4,
                                 feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
                                 pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)).eval()  # fmt: skip
    t5.save_pretrained(str(repo / "text_encoder_2"), safe_serialization=True)
    FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=WIDTH, pooled_projection_dim=WIDTH, guidance_embeds=False, axes_dims_rope=(4, 4, 8),
    ).save_pretrained(str(repo / "transformer"), safe_serialization=True)  # fmt: skip
    AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(16, 16, 16, 16), layers_per_block=1,
        latent_channels=16, norm_num_groups=8, sample_size=64, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.1159, scaling_factor=0.3611,
    ).save_pretrained(str(repo / "vae"), safe_serialization=True)  # fmt: skip
    FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False).save_pretrained(
        str(repo / "scheduler")
    )
    parts = {"scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
             "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "T5EncoderModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "T5TokenizerFast"],
             "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}  # fmt: skip
    dest = _finish(repo, hf_home, FLUX_SCHNELL, _index("FluxPipeline", parts))
    shutil.rmtree(repo.parent, ignore_errors=True)
    return dest


BUILDERS = {
    "sd2": lambda home: build_sd2(home, SD21_BASE),
    "sd-turbo": lambda home: build_sd2(home, SD_TURBO),
    "sdxl": build_sdxl,
    "flux": build_flux,
}


def build_standins(hf_home: str | os.PathLike, names=tuple(STANDINS)) -> dict[str, Path]:
    """Publish the named stand-ins into `hf_home`; returns name -> snapshot folder."""
    bad = [n for n in names if n not in BUILDERS]
    if bad:
        raise ValueError(f"unknown stand-in(s) {bad}; stand-ins: {', '.join(BUILDERS)}")
    return {n: BUILDERS[n](hf_home) for n in names}
