"""The workbook's profiles: one per place it runs, each fixing every size.

- `offline` (the default without a GPU): the packaged MiniLM, the project's own corpus and the toy world.
- `colab` (the default on a GPU): Stable Diffusion's text encoder and pipeline (`SNCE_MODEL`, default
  SD v1.4 from the hub), sized so that notebooks 01-04 fit a Colab session on a T4 (`workbook.budget`
  says how long each step should take there, and how that was worked out).
- `colab-paper`: the colab path at the paper's scale (400M training tokens, the full evaluation sets at
  50 steps: 826 images), one switch away: `SNCE_PROFILE=colab-paper`.
- `colab-smoke`: the colab profile's exact code path (same model id, block name and public sets) at sizes
  that run on a CPU in minutes, for CI with a hub-shaped local cache of tiny models.
- `colab-rehearsal`: the colab path at the real module sizes (random weights in a hub-shaped cache the
  runner builds on demand) with counts a CPU can do, to measure each step's memory and time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from snce_lib.models.encoders import SD14
from snce_lib.resources import run_home

NOTEBOOKS = ["00_sparse_dictionaries", "01_train_sae", "02_feature_atlas", "03_neuron_selection", "04_erasure_eval"]


class MissingStepError(RuntimeError):
    """An earlier notebook's output is not in the run folder."""


@dataclass(frozen=True)
class Profile:
    name: str
    encoder: str
    """`offline` (MiniLM) or `model` (the text encoder of `SNCE_MODEL`)."""
    layer: str | None
    prompt_sources: tuple
    """`corpus` (the project's corpus) and/or named public sets."""
    prompts_per_source: int | None
    """At most this many prompts from each source (None: all)."""
    keep_padding: str | int
    tokens: int
    dead_after_tokens: int
    atlas_prompts: int
    coco_negatives: int
    eval_prompts: int
    """Prompts per set in notebook 04's evaluation."""
    pipeline: str
    """Notebook 04's evaluation pipeline: `toy`, or `model` (SNCE_MODEL)."""
    k: int
    """TopK sparsity of the SAE (the paper's 32)."""
    steps: int
    resolution: int
    toy_prompts: int
    """Prompts per set in notebook 04's toy-world table (runs on the CPU)."""
    notes: str = ""
    precision: str = "auto"
    """SAE training precision (`TrainConfig.precision`). The offline profile pins fp32: bf16 on a
    CPU with AMX trains as well but picks other latents near ties, and the offline numbers should
    not depend on which CPU ran them."""
    hub_cache: str | None = None
    """`real`: `snce workbook` runs the notebooks against random-weight models of the real sizes, in a
    hub-shaped cache it builds on demand (`workbook.rehearsal`), never the user's own hub cache."""

    @property
    def run_dir(self) -> Path:
        return run_home() / self.name

    @property
    def model(self) -> str:
        """The diffusion model: $SNCE_MODEL (a hub id or a local folder), default SD v1.4."""
        return os.environ.get("SNCE_MODEL") or SD14

    @property
    def encoder_spec(self) -> str:
        return "offline" if self.encoder == "offline" else self.model


PROFILES = {
    "offline": Profile(
        "offline",
        "offline",
        None,
        ("corpus",),
        None,
        8,
        1_500_000,
        200_000,
        1500,
        500,
        8,
        "toy",
        32,
        25,
        16,
        12,
        notes="MiniLM-L6 (packaged), the project's 6,000-prompt corpus, an SAE of 1,536 latents on 1.5M tokens; "
        "the toy world for images. Minutes on 2 CPU cores.",
        precision="fp32",
    ),
    "colab": Profile(
        "colab",
        "model",
        None,  # the family's default block: layers.9 for SD v1.4 (models.families)
        ("diffusiondb_nsfw", "diffusiondb_10k", "i2p"),
        None,
        8,
        100_000_000,
        10_000_000,
        5000,
        1000,
        134,
        "model",
        32,
        50,
        512,
        48,
        notes="SD v1.4's CLIP text encoder, block 10 (layers.9) (or SNCE_MODEL's encoder and block: docs/choices.md), "
        "20,702 public prompts, "
        "3,072 latents on 100M tokens; notebook 04 evaluates I2P nudity (134) and Ring-A-Bell (79) whole and "
        "134 COCO captions at 50 steps (694 images). About 2 hours on a T4 (workbook.budget); the paper's scale "
        "(400M tokens, 200 COCO captions): SNCE_PROFILE=colab-paper.",
    ),
    "colab-smoke": Profile(
        "colab-smoke",
        "model",
        None,  # the family's default block: layers.9 for SD v1.4 (models.families)
        ("diffusiondb_nsfw", "diffusiondb_10k", "i2p"),
        100,
        8,
        60_000,
        20_000,
        200,
        60,
        4,
        "model",
        8,
        2,
        64,
        4,
        notes="The colab profile's code path at CPU sizes: the same model id, block and public sets, 300 prompts, "
        "60k tokens, k 8 on the tiny 32-wide encoder, 4 images a set. For CI with a hub-shaped local cache; its numbers mean nothing.",
    ),
    "colab-rehearsal": Profile(
        "colab-rehearsal",
        "model",
        None,  # the family's default block: layers.9 for SD v1.4 (models.families)
        ("diffusiondb_nsfw", "diffusiondb_10k", "i2p"),
        100,
        8,
        409_600,
        40_960,
        300,
        100,
        2,
        "model",
        32,
        2,
        512,
        12,
        notes="The colab path at the real module sizes (SD v1.4's text encoder, UNet and VAE, CLIP ViT-B/32, "
        "an Inception-v3: random weights, built on demand) with CPU counts: 300 prompts, 100 training steps of "
        "4,096 tokens at 768 -> 3,072, k 32, 2 prompts a set at 512 px and 2 steps. Measures each step's memory "
        "and time; its numbers mean nothing.",
        hub_cache="real",
    ),
}
PROFILES["colab-paper"] = replace(
    PROFILES["colab"],
    name="colab-paper",
    tokens=400_000_000,
    dead_after_tokens=10_000_000,
    eval_prompts=200,
    steps=50,
    notes="The colab path at the paper's scale: 400M training tokens, the evaluation sets whole (134 I2P nudity, "
    "79 Ring-A-Bell, 200 COCO; 826 images with and without the eraser) at 50 steps. Several hours on a T4.",
)


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else $SNCE_PROFILE, else `colab` on a GPU and `offline` elsewhere."""
    import torch

    name = name or os.environ.get("SNCE_PROFILE") or ("colab" if torch.cuda.is_available() else "offline")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; profiles: {', '.join(PROFILES)}")
    p = PROFILES[name]
    if os.environ.get("SNCE_TOKENS"):
        p = replace(p, tokens=int(os.environ["SNCE_TOKENS"]))
    return p


def build_missing(build: bool | None) -> bool:
    return build if build is not None else os.environ.get("SNCE_BUILD_MISSING", "") in ("1", "true", "yes")


def _missing(what: str, where: Path, notebook: str) -> MissingStepError:
    return MissingStepError(
        f"{what} is not in {where}: run notebook {notebook} first (it writes it there), or build it here "
        f"with build=True (or SNCE_BUILD_MISSING=1). The run folder is SNCE_HOME={run_home()}."
    )
