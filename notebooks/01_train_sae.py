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
#       jupytext_version: 1.19.7
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
# **What you will learn**
# - why a *sparse* dictionary can give single neurons a meaning when the encoder's own
#   coordinates do not;
# - how a TopK SAE encodes and decodes, and how AuxK keeps its latents alive;
# - how to read a training run: FVU, L0 and dead latents.
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
# it ~10-25 min in practice (training uses mixed precision on a GPU). The training cell prints the
# throughput this run actually measured.

# %%
# Colab: install the release these notebooks were written for (or the wheel or git+ address SNCE_REPO names),
# pinning every package the runtime ships so that its CUDA torch stays. Says so when another snce_lib is importable.
import importlib.metadata, importlib.util, os, subprocess, sys  # noqa: E401, I001

SNCE_VERSION = "0.2.0"
SNCE_REPO = os.environ.get("SNCE_REPO", f"git+https://github.com/snce-workbook/snce@v{SNCE_VERSION}")
if (found := importlib.util.find_spec("snce_lib")) is None:
    subprocess.run(f"{sys.executable} -m pip list --format=freeze > /tmp/snce-runtime.txt && {sys.executable} -m pip install -q -c /tmp/snce-runtime.txt '{SNCE_REPO if os.path.exists(SNCE_REPO) else 'snce @ ' + SNCE_REPO}'", shell=True, check=True)  # fmt: skip
elif (have := next((d.version for d in importlib.metadata.distributions() if d.metadata["Name"] == "snce"), None)) != SNCE_VERSION:  # fmt: skip
    print(f"NOTE: these notebooks were written for snce {SNCE_VERSION}, but the snce_lib already importable is {have or 'not an installed release'} "
          f"({os.path.dirname(found.origin)}); `pip uninstall -y snce`, restart the runtime and run this cell again to use {SNCE_VERSION}.")  # fmt: skip

# %%
# Notebook 01 makes the SAE that notebooks 02-04 read. wb.setup(use_drive=True) keeps the run folder on Google Drive.
import json

import matplotlib.pyplot as plt
import numpy as np

from snce_lib import workbook as wb
from snce_lib.sae.formats import save_pretrained

P = wb.setup()
# Gated models need a hub login; SD v1.4 does not. Uncomment to log in:
# from huggingface_hub import notebook_login; notebook_login()

# %% [markdown]
# ## Why a *sparse* dictionary?
#
# A text encoder's block writes a dense vector $h \in \mathbb{R}^d$ ($d$ = 768 for CLIP, 384
# for MiniLM) at every token. Each coordinate mixes many ideas, so no single one means
# "nudity". A sparse autoencoder rewrites $h$ as a sum of a few directions chosen from a large
# dictionary of $m = 4d$ of them:
#
# $$z = \mathrm{TopK}_k\big(\mathrm{ReLU}(W_{enc}(h - b_{pre}) + b_{enc})\big), \qquad
#   \hat h = W_{dec}^\top z + b_{pre} = b_{pre} + \sum_{i:\, z_i > 0} z_i\, W_{dec}[i].$$
#
# *Sparse* (only $k = 32$ of the $m$ latents are non-zero per token) forces each latent to
# stand for something specific, which is what lets one latent stand for a concept.
# *TopK* sets the sparsity exactly, instead of tuning an L1 penalty. The decoder rows
# $W_{dec}[i]$ are kept at unit norm, so $z_i$ is the latent's strength.
#
# ## Step 1: collect block features
# Every token position after BOS is kept; padding positions matter too (the UNet attends
# to them), so 8 of each prompt's padding run are stored, evenly spaced.

# %%
encoder = wb.ensure_encoder(P)
store = wb.ensure_store(P, encoder)
info = store.info
print(
    f"{info.n_prompts} prompts -> {len(store):,} rows of width {info.width} at {info.layer}; "
    f"{store.nbytes / 1e6:.1f} MB on disk (fp16, memory-mapped)"
)
print("padding rows:", f"{store.meta()['is_pad'].mean():.1%}")

# %% [markdown]
# ## Step 2: train the SAE
# The loss is the reconstruction error plus AuxK, which gives gradient to *dead* latents (those
# that have not fired for a window of tokens): the $k_{aux}$ dead latents with the largest
# *pre-activations* $a = W_{enc}(h - b_{pre}) + b_{enc}$ (their post-TopK codes are zero, so
# those cannot be ranked) try to reconstruct what the live ones missed, $e = h - \hat h$,
#
# $$\mathcal{L} = \mathrm{FVU}(h, \hat h) + \alpha\, \frac{\lVert e - \hat e \rVert^2}{\lVert e - \bar e \rVert^2},
#   \qquad \hat e = W_{dec}^\top\, \mathrm{ReLU}\big(\mathrm{TopK}_{k_{aux}}(a^{dead})\big), \qquad \alpha = 1/32 .$$
#
# Adam at lr $4\cdot10^{-4}$, batches of 4,096 token vectors, $k = 32$ (the paper's values); the
# next cell prints $k_{aux}$ and the dead window this profile uses. Rerunning it resumes an
# interrupted run from its last checkpoint. (Chapter 00 shows AuxK at work on planted data.)

