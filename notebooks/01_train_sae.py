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
# - how to read a training run: FVU, L0 and dead latents;
# - the bridge from chapter 00: how often each latent fires and what "dead" depends on, whether a
#   latent reads as one thing where a coordinate of the encoder does not, and what splicing the SAE
#   into the encoder costs downstream, beside ablations.
#
# **Profiles.** `offline` (the default without a GPU): the packaged MiniLM-L6 encoder, the
# project's own 6,000-prompt corpus, 1.5M training tokens, a few minutes on 2 CPU cores.
# `colab` (the default on a GPU): the text encoder of `SNCE_MODEL` (default Stable Diffusion
# v1.4's CLIP), block 10 (`encoder.layers.9`: blocks count from 0 in code), about 20,700 public
# prompts (DiffusionDB NSFW, DiffusionDB 10k, I2P), 100M training tokens; `SNCE_TOKENS=400000000` for
# the paper's budget. With `SNCE_MODEL` set to SD 2.x, SDXL or FLUX.1 the SAE sits on that family's
# default encoder and block (docs/choices.md); the collect cell prints where.
#
# **How long on a T4?** Not measured there (no T4 here); the arithmetic for SD v1.4: one step of
# 4,096 tokens at 768 → 3,072 costs ~116 GFLOP (encoder and decoder, forward and backward), ~174 with
# AuxK, so 100M tokens (about 24,400 steps) is ~4.2 PFLOP. At the T4's fp16 tensor-core peak (65 TFLOP/s) and a
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
import pandas as pd
import torch
from IPython.display import display

from snce_lib import workbook as wb
from snce_lib.models.families import site
from snce_lib.sae.formats import save_pretrained
from snce_lib.workbook import exercises as ex

P = wb.setup()
if P.pipeline == "model":  # the profile's whole plan on a T4, before anything long runs
    print(wb.plan_text(P))
book = ex.Exercises()  # this notebook's prediction
# Gated models need a hub login; SD v1.4 does not. Uncomment to log in:
# from huggingface_hub import notebook_login; notebook_login()

# %% [markdown]
# ## Why a *sparse* dictionary?
#
# A text encoder's block writes a dense vector $h \in \mathbb{R}^d$ ($d$ = 768 for SD v1.4's CLIP,
# 1,280 for SDXL's second encoder, 384 for MiniLM) at every token. Each coordinate mixes many ideas, so no single one means
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
wb.announce(P, "collect")
encoder = wb.ensure_encoder(P)
store = wb.ensure_store(P, encoder)
info = store.info
print("the SAE's site:", site(encoder, info.layer))
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
# interrupted run from its last checkpoint. (Chapter 00 shows AuxK at work, with the training step
# you wrote there.)

# %%
wb.announce(P, "train")
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
name = "MiniLM-L6 (offline)" if info.encoder_id == "offline" else info.encoder_id
fig.suptitle(f"TopK SAE on {info.layer} of {name} ({sae.cfg.n_latents} latents, k={sae.cfg.k})")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Save
# The checkpoint is a folder, `sae.safetensors` + `cfg.json` + `metrics.json`, in the run folder
# (`SNCE_HOME`; on Colab, `wb.setup(use_drive=True)` keeps it on Google Drive, where notebooks
# 02-04 find it after a disconnect). `save_pretrained` adds a model card (README.md: encoder,
# block, data, token budget, metrics); `formats.push_to_hub(sae, "you/name")` uploads both (log in first
# with `huggingface_hub.login()`), and `formats.from_pretrained("you/name")` loads it anywhere,
# as it loads SAELens and sparsify SAEs.

# %%
save_pretrained(sae, P.run_dir / "sae")
print("checkpoint:", P.run_dir / "sae")
print((P.run_dir / "sae" / "README.md").read_text())
wb.record(P, "sae", {k: metrics.get(k) for k in ("fvu", "l0", "dead_fraction", "tokens_seen", "seconds")})

# %% [markdown]
# ## The bridge: this dictionary, read with chapter 00's measures
# **Goal:** read a real dictionary with the measures of chapter 00 that need no planted answer:
# how often each latent fires and what "dead" depends on; whether a latent reads as one thing
# where a coordinate of the block does not; and what the SAE costs the encoder when it stands in
# for the block.
#
# ### How often each latent fires
# TopK fires exactly $k$ of the $m$ latents a token, so if every latent took its equal share each
# would fire on $k/m$ of the tokens (the dashed line). The histogram shows how far from equal the
# dictionary is, on stored rows.

