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
# What did the SAE learn? This notebook names every feature from the data, lays the dictionary
# out on a map with named clusters, shows each feature's top-activating prompts with the firing
# tokens highlighted, and finds features from a handful of examples. It reads notebook 01's SAE
# from the run folder; if it is missing, the setup says so (set `SNCE_BUILD_MISSING=1` to train it
# here instead). Colab: the atlas sample is 5,000 prompts; its codes stay sparse (top-k values and
# indices), about 73 MB.
#
# **What you will learn**
# - how often dictionary features fire, and what a healthy frequency distribution looks like;
# - how to read a feature from its tokens, its label and its top-activating prompts;
# - where concepts live on a map of the dictionary, and how to find features from examples alone.

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
# Notebook 02 reads notebook 01's SAE. wb.setup(use_drive=True) finds it on Google Drive after a disconnect.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import HTML, display

from snce_lib import workbook as wb
from snce_lib.atlas.cards import feature_card
from snce_lib.atlas.explore import discover, explore
from snce_lib.atlas.html import notebook_frame, write_atlas
from snce_lib.atlas.labels import describe, save_labels
from snce_lib.workbook.widgets import feature_browser, prompt_lens

P = wb.setup()
sample = wb.training_prompts(P)[: P.atlas_prompts]
encoder = wb.ensure_encoder(P)
sae = wb.ensure_sae(P, encoder)
ex = explore(encoder, sae, sample, concept="nudity")
atlas, labels = ex.atlas, ex.labels
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
# ## What each feature stands for
# Every feature gets a label from data alone: the tokens it fires on most (with counts) and the
# words most specific to it, those it fires on far more often than they occur in the sample,
# scored by $c_f(t)\,\log\frac{c_f(t)/n_f}{c_{all}(t)/N}$ ($c_f(t)$: firings of feature $f$ on
# token $t$; $n_f$: all its firings; $N$: positions). Features that never fire are marked dead,
# those under $10^{-4}$ of positions rare. The labels are saved beside the SAE for later notebooks.

# %%
save_labels(labels, P.run_dir / "sae" / "labels.json")
print(describe(labels))
busiest = np.argsort(-atlas.frequency)[:10]
pd.DataFrame([{"feature": int(f), "fires on (share of positions)": f"{labels[f].frequency:.2%}",
               "label": labels[f].label, "top tokens (count)": labels[f].top_tokens[:3]} for f in busiest])  # fmt: skip

# %% [markdown]
# ## A map with structure
# Two layouts of the same features: UMAP of the decoder directions (cosine), and UMAP of each
# feature's *token profile*, how often it fires on each token (cosine), so that features firing on
# the same tokens sit together. Both are clustered the same way (k-means, 24 clusters, dead features
# left out) and the layout whose clusters separate better (higher silhouette score) is kept. Each
# cluster is named by the words its members' labels share. Colour: cluster, or the SNCE concept
# score for nudity (eq. 5 of the next notebook), which lights up where the selection searches.

# %%
L = ex.layout
print("silhouette of each map's clustering:", {k: round(v, 3) for k, v in ex.map_scores.items()}, "-> kept:", L.name)
print("clusters:", "; ".join(L.names[c] for c in sorted(L.names)))
fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
live = L.cluster >= 0
axes[0].scatter(L.xy[~live, 0], L.xy[~live, 1], s=3, color="lightgray", label="never fires")
axes[0].scatter(L.xy[live, 0], L.xy[live, 1], s=4, c=L.cluster[live], cmap="tab20")
for c, name in L.names.items():
    cx, cy = L.xy[L.cluster == c].mean(0)
    axes[0].annotate(name, (cx, cy), fontsize=7, ha="center", bbox={"boxstyle": "round", "fc": "white", "alpha": 0.7})