# %%
sae = wb.ensure_sae(P, encoder, build=True)  # this notebook makes it
history = json.loads((P.run_dir / "sae" / "history.json").read_text())
metrics = sae.metrics
tc = metrics["train_config"]
k_aux = tc["k_aux"] if tc.get("k_aux") is not None else sae.cfg.d_in // 2
print(f"k = {tc['k']}, k_aux = {k_aux} (d/2 unless set), AuxK weight α = {tc['auxk_alpha']:g}, dead window "
      f"{metrics['dead_window_tokens']:,} tokens, {sae.cfg.n_latents} latents (m = {sae.cfg.n_latents // sae.cfg.d_in}d)")  # fmt: skip
print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items() if k not in ("train_config", "data")})
if metrics.get("seconds"):
    print(f"measured: {metrics['tokens_seen'] / metrics['seconds']:,.0f} tokens/s on this machine")

# %% [markdown]
# ## What the numbers mean
# - **FVU** (fraction of variance unexplained), over $N$ tokens:
#   $$\mathrm{FVU} = \frac{\sum_n \lVert h_n - \hat h_n \rVert^2}{\sum_n \lVert h_n - \bar h \rVert^2}.$$
#   0 is a perfect reconstruction, 1 is no better than the mean vector $\bar h$. The curve below is
#   each *training* batch's FVU as it trains; the dashed line is the final FVU on held-out rows
#   the trainer never trained on (`metrics["fvu"]`).
# - **L0**: latents active per token, $\lVert z \rVert_0$. TopK fixes it at $k$ once training settles.
# - **Dead fraction**: latents that have not fired for a long window. AuxK gives them
#   gradient so the dictionary does not waste capacity.

# %%
tokens = np.array([h["tokens"] for h in history]) / 1e6
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
axes[0].plot(tokens, [h["fvu"] for h in history], label="each training batch")
axes[0].axhline(metrics["fvu"], color="k", ls="--", lw=1, label=f"held-out rows, final: {metrics['fvu']:.3f}")
axes[0].set(title="Reconstruction error (FVU)", xlabel="training tokens (millions)", ylabel="FVU (fraction)")
axes[0].legend()
axes[1].plot(tokens, [h["l0"] for h in history], color="tab:green")
axes[1].set(title="Active latents per token (L0)", xlabel="training tokens (millions)", ylabel="latents")
axes[2].plot(tokens, [h["dead_fraction"] for h in history], color="tab:red")
axes[2].set(title="Dead latents", xlabel="training tokens (millions)", ylabel="share of latents")
fig.suptitle(f"TopK SAE on {info.layer} of {info.encoder_id} ({sae.cfg.n_latents} latents, k={sae.cfg.k})")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Save
# The checkpoint is a folder, `sae.safetensors` + `cfg.json` + `metrics.json`, in the run folder
# (`SNCE_HOME`; on Colab, `wb.setup(use_drive=True)` keeps it on Google Drive, where notebooks
# 02-04 find it after a disconnect). `save_pretrained` adds a model card (README.md: encoder,
# block, data, token budget, metrics); `sae.push_to_hub("you/name")` uploads both (log in first
# with `huggingface_hub.login()`), and `formats.from_pretrained("you/name")` loads it anywhere,
# as it loads SAELens and sparsify SAEs.

# %%
save_pretrained(sae, P.run_dir / "sae")
print("checkpoint:", P.run_dir / "sae")
print((P.run_dir / "sae" / "README.md").read_text())
wb.record(P, "sae", {k: metrics.get(k) for k in ("fvu", "l0", "dead_fraction", "tokens_seen", "seconds")})

# %% [markdown]
# ## Questions
# 1. The run reports an L0 of exactly $k$. Why can L0 never exceed $k$, and when could it fall below?
# 2. Train with half the latents ($m = 2d$): do you expect FVU to rise or fall, and the dead
#    fraction? Try it: `wb.ensure_sae(P, encoder, overrides={"expansion": 2}, folder="sae_expansion2")`
#    trains it beside the SAE notebooks 02-04 read (same store), then compare `.metrics`.
# 3. Why is BOS left out of the store? (Hint: look at its activation norm next to a word's.)
# 4. AuxK's weight is $1/32$. What happens to the dead fraction with $\alpha = 0$? Try
#    `wb.ensure_sae(P, encoder, overrides={"auxk_alpha": 0.0}, folder="sae_no_auxk")`.
#
# <details><summary>Answers (open after trying)</summary>
#
# 1. TopK keeps the $k$ largest pre-activations after ReLU; a token whose ReLU leaves fewer
#    than $k$ positive ones has L0 below $k$ (rare once trained).
# 2. FVU rises (fewer directions to write with); dead fraction usually falls (each latent is
#    needed more often).
# 3. It depends on the encoder. In CLIP's causal encoder BOS sees nothing but itself, so its
#    features are one constant vector for every prompt: no content, and a norm unlike any word's.
#    In MiniLM (the offline default, bidirectional) the [CLS] token attends to the whole prompt and
#    does carry its content, but the eraser never edits position 0 (the method leaves BOS alone),
#    so a dictionary spent on it would describe what no edit touches; its norm still differs from
#    the words', which would pull the dictionary towards one position.
# 4. A latent that stops winning a top-k place gets no gradient from the reconstruction, so it
#    stays dead; how many die depends on the run: compare `metrics["dead_fraction"]` with the
#    `sae_no_auxk` variant's (chapter 00, section 5, shows the effect with half a dictionary dead).
# </details>
