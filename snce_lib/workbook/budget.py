"""What each long step of the workbook will do, and how long it should take on a Colab T4.

No GPU has measured these figures: this project's machines have none. Each says how it was obtained:

- **GPU work** (the text encoder, SAE training, the UNet and VAE, the CLIP score, FID's Inception):
  FLOPs counted on the real-shape modules (`torch.utils.flop_counter` on the meta device: `count_flops`
  recounts them) at `T4_RATE`. That rate is what a published T4 measurement implies for SD's UNet:
  diffusers' PyTorch 2.0 benchmark (docs/source/en/optimization/torch2.0.mdx, T4, batch 4, fp16, torch
  2.0 without compile) ran SD v1.5's text-to-image (the same UNet as v1.4) at 1.79 it/s, i.e. 0.140 s per
  image-step of two UNet passes (classifier-free guidance), 1.607 TFLOP: 11.5 TFLOP/s, 17.7% of the
  T4's 65 TFLOP/s fp16 tensor-core peak. Other GPU work is taken at the same rate, an assumption.
- **CPU work** (the atlas's maps and labels, selection's statistics, the toy world, NudeNet's ONNX
  detector): the seconds the colab-rehearsal measured on a 2-core CPU (`CPU_COSTS`), taken as they are,
  on the assumption (not checked) that Colab's runtime CPU, 2 vCPUs on the free tier, is about as fast.

Model downloads and loading are not included (SD v1.4 is about 4 GB to fetch on first use: the
rehearsal's stand-ins of its modules take 4.0 GB in fp32).

`plan(profile)` lists the steps with their expected seconds; `announce(profile, step)` prints what one
step will do and its expected time before it starts; `plan_text(profile)` is the table `snce workbook`
prints first.
"""

from __future__ import annotations

from dataclasses import dataclass

from snce_lib.models.encoders import SD14
from snce_lib.workbook.profiles import Profile

T4_FP16_PEAK = 65e12
"""FLOP/s, the T4's fp16 tensor-core peak (NVIDIA's T4 datasheet)."""
UNET_STEP_T4_SECONDS = 1 / (1.79 * 4)
#: Images notebook 02 draws to show what a feature does (its strip and a random feature's, 3 a prompt, 2 prompts).
DRAWN_IMAGES = 12
"""Seconds per image-step on a T4: diffusers' published 1.79 it/s at batch 4 (fp16, torch 2.0, SDPA)."""
UNET_STEP_FLOPS = 1.607e12
"""Two passes of SD v1.x's UNet (classifier-free guidance) on one 64x64 latent, counted (`count_flops`)."""
T4_RATE = UNET_STEP_FLOPS / UNET_STEP_T4_SECONDS
"""FLOP/s a T4 sustains on this kind of work, derived from the two figures above (~11.5e12)."""

#: FLOPs per item on the real-shape modules, counted with torch.utils.flop_counter (`count_flops`).
FLOPS = {
    "encoder_to_block_10": 11.08e9,  # SD v1.4's text encoder (CLIP ViT-L/14 text), 77 tokens, blocks 0-9
    "encoder_full": 13.30e9,  # the same, all 12 blocks (the pipeline's prompt and negative prompt)
    "vae_decode_512": 2.515e12,  # AutoencoderKL decoder, one 512 px image
    "clip_b32_image": 8.818e9,  # CLIP ViT-B/32 image tower at 224 px
    "clip_b32_text": 5.960e9,  # CLIP ViT-B/32 text tower, 77 tokens
    "inception_299": 11.42e9,  # Inception-v3 (FID's) at 299 px
}
#: One SAE training step of 4,096 tokens at 768 -> 3,072: encoder and decoder matmuls, forward and
#: backward (3 x 2 x 2 x 4096 x 768 x 3072 = 116 GFLOP), plus AuxK's extra decode, ~174 GFLOP.
SAE_STEP_FLOPS = 174e9
SAE_BATCH = 4096

#: Rows of the public sets the colab profiles read (counted from the sets' files).
SET_ROWS = {"diffusiondb_nsfw": 5999, "diffusiondb_10k": 10000, "i2p": 4703, "i2p_nudity": 134, "ring_a_bell_79": 79}

