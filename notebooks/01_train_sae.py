# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,colab,accelerator
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Train the dictionary
#
# SNCE finds a harmful concept (nudity, violence) as **one neuron** of a *sparse autoencoder*
# (SAE) trained on the per-token features of one block of the text encoder. This notebook
# collects those features and trains the SAE.
#
# **Profiles.** `offline` (the default without a GPU): the packaged MiniLM-L6 encoder, the
# project's own 6,000-prompt corpus, 1.5M training tokens, a few minutes on 2 CPU cores.
# `colab` (the default on a GPU): the text encoder of `SNCE_MODEL` (default Stable Diffusion
# v1.4's CLIP), block 10 (`encoder.layers.9`), 20,701 public prompts (DiffusionDB NSFW,
# DiffusionDB 10k, I2P), 100M training tokens; `SNCE_TOKENS=400000000` for the paper's budget.
#
# **How long on a T4?** Not measured there (no T4 here); the arithmetic: one step of 4,096 tokens
# at 768 → 3,072 costs ~116 GFLOP (encoder and decoder, forward and backward), ~174 with AuxK, so
# 100M tokens (24,414 steps) is ~4.2 PFLOP. At the T4's fp16 tensor-core peak (65 TFLOP/s) and a
# realistic 25-50% of it, that is ~2-5 min of arithmetic; memory traffic and the store's reads make
# it ~10-25 min in practice (training uses mixed precision on a GPU). The cell below prints the
# throughput this run actually measured.

# %%
# Colab: install the workbook (a no-op where it is installed already), changing nothing the runtime
# ships: every installed package is pinned as a constraint, so Colab's CUDA torch, transformers and
# widgets stay as they are. SNCE_REPO: this repository's address (a fork), or a wheel's path.
import importlib
import importlib.util
import os
import subprocess
import sys

SNCE_REPO = os.environ.get("SNCE_REPO", "https://github.com/snce-workbook/snce")
USE_DRIVE = False  # True (Colab): keep the run folder on Google Drive, so a disconnected runtime resumes
PROFILE = os.environ.get("SNCE_PROFILE")  # None: `colab` on a GPU, `offline` elsewhere
if importlib.util.find_spec("snce_lib") is None:
    from importlib.metadata import distributions

    pins = {d.metadata["Name"].lower(): f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"]}
    with open("/tmp/snce-runtime.txt", "w") as fh:
        fh.write("\n".join(pins.values()))
    source = SNCE_REPO if os.path.exists(SNCE_REPO) else f"snce @ git+{SNCE_REPO}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", "/tmp/snce-runtime.txt", source], check=True)
    importlib.invalidate_caches()

# %%
from snce_lib import workbook as wb

P = wb.setup(PROFILE, use_drive=USE_DRIVE)
# Gated models need a hub login; SD v1.4 does not. Uncomment to log in:
# from huggingface_hub import notebook_login; notebook_login()

import matplotlib.pyplot as plt
import numpy as np

# %% [markdown]
# ## Why a *sparse* dictionary?
#
# A text encoder's block writes a dense vector `h` (768 numbers for CLIP, 384 for MiniLM)
# at every token. Each number mixes many ideas, so no single coordinate means "nudity".
# A sparse autoencoder rewrites `h` as a sum of a few directions chosen from a large
# dictionary (m = 4·d of them):
#
# `z = TopK_k(ReLU(W_enc (h − b_pre) + b_enc))`, `h' = W_dec z + b_pre`.
#
# *Sparse* (only k = 32 of the m latents are non-zero per token) forces each latent to
# stand for something specific, which is what lets one latent stand for a concept.
# *TopK* sets the sparsity exactly, instead of tuning an L1 penalty.
#
# ## Step 1: collect block features
# Every token position after BOS is kept; padding positions matter too (the UNet attends
# to them), so 8 of each prompt's padding run are stored, evenly spaced.

# %%
encoder = wb.ensure_encoder(P)
store = wb.ensure_store(P, encoder)
info = store.info
print(f"{info.n_prompts} prompts -> {len(store):,} rows of width {info.width} at {info.layer}; "
      f"{store.nbytes / 1e6:.1f} MB on disk (fp16, memory-mapped)")
meta = store.meta()
print("padding rows:", f"{meta['is_pad'].mean():.1%}")

# %% [markdown]
# ## Step 2: train the SAE
# Adam at lr 4e-4, batches of 4,096 token vectors, k = 32, AuxK weight 1/32 (the paper's
# values). Rerunning this cell resumes an interrupted run from its last checkpoint.

# %%
sae = wb.ensure_sae(P, encoder, build=True)  # this notebook makes it
history = __import__("json").loads((P.run_dir / "sae" / "history.json").read_text())
metrics = sae.cfg.metrics
print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
if metrics.get("seconds"):
    print(f"measured: {metrics['tokens_seen'] / metrics['seconds']:,.0f} tokens/s on this machine")

# %% [markdown]
# ## What the numbers mean
# - **FVU** (fraction of variance unexplained): `‖h − h'‖² / ‖h − mean(h)‖²`. 0 is a perfect
#   reconstruction, 1 is no better than the mean vector.
# - **L0**: latents active per token. TopK fixes it at k (here 32) once training settles.
# - **Dead fraction**: latents that have not fired for a long window. AuxK gives them
#   gradient so the dictionary does not waste capacity.

# %%
tokens = np.array([h["tokens"] for h in history]) / 1e6
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
axes[0].plot(tokens, [h["fvu"] for h in history])
axes[0].set(title="Reconstruction error (FVU)", xlabel="training tokens (millions)", ylabel="FVU (fraction)")
axes[1].plot(tokens, [h["l0"] for h in history], color="tab:green")
axes[1].set(title="Active latents per token (L0)", xlabel="training tokens (millions)", ylabel="latents")
axes[2].plot(tokens, [h["dead_fraction"] for h in history], color="tab:red")
axes[2].set(title="Dead latents", xlabel="training tokens (millions)", ylabel="share of latents")
fig.suptitle(f"TopK SAE on {info.layer} of {info.encoder_id} ({sae.cfg.n_latents} latents, k={sae.cfg.k})")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Save
# The checkpoint is a folder, `sae.safetensors` + `cfg.json`, in the run folder (`SNCE_HOME`;
# on Colab set `USE_DRIVE = True` in the first cell to keep it on Google Drive, where notebooks
# 02-04 find it after a disconnect).

# %%
print("checkpoint:", P.run_dir / "sae")
wb.record(P, "sae", {k: metrics.get(k) for k in ("fvu", "l0", "dead_fraction", "tokens_seen", "seconds")})