# %%
from snce_lib.sae.dead import dead_share_by_window, expected_dead_share
from snce_lib.sae.train import evaluate_sae, firing_frequencies

rows = store.load(max_rows=20_480, seed=0)
freq = firing_frequencies(sae, rows)
health = evaluate_sae(sae, rows)
print(f"{sae.cfg.n_latents} latents on {len(rows):,} stored rows (drawn at random from {len(store):,}): "
      f"{int((freq == 0).sum())} never fire; firing frequency median {np.median(freq):.2%}, "
      f"largest {freq.max():.1%} (k/m = {sae.cfg.k / sae.cfg.n_latents:.2%}); FVU on these rows {health['fvu']:.3f}")  # fmt: skip
print(
    f"dead at the end of training (silent for {metrics['dead_window_tokens']:,} tokens): {metrics['dead_fraction']:.1%}"
)
fig, ax = plt.subplots(figsize=(7, 3.6))
ax.hist(np.log10(freq[freq > 0]), bins=50, color="tab:blue")
ax.axvline(np.log10(sae.cfg.k / sae.cfg.n_latents), color="k", ls="--", lw=1, label="k / m: every latent equal")
ax.axvline(np.log10(1 / 4096), color="tab:red", ls=":", lw=1, label="once in 4,096 tokens (one batch)")
ax.set(title=f"How often each latent fires ({len(rows):,} stored rows; {int((freq == 0).sum())} never fire, not shown)",
       xlabel="log10 firing frequency (share of rows)", ylabel="latents")  # fmt: skip
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ✍️ **Prediction.** A latent is *dead* when it has not fired for the dead window (printed
# above). With a window of one training batch, 4,096 tokens, what share of the latents would
# count as dead? Read it off the histogram: a latent that fires on a share $f$ of the rows stays
# silent through $w$ independent rows with probability $(1 - f)^w$. Write your number, then run
# the cell after it.

# %%
book.predict("dead share at a 4,096-token window", "your prediction")

# %%
# A window longer than the rows kept (a small profile keeps few) cannot be measured: it is left out.
windows = tuple(w for w in (512, 4096, 16_384) if w <= len(rows))
measured = dead_share_by_window(sae, rows, windows)
for w in windows:
    n_win = len(rows) // w
    print(f"window {w:>6,} tokens: {measured[w]:.1%} of latents silent throughout (mean over {n_win} "
          f"window{'s' if n_win > 1 else ''} of the {len(rows):,} rows); the frequencies predict "
          f"{expected_dead_share(freq, w):.1%}")  # fmt: skip
book.reveal(
    "dead share at a 4,096-token window",
    f"{measured[4096]:.1%}" if 4096 in measured else f"not measured: {len(rows):,} rows kept",
)

# %% [markdown]
# "Dead" is a statement about a window, not about a latent: a rare latent is silent through a
# short window most of the time and through a long one seldom. The trainer's window is long so
# that AuxK works on latents that really stopped, not on rare ones that are doing their job; the
# frequencies predict the measured shares because stored rows are close to independent draws.
#
# ### A latent against a coordinate
# The workbook's premise is that a latent of the dictionary reads as one thing where a coordinate
# of the block's output mixes many. Here it is measured on prompts the SAE never trained on (the
# prompts its training held out), at content-word positions only (whole words, pieces joined;
# function words, the end token and padding set aside), with the prompts split in two halves.
# On one half, each unit's *label* is the three commonest words among its 20 strongest
# positions, and the *entropy* of the words there says how concentrated they are (0 bits: one
# word twenty times). On the other half, the *label share* is the share of the unit's activity
# that falls on its label's words, beside the share of positions that hold them (chance: a unit
# active everywhere alike). A coordinate's activity is its distance from its median on its better
# side; a latent's is its code. A latent that fires at fewer than 20 positions of the label half is
# left out (too few to label); a coordinate is active at about half of all positions, so the same
# rule leaves none of them out.

# %%
from snce_lib.concepts.readability import chance_entropy, content_units, held_out_prompts, read_units
from snce_lib.rng import numpy_rng

held = held_out_prompts(store, sae)[:400]
units = content_units(encoder, sae, held)
read = pd.DataFrame(read_units(units))
print(f"{len(held)} prompts training held out, {len(units.words):,} content-word positions; label on even prompts, "
      f"share on odd ones; the words at 20 random positions: entropy {chance_entropy(units):.2f} bits (chance)")  # fmt: skip
display(read.groupby("kind")[["entropy", "label_share", "chance"]].median().round(3)
        .assign(units=read.groupby("kind").size()).rename(columns=lambda c: c.replace("_", " ") + ("" if c == "units" else " (median)")))  # fmt: skip
rng = numpy_rng(0, "bridge-units")  # three of each kind, drawn at random, not picked
shown = pd.concat([g.iloc[rng.choice(len(g), 3, replace=False)] for _, g in read.groupby("kind")])
display(shown.set_index(["kind", "unit"]).round(3))
fig, ax = plt.subplots(figsize=(7, 3.4))
for kind, g in read.groupby("kind"):
    ax.hist(g["label_share"], bins=np.linspace(0, 1, 41), alpha=0.6, density=True, label=f"{kind}s (n = {len(g)})")
ax.axvline(read["chance"].median(), color="k", ls="--", lw=1, label="chance (label words' share of positions)")
ax.set(title="How much of each unit's activity its 3-word label explains (held-out half)",
       xlabel="label share of activity", ylabel="density")  # fmt: skip
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# At their extremes both kinds of unit pick out particular words: both entropies sit far below
# that of random positions and not far from each other, so a coordinate's top examples alone can
# look as clean as a latent's. The difference is in the rest
# of what a unit does. A latent's label carries most of its activity on prompts that made no
# label; a coordinate's carries a small share, above chance but far below a latent's: the
# coordinate is busy everywhere, with many things at once. That is what lets chapter 03 look for a
# concept in a single latent, and why it does not look in a coordinate.
#
# ### What the SAE costs downstream
# The SAE's reconstruction replaces the block's output at every position after BOS, the encoder
# runs its remaining blocks on it, and we compare its final output with the clean one (cosine,
# averaged over each prompt's words, and over every position as the image model reads them).
# Beside it, the block's output replaced by the mean feature vector (mean-ablation) and by zeros
# (zero-ablation).

# %%
from snce_lib.sae.fidelity import fidelity, image_agreement, mean_ablation, sae_splice, zero_ablation

mean_row = torch.from_numpy(rows.astype(np.float32).mean(0))
splices = [sae_splice(sae), mean_ablation(sae.cfg.layer, mean_row), zero_ablation(sae.cfg.layer)]
display(pd.DataFrame(fidelity(encoder, held[:128], splices)).set_index("replaced by").round(3))
if P.pipeline == "toy":  # the toy world's images: does the picture change when the SAE stands in?
    from snce_lib.models.toy.detector import ToyDetector
    from snce_lib.models.toy.model import load_toy_pipeline
    from snce_lib.models.toy.world import dataset

    captions = dataset(16, seed=5)[1]
    agree = image_agreement(load_toy_pipeline(), ToyDetector.load(), captions, splices[:2], steps=10)
    display(pd.DataFrame(agree).set_index("replaced by").round(3))

# %% [markdown]
# The SAE's reconstruction leaves the encoder's output far closer to clean than either ablation
# does: what it fails to reconstruct (the FVU above) moves the blocks after it little. Near is not
# the same as unchanged, though. In the toy world, whose image model reads its encoder's output
# closely, a good share of the images change colour or shape with the SAE spliced in (16 captions,
# 10 denoising steps, one seed each, the interval beside it), though far fewer than when the block's
# output is replaced by its mean. This is why the eraser of chapters 03-04 never splices the
# reconstruction in: it subtracts one latent's contribution from the block's own output and keeps
# the SAE's error where it was.
#
# **Measured in the bridge:** the firing histogram and the dead share at several windows beside
# their prediction; latents against coordinates on held-out prompts beside the random-position
# chance level; downstream cosine with the SAE spliced in beside mean- and zero-ablation.

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