#: The CPU-bound work, (fixed seconds, seconds per item, where the figures come from), measured on a 2-core
#: AMD EPYC (no AMX) on 2026-12-07 by `snce workbook --profile colab-rehearsal` (cells.json) and
#: `python benchmarks/rehearsal_scaling.py`, on SD v1.4's real module shapes; docs/colab.md gives the runs.
CPU_COSTS: dict[str, tuple[float, float, str]] = {
    # explore's work beyond the prompt codes: 44.3 s at 300 prompts, 26.1 s at 1,200 (the first call compiles
    # UMAP's numba kernels); no growth with prompts measurable in that range, so the larger value, fixed,
    # plus notebook 02's other cells (9.6 s)
    "atlas": (53.9, 0.0, "CPU part of the atlas measured at 300 and 1,200 prompts, no growth"),
    # notebook 03 in the rehearsal took 151 s on the CPU, every encoder pass included: an upper bound
    "select": (151.2, 0.0, "notebook 03's rehearsal time on the CPU, encoder passes included: an upper bound"),
    # notebook 04's toy sections: the toy SAE and its atlas (54.7 s) and the before/after grid (3.5 s) fixed;
    # the lambda table and the leakage table (78.7 s at 12 prompts a set) grow with the prompts
    "toy world": (58.2, 6.558, "the rehearsal's toy cells at 12 prompts a set, scaled linearly"),
    # tokenising, choosing rows and writing the store: collect() on the offline corpus (6,000 prompts, 42.7 s)
    # less its encoder passes (31.0 s), benchmarks/collect_speed.py
    "collect": (0.0, 0.00195, "tokenising and writing the store on the CPU, measured"),
    # NudeNet's ONNX detector on the CPU, 24 random 512 px images
    "evaluate": (0.0, 0.0239, "NudeNet on the CPU, measured per 512 px image"),
}


def _cpu(key: str, items: int) -> tuple[float, str]:
    fixed, per, how = CPU_COSTS[key]
    return fixed + per * items, how


@dataclass(frozen=True)
class Estimate:
    notebook: str
    step: str
    what: str
    items: int
    seconds: float
    how: str

    def line(self) -> str:
        return f"{self.notebook} {self.step}: {self.what}: expected {duration(self.seconds)} on a T4 ({self.how})"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def gpu_seconds(flops: float) -> float:
    return flops / T4_RATE


def training_prompt_count(p: Profile) -> int:
    n = 0
    for src in p.prompt_sources:
        rows = SET_ROWS.get(src, 6000)  # the project's corpus: 6,000 prompts
        n += min(rows, p.prompts_per_source) if p.prompts_per_source else rows
    return n


def eval_images(p: Profile) -> int:
    """Images notebook 04 makes: with and without the eraser, on three sets of at most `eval_prompts` each."""
    n = p.eval_prompts
    return 2 * (min(n, SET_ROWS["i2p_nudity"]) + min(n, SET_ROWS["ring_a_bell_79"]) + n)


