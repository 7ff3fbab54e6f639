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
# # 02 · The feature atlas: look at the dictionary
#
# What did the SAE learn? This notebook maps the dictionary (UMAP of decoder directions), shows
# each feature's top-activating prompts with the firing tokens highlighted, and gives a browser
# to pick a feature or search features by a word. It reads notebook 01's SAE from the run folder;
# if it is missing, the setup says so (set `SNCE_BUILD_MISSING=1` to train it here instead).
# Colab: the atlas sample is 5,000 prompts; its codes stay sparse (top-k values and indices),
# about 73 MB.
#
# **What you will learn**
# - how often dictionary features fire, and what a healthy frequency distribution looks like;
# - how to read a feature from its top-activating prompts and tokens;
# - where a concept lives on a map of the dictionary, before the next notebook picks its neuron.

# %%
# Colab: install the workbook, pinning every package the runtime ships (its CUDA torch stays); elsewhere a no-op.
import importlib.util, os, subprocess, sys  # noqa: E401, I001

SNCE_REPO = os.environ.get("SNCE_REPO", "https://github.com/snce-workbook/snce")  # a fork's address, or a wheel's path
if not importlib.util.find_spec("snce_lib"):
    subprocess.run(f"{sys.executable} -m pip list --format=freeze > /tmp/snce-runtime.txt && {sys.executable} -m pip install -q -c /tmp/snce-runtime.txt '{SNCE_REPO if os.path.exists(SNCE_REPO) else 'snce @ git+' + SNCE_REPO}'", shell=True, check=True)  # fmt: skip

# %%
# Notebook 02 reads notebook 01's SAE. wb.setup(use_drive=True) finds it on Google Drive after a disconnect.
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, display

from snce_lib import workbook as wb
from snce_lib.atlas.cards import feature_card
from snce_lib.atlas.map import build_atlas, decoder_umap
from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.pairs import load_concept
from snce_lib.concepts.ranking import modulated_frequency
from snce_lib.workbook.widgets import feature_browser

P = wb.setup()
sample = wb.training_prompts(P)[: P.atlas_prompts]
encoder = wb.ensure_encoder(P)
sae = wb.ensure_sae(P, encoder)
atlas = build_atlas(encoder, sae, sample)
never = int((atlas.frequency == 0).sum())
print(f"atlas over {len(sample)} prompts; {never} of {sae.cfg.n_latents} latents never fire on it")

# %% [markdown]
# ## How often does each feature fire?
# A feature's firing frequency is the share of token positions $t$ (of all $T$ in the sample)
# where it is among the $k$ active latents:
#
# $$p_i = \frac{1}{T}\sum_{t=1}^{T} \mathbb{1}\big[z_i(t) > 0\big].$$
#
# A healthy TopK dictionary has few dead latents and a long tail of rare, specific ones.

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.hist(np.log10(atlas.frequency[atlas.frequency > 0]), bins=40)
ax.set(title="Feature firing frequency", xlabel="log10(share of token positions where it fires)", ylabel="features")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## A map of the dictionary
# Each point is one decoder direction $W_{dec}[i]$, placed by UMAP under cosine distance
# $1 - \cos(W_{dec}[i], W_{dec}[j])$, so directions that write similar things sit together.
# Colour: left, how often the feature fires; right, its SNCE concept score for nudity (eq. 5 of
# the next notebook, on concept prompts), which lights up the region of the dictionary that the
# selection notebook searches.

# %%
xy = decoder_umap(sae)
pairs = load_concept("nudity")
scores = modulated_frequency(
    prompt_codes(encoder, sae, pairs.concept_prompts), prompt_codes(encoder, sae, pairs.deconcept_prompts)
)
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
sc0 = axes[0].scatter(xy[:, 0], xy[:, 1], c=np.log10(atlas.frequency + 1e-6), s=4, cmap="viridis")
fig.colorbar(sc0, ax=axes[0], label="log10 firing frequency")
axes[0].set(title="Decoder directions, by firing frequency", xlabel="UMAP 1 (a.u.)", ylabel="UMAP 2 (a.u.)")
sc1 = axes[1].scatter(xy[:, 0], xy[:, 1], c=np.log10(scores.s_c + 1e-4), s=4, cmap="magma")
fig.colorbar(sc1, ax=axes[1], label="log10 nudity score s^c")
top = scores.top(5)
axes[1].scatter(xy[top, 0], xy[top, 1], s=60, facecolors="none", edgecolors="cyan", label="top candidates")
axes[1].legend(loc="lower right")
axes[1].set(title="Decoder directions, by nudity score (eq. 5)", xlabel="UMAP 1 (a.u.)", ylabel="UMAP 2 (a.u.)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Feature cards
# Top-activating prompts of a few features, firing tokens shaded by activation $z_i(t)$: one
# common feature, then the two best nudity candidates.

# %%
common = int(np.argsort(-atlas.frequency)[5])
for f in [common, *scores.top(2)]:
    display(HTML(feature_card(atlas, int(f), n=5)["html"]))

# %% [markdown]
# ## Browse
# Pick a feature by number, or type a word to list the features that fire on it.

# %%
browser = feature_browser(atlas, start=int(scores.top(1)[0]) if len(scores.ranking) else 0)
display(browser)
wb.record(P, "atlas", {"prompts": len(sample), "never_fire": never, "latents": sae.cfg.n_latents})

# %% [markdown]
# ## Questions
# 1. The most frequent features fire on a large share of positions. Open the card of the most
#    frequent one: is it a word, a position, or padding?
# 2. Search the browser for "naked" and for "painting". Do the same features come back? What
#    does that say about how specific the dictionary is?
# 3. On the right-hand map, are the high-scoring nudity features one cluster or scattered? What
#    would scattering mean for erasing a concept with one neuron?
#
# <details><summary>Answers (open after trying)</summary>
#
# 1. Usually padding or end-of-text positions: they are many, and the same vector repeats, so a
#    few latents spend their whole life there (`feature_card(atlas, int(np.argsort(-atlas.frequency)[0]))`).
# 2. They differ: each word lights its own few features, with some shared "art/photo" context
#    features; the overlap is the shared context, not the concept.
# 3. Often several separate points: the concept is spread over several latents, so subtracting
#    one leaves the others (notebook 04 measures exactly this).
# </details>
