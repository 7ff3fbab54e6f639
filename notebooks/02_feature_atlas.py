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
# What did the SAE learn? This notebook maps the dictionary (UMAP of decoder
# directions), shows each feature's top-activating prompts with the firing tokens
# highlighted, and gives a browser to pick a feature or search features by a word.
# It reads notebook 01's SAE from the run folder; if it is missing, the next cell says so
# (set `SNCE_BUILD_MISSING=1` to train it here instead). Colab: the atlas sample is 5,000
# prompts; its codes stay sparse (top-k values and indices), about 73 MB.

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

import matplotlib.pyplot as plt
import numpy as np

# %%
from IPython.display import HTML, display

from snce_lib.features import build_atlas, decoder_umap, feature_card, prompt_codes
from snce_lib.selection import load_concept, modulated_frequency
from snce_lib.widgets import feature_browser

encoder = wb.ensure_encoder(P)
sae = wb.ensure_sae(P, encoder)
sample = wb.training_prompts(P)[: P.atlas_prompts]
atlas = build_atlas(encoder, sae, sample)
print(f"atlas over {len(sample)} prompts; {int((atlas.frequency == 0).sum())} of {sae.cfg.n_latents} latents never fire on it")

# %% [markdown]
# ## How often does each feature fire?
# A healthy TopK dictionary has few dead latents and a long tail of rare, specific ones.

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.hist(np.log10(atlas.frequency[atlas.frequency > 0]), bins=40)
ax.set(title="Feature firing frequency", xlabel="log10(share of token positions where it fires)", ylabel="features")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## A map of the dictionary
# Each point is one decoder direction, placed by UMAP (cosine distance), so directions that
# write similar things sit together. Colour: left, how often the feature fires; right, its
# SNCE concept score for nudity (eq. 5, concept prompts), which lights up the region of the
# dictionary that the selection notebook searches.

# %%
xy = decoder_umap(sae)
pairs = load_concept("nudity")
scores = modulated_frequency(prompt_codes(encoder, sae, pairs.concept_prompts), prompt_codes(encoder, sae, pairs.deconcept_prompts))
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
# Top-activating prompts of a few features, firing tokens shaded by activation.

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
wb.record(P, "atlas", {"prompts": len(sample), "never_fire": int((atlas.frequency == 0).sum()),
                        "latents": sae.cfg.n_latents})