def plan(p: Profile) -> list[Estimate]:
    """Every long step of notebooks 01-04 at profile `p`, with its expected time on a T4."""
    how_gpu = "GPU: FLOPs at 11.5 TFLOP/s, diffusers' measured T4 rate for SD's UNet"
    out = []
    n_train = training_prompt_count(p)
    cpu, how = _cpu("collect", n_train)
    out.append(Estimate("01", "collect", f"{n_train:,} prompts through the text encoder to {p.layer or 'the default block'}", n_train,
                        gpu_seconds(n_train * FLOPS["encoder_to_block_10"]) + cpu, f"{how_gpu}; CPU: {how}"))  # fmt: skip
    steps = -(-p.tokens // SAE_BATCH)
    shape = "768 -> 3,072 latents, " if p.model == SD14 else ""  # the FLOP count is SD v1.4's SAE
    what = f"{steps:,} steps of {SAE_BATCH:,} tokens ({p.tokens / 1e6:g}M tokens), {shape}k {p.k}"
    out.append(Estimate("01", "train", what, steps, gpu_seconds(steps * SAE_STEP_FLOPS), f"{how_gpu}, AuxK included"))
    cpu, how = _cpu("atlas", p.atlas_prompts)
    # notebook 02 also draws what one feature does: two strips of 3 images and a random feature's, 12 images
    draws = DRAWN_IMAGES * p.steps * UNET_STEP_T4_SECONDS * (p.resolution / 512) ** 2
    out.append(Estimate("02", "atlas", f"codes, map and labels of {p.atlas_prompts:,} prompts; {DRAWN_IMAGES} images of "
                        "what a feature draws", p.atlas_prompts,
                        gpu_seconds(p.atlas_prompts * FLOPS["encoder_to_block_10"]) + cpu + draws,
                        f"{how_gpu}; CPU: {how}; images: diffusers' T4 rate"))  # fmt: skip
    # notebook 03 encodes the atlas sample again, the concept pairs, 500 background prompts and the detector sets
    n03 = p.atlas_prompts + 200 + 500 + SET_ROWS["i2p_nudity"] + 50 + p.coco_negatives
    cpu, how = _cpu("select", n03)
    out.append(Estimate("03", "select", f"selection and detector scores over {n03:,} prompts", n03,
                        gpu_seconds(n03 * FLOPS["encoder_to_block_10"]) + cpu, f"{how_gpu}; CPU: {how}"))  # fmt: skip
    cpu, how = _cpu("toy world", p.toy_prompts)
    out.append(Estimate("04", "toy world", f"the toy world's tables at {p.toy_prompts} prompts a set (CPU)",
                        p.toy_prompts, cpu, f"CPU: {how}"))  # fmt: skip
    imgs = eval_images(p)
    per_img = p.steps * UNET_STEP_T4_SECONDS * (p.resolution / 512) ** 2 + gpu_seconds(
        FLOPS["vae_decode_512"] * (p.resolution / 512) ** 2 + 2 * FLOPS["encoder_full"]
    )
    out.append(Estimate("04", "generate", f"{imgs} images at {p.resolution} px, {p.steps} steps", imgs,
                        imgs * per_img, "GPU: diffusers' measured T4 seconds an image-step for the UNet, FLOPs at "
                        "the same rate for the VAE and the text encoder"))  # fmt: skip
    cpu, how = _cpu("evaluate", imgs)
    gpu = gpu_seconds(imgs * (FLOPS["clip_b32_image"] + FLOPS["clip_b32_text"] + FLOPS["inception_299"]))
    out.append(Estimate("04", "evaluate", f"NudeNet, CLIP score and FID features of {imgs} images", imgs,
                        gpu + cpu, f"{how_gpu}; CPU: {how}"))  # fmt: skip
    return out


def total_seconds(p: Profile) -> float:
    return sum(e.seconds for e in plan(p))


def plan_text(p: Profile) -> str:
    """The plan as lines, with its total: what `snce workbook` prints before a profile that runs SD."""
    lines = [f"profile {p.name}: expected time on a T4 (no GPU measured it; workbook.budget says how each figure "
             "was obtained):"]  # fmt: skip
    lines += [f"  {e.line()}" for e in plan(p)]
    lines.append(f"  notebooks 01-04: about {duration(total_seconds(p))} (model downloads and loading not included)")
    if p.encoder == "model" and p.model != SD14:
        lines.append(f"  these are SD v1.4's figures; {p.model} is another model, whose times were not estimated "
                     "(and the profile's resolution is SD v1.4's 512 px, below SDXL's and FLUX.1's native 1,024)")  # fmt: skip
    return "\n".join(lines)


def announce(p: Profile, step: str) -> Estimate:
    """Print what `step` ("collect", "train", "atlas", "select", "toy world", "generate", "evaluate") will
    do at profile `p` and its expected time on a T4; the progress bar then shows a measured estimate
    after its first batch. Returns the estimate."""
    found = {e.step: e for e in plan(p)}
    if step not in found:
        raise ValueError(f"unknown step {step!r}; steps: {', '.join(found)}")
    e = found[step]
    if p.pipeline == "model" and p.model != SD14:
        print(f"{e.notebook} {step}: {e.what}; {p.model} is not SD v1.4, whose shapes the T4 estimates are for: "
              "the progress bar shows a measured estimate after the first batch")  # fmt: skip
    elif p.pipeline == "model":
        print(e.line())
    else:  # the offline profile runs other models on this CPU: no T4 figure applies
        print(
            f"{e.notebook} {step}: runs on this machine; its progress bar shows a measured estimate after the first batch"
        )
    return e


def count_flops(name: str) -> float:
    """Count the FLOPs behind FLOPS[name] (or "unet_step": UNET_STEP_FLOPS) again: the real-shape module
    built on the meta device (no memory, no weights), one forward pass under torch.utils.flop_counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from snce_lib.models import hubcache

    meta = torch.device("meta")
    ids = torch.zeros(1, 77, dtype=torch.long, device=meta)
    with torch.device(meta):
        if name in ("encoder_to_block_10", "encoder_full"):
            from transformers import CLIPTextModel

            from snce_lib.models.encoders import Tokens
            from snce_lib.models.families import FAMILIES, wrap

            class _Tok:
                model_max_length = 77

            enc = wrap(CLIPTextModel(hubcache.sd14_text_config()), _Tok(), "meta", FAMILIES["sd1"], 0)
            toks = Tokens(ids, torch.ones_like(ids))
            run = (lambda: enc.run_to_block(toks, "encoder.layers.9")) if name == "encoder_to_block_10" else (
                lambda: enc.embed(toks))  # fmt: skip
        elif name == "unet_step":
            unet = hubcache.sd14_unet()
            x, e = torch.zeros(2, 4, 64, 64, device=meta), torch.zeros(2, 77, 768, device=meta)
            run = lambda: unet(x, torch.tensor([10, 10], device=meta), encoder_hidden_states=e)  # noqa: E731
        elif name == "vae_decode_512":
            vae = hubcache.sd14_vae()
            run = lambda: vae.decode(torch.zeros(1, 4, 64, 64, device=meta))  # noqa: E731
        elif name in ("clip_b32_image", "clip_b32_text"):
            from transformers import CLIPModel

            clip = CLIPModel(hubcache.clip_b32_config())
            run = (lambda: clip.get_image_features(pixel_values=torch.zeros(1, 3, 224, 224, device=meta))) if (
                name == "clip_b32_image") else (lambda: clip.get_text_features(input_ids=ids))  # fmt: skip
        elif name == "inception_299":
            from snce_lib.evaluation.metrics import InceptionStandIn

            net = InceptionStandIn()
            run = lambda: net(torch.zeros(1, 3, 299, 299, device=meta), True)  # noqa: E731
        else:
            raise ValueError(f"unknown module {name!r}; one of {', '.join([*FLOPS, 'unet_step'])}")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        run()
    return float(counter.get_total_flops())