axes[0].set(title=f"{L.name} map, {len(L.names)} named clusters", xlabel="UMAP 1 (a.u.)", ylabel="UMAP 2 (a.u.)")
sc1 = axes[1].scatter(L.xy[:, 0], L.xy[:, 1], c=np.log10(ex.concept_score + 1e-4), s=4, cmap="magma")
fig.colorbar(sc1, ax=axes[1], label="log10 nudity score s^c")
axes[1].set(title="The same map, by nudity score (eq. 5)", xlabel="UMAP 1 (a.u.)", ylabel="UMAP 2 (a.u.)")
fig.tight_layout()
fig.savefig(P.run_dir / "atlas_map.png", dpi=110)
plt.show()

# %% [markdown]
# ## The interactive atlas
# Hover a point for its label, click it for its card (top prompts with the firing tokens shaded,
# its activation histogram, its nearest features by decoder cosine), switch the colouring, and
# type a word then Enter to light up the features that fire on it. The same page is written as one
# self-contained HTML file to share (`snce atlas --sae DIR --out atlas.html` writes it too).

# %%
page = write_atlas(ex.page, P.run_dir / "atlas.html")
print("shareable atlas:", page)
display(notebook_frame(ex.page))

# %% [markdown]
# ## Feature cards and the browser
# One common feature and the two best nudity candidates, then a browser: pick a feature by number,
# or type a word and press Enter to list the features that fire on it.

# %%
common = int(np.argsort(-atlas.frequency)[5])
for f in [common, *ex.concept_top[:2]]:
    print(f"feature {int(f)}: {labels[int(f)].label}")
    display(HTML(feature_card(atlas, int(f), n=5)["html"]))
display(feature_browser(atlas, start=int(ex.concept_top[0]) if ex.concept_top else common))

# %% [markdown]
# ## A prompt, token by token
# Type a prompt and press Enter: each token's three strongest features, with their labels and
# activations. Pick one under "open card" to see what else it fires on.

# %%
display(prompt_lens(encoder, sae, labels, atlas, prompt="a nude painting of a woman in a garden"))

# %% [markdown]
# ## Discovery from examples
# No hand-written pairs: a few prompts that show a concept and a few that do not, scored with the
# selection notebook's rankings (modulated frequency, strict and with a 1% tolerance, and mean
# difference). Here: weather.

# %%
rain = [
    "a rainy street at night",
    "storm clouds over the sea",
    "heavy rain on a window",
    "a snowy mountain in a blizzard",
]
calm = [
    "a sunny street at noon",
    "a calm sea under a clear sky",
    "a window in a bright room",
    "a green mountain in summer",
]
found = discover(encoder, sae, rain, calm)
pd.DataFrame([{"ranking": name, "feature": f, "label": labels[f].label, "status": labels[f].status}
              for name, r in found.items() for f in r.top(3)])  # fmt: skip

# %%
wb.record(P, "atlas", {"prompts": len(sample), "never_fire": never, "latents": sae.cfg.n_latents,
                       "labels": describe(labels), "map": L.name, "silhouette": ex.map_scores,
                       "clusters": [L.names[c] for c in sorted(L.names)],
                       "busiest": {int(f): labels[f].label for f in busiest}})  # fmt: skip

# %% [markdown]
# ## Questions
# 1. The most frequent features fire on a large share of positions. What do their labels say:
#    words, punctuation, or padding?
# 2. Search the interactive atlas for "naked" and for "painting". Do the same features come back?
#    What does that say about how specific the dictionary is?
# 3. On the nudity-score map, are the high-scoring features one cluster or scattered? What would
#    scattering mean for erasing a concept with one neuron?
# 4. Change the examples of the discovery cell to a concept of your own. Do the labels of the
#    features it finds name it?
#
# <details><summary>Answers (open after trying)</summary>
#
# 1. Read the table of the busiest features: padding and end-of-text positions are many and
#    alike, so a few latents spend their whole life there (`labels[f].top_tokens`).
# 2. They differ: each word lights its own few features, with some shared "art/photo" context
#    features; the overlap is the shared context, not the concept.
# 3. Often several separate points: the concept is spread over several latents, so subtracting
#    one leaves the others (notebook 04 measures exactly this).
# 4. Read each ranking's `labels[f].label` and `labels[f].status`: where the strict ranking returns
#    rare latents (as notebook 03 finds for nudity), the tolerance ranking is the one to read.
# </details>
