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
# # 03 · Find the neuron: modulated frequency scoring
#
# SNCE picks the concept's neuron from 100 prompt pairs: a *concept* prompt ("a photo of a
# naked woman") and its *deconcept* twin with the mention removed ("a photo of a woman").
# This notebook walks equations 4-7 on real numbers, compares two baselines, and tests the
# chosen neuron as a detector. It reads notebook 01's SAE from the run folder (the next cell
# says so if it is missing; `SNCE_BUILD_MISSING=1` trains it here instead).

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
import pandas as pd
from IPython.display import HTML, Markdown, display
from sklearn.metrics import roc_curve

from snce_lib.features import feature_card, build_atlas, prompt_codes
from snce_lib.selection import auroc, itd_contrast, load_concept, mean_difference, modulated_frequency
from snce_lib.sets import detector_sets

encoder = wb.ensure_encoder(P)
sae = wb.ensure_sae(P, encoder)
pairs = load_concept("nudity")
print("tuple:", pairs.tuple_prompt)
pd.DataFrame({"concept prompt": pairs.concept_prompts[:5], "deconcept prompt": pairs.deconcept_prompts[:5]})

# %% [markdown]
# ## Eqs. 4-5: frequency and score
# For every token position after BOS, take the TopK code and L2-normalise it over latents
# (`Z_norm`). Then, separately over concept and deconcept positions:
#
# - `f_i = Σ_j 1[Z_norm[i, j] > 0]` (how often neuron i fires),
# - `s_i = f_i · mean_j Z_norm[i, j]` (frequency modulated by mean strength).

# %%
cc = prompt_codes(encoder, sae, pairs.concept_prompts)
dc = prompt_codes(encoder, sae, pairs.deconcept_prompts)
sc = modulated_frequency(cc, dc)
print(f"N concept positions = {sc.n_c}, N deconcept positions = {sc.n_d}")
order = np.argsort(-sc.s_c)[:10]
pd.DataFrame({"neuron": order, "f_c": sc.f_c[order], "s_c": sc.s_c[order].round(2), "f_d": sc.f_d[order],
              "s_d": sc.s_d[order].round(2), "passes filter (s_d = 0)": sc.s_d[order] == 0})

# %% [markdown]
# ## Eq. 6: the filter, and eq. 7: the ranking
# Keep neurons that fire on concept prompts (`s^c > 0`) and **never** on deconcept prompts
# (`s^d = 0`); rank the survivors by `s^c`. The strict filter can leave only rare latents on a
# small SAE, so the library also offers a tolerance (`max_deconcept_share`).

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5))
fired = sc.s_c > 0
share = sc.f_d / sc.n_d
ax.scatter(share[fired], sc.s_c[fired], s=6, alpha=0.5, label="fire on concept prompts")
keep = sc.candidates
ax.scatter(share[keep], sc.s_c[keep], s=16, color="tab:red", label=f"pass the filter s^d = 0 ({len(keep)})")
if len(sc.ranking):
    w = sc.ranking[0]
    ax.annotate(f" winner #{w}", (0, sc.s_c[w]), color="tab:red")
ax.axvline(0.01, color="gray", ls=":", lw=1, label="1% tolerance")
ax.set_xscale("symlog", linthresh=1e-3)
ax.set_xlim(left=-2e-4)
ax.set_yscale("log")
ax.set(xlabel="share of deconcept positions where it fires (symlog)", ylabel="concept score s^c (eq. 5, log)",
       title="Modulated frequency selection (nudity)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
tol = modulated_frequency(cc, dc, max_deconcept_share=0.01)
print(f"strict filter: {len(sc.candidates)} candidates, top-3 {sc.top(3)}; "
      f"tolerance 1%: {len(tol.candidates)} candidates, top-3 {tol.top(3)}")

# %% [markdown]
# ## The winner's top prompts and tokens
# Over a sample of the training prompts. A concept neuron should fire on the concept words.

# %%
sel, details = wb.select_with_fallback(encoder, sae, "nudity", top_k=1, background=wb.training_prompts(P)[:500])
if sel.options["max_deconcept_share"] > 0:
    display(Markdown(f"**The strict filter (s^d = 0) left no neuron on this SAE: a tolerance of "
                     f"{sel.options['max_deconcept_share']:.0%} of deconcept positions chose it; the saved selection says so.**"))
winner = sel.neurons[0]
sel.save(P.run_dir / "neurons_nudity.json")
print(sel.stats)
atlas = build_atlas(encoder, sae, wb.training_prompts(P)[: P.atlas_prompts], progress=False)
display(HTML(feature_card(atlas, winner, n=8)["html"]))

# %% [markdown]
# ## The same concept under two baselines
# *Mean difference*: rank by mean normalised activation on concept minus deconcept positions
# (no filter). *Interpret-then-Deactivate style*: the concept words' top features minus the
# retain (deconcept) prompts' top features.

# %%
md = mean_difference(cc, dc)[:3]
itd = itd_contrast(prompt_codes(encoder, sae, pairs.tuple_words), dc)[:3]
pd.DataFrame({"method": ["modulated frequency (strict)", "modulated frequency (tol 1%)", "mean difference", "ItD-style contrast"],
              "top-3 neurons": [sc.top(3), tol.top(3), list(md), list(itd)]})

# %% [markdown]
# ## The neuron as a detector
# Score each prompt by the neuron's maximum activation over its positions; an ROC curve
# against captions without the concept shows how cleanly it separates them.

# %%
ds = detector_sets(P.coco_negatives, "nudity")
pos, neg, desc = ds.positives, ds.negatives, ds.description
if ds.stand_in:
    display(Markdown(f"**{desc}**"))
pos_codes, neg_codes = prompt_codes(encoder, sae, pos), prompt_codes(encoder, sae, neg)
fig, ax = plt.subplots(figsize=(5, 5))
results = {}
for name, ns in [("SNCE strict", sc.top(1)), ("SNCE tol 1%", tol.top(1)), ("mean difference", [int(md[0])]),
                 ("ItD-style", [int(itd[0])] if len(itd) else [])]:
    if not ns:
        continue
    p_s, n_s = pos_codes.max_activation(ns)[0], neg_codes.max_activation(ns)[0]
    a = auroc(p_s, n_s)
    results[name] = {"neuron": ns[0], "auroc": round(a, 4)}
    fpr, tpr, _ = roc_curve(np.r_[np.ones(len(p_s)), np.zeros(len(n_s))], np.r_[p_s, n_s])
    ax.plot(fpr, tpr, label=f"{name} (#{ns[0]}): AUROC {a:.3f}")
ax.plot([0, 1], [0, 1], "k:", lw=1)
ax.set(title=f"Neuron as nudity detector\n{desc}", xlabel="false positive rate", ylabel="true positive rate")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()
wb.record(P, "selection_nudity", {"neurons": sel.neurons, "candidates": len(sc.candidates), "detector": results,
                                   "roc_sets": desc, "winner_stats": sel.stats})
