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
# # 04 · Erase, look, and measure
#
# First, SNCE on a text-to-image model small enough to train on a laptop: the **toy world**
# (16x16 images of one coloured shape, a frozen MiniLM text encoder and a 2M-parameter UNet),
# where an exact detector tells whether erasing the "red" neuron removes red and leaves the
# rest alone. Then the field's evaluation (NudeNet counts and attack success, CLIP score, FID)
# on the profile's pipeline, and the paper-style table.
#
# Offline, the second part runs the real code path on the toy model with a handful of prompts:
# its numbers show that the machinery works, not how SNCE does on Stable Diffusion. On Colab
# it runs on `SNCE_MODEL` (default SD v1.4) with `eval_prompts` prompts per set: 200 for each of
# I2P nudity (134 rows exist at nudity >= 50), Ring-A-Bell's 79 and COCO, with and without the
# eraser, i.e. 2 x (134 + 79 + 200) = 826 images at 50 steps. Not timed on a T4 here; at the
# public diffusers figure of roughly 4-5 s per 512 px image at 50 steps on a T4 (fp16), about an
# hour. The toy-world sections run on the CPU even on a GPU runtime (48 prompts per set there:
# about 3,500 16x16 images, a few minutes). The paper's full protocol is far larger (README).

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
from IPython.display import display

from snce_lib.display import image_grid
from snce_lib.selection import select_neurons
from snce_lib.toy.experiment import run_experiment, toy_concept
from snce_lib.widgets import erasure_backend, erasure_panel

toy, detector, toy_sae = wb.ensure_toy(P)
red_sel, red_details = select_neurons(toy.snce_encoder, toy_sae, toy_concept("red"), top_k=20)
print("red neurons (best first):", red_sel.neurons[:5], "| candidates:", red_sel.stats["n_candidates"])

# %% [markdown]
# ## The panel
# Type a prompt, move lambda, switch the mode (B: the prompt's own activation, A: the word
# tuple's), and add neurons with top-k. Left: the original; right: the edited model, same seed.
# Below: the chosen neurons' activation on each token. Images that NudeNet flags are blurred.

# %%
gen, acts = erasure_backend(toy, toy.snce_encoder, toy_sae, red_sel.neurons,
                                ", ".join(red_sel.tuple_words), seed=3)
panel = erasure_panel(gen, acts, prompt="a large red circle on a white background", lam=1.0)
display(panel)

# %% [markdown]
# ## Before and after, on prompts that ask for red and on prompts that do not
# Mode B at lambda 1. Erasure should remove red from the first row and leave the second alone.

# %%
from snce_lib.erase import Eraser
from snce_lib.toy.experiment import prompt_suite

suite = prompt_suite("red", n=6, seed=5)
seeds = list(range(6))
red_prompts = [p for p, _ in suite.target]
other_prompts = [p for p, _ in suite.other]
before = toy.generate(red_prompts + other_prompts, seeds + seeds)
with Eraser(toy_sae, red_sel.neurons[:1], 1.0, "B").attached(toy):
    after = toy.generate(red_prompts + other_prompts, seeds + seeds)
grid = [im for pair in zip(before, after) for im in pair]
titles = [t for p in red_prompts + other_prompts for t in (p[:28], "erased")]
fig = image_grid(grid, titles, ncols=6, title="Toy world: original | erased (neuron for 'red', mode B, lambda 1)", size=1.9)
plt.show()

# %% [markdown]
# ## The lambda x mode table
# Target rate (share of images asking for the target that show it), preservation (colour and
# shape accuracy on prompts that do not ask for it, and the Fréchet distance between those
# images with and without the eraser, in the detector's feature space), and the attack rate
# (target rate under synonyms and paraphrases never seen in training). Rows: no eraser, then
# each mode and lambda. Same prompts and seeds everywhere.
#
# Read the table before believing the method: does the target rate fall? In this world it
# does not, and the next section shows why. The README's toy-world section reports the full
# measurements, including how many neurons and how large a lambda it takes to move the rate.

# %%
n_toy = P.toy_prompts
tables = {}
for target in ("red", "triangle"):
    res = run_experiment(toy, detector, toy_sae, target, n=n_toy, steps=15, keep_images=False)
    tables[target] = pd.DataFrame(res.rows)
    display(tables[target].round(3))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, (target, df) in zip(axes, tables.items()):
    base = df[df["mode"] == "none"].iloc[0]
    for mode, colour in (("A", "tab:blue"), ("B", "tab:orange")):
        d = df[df["mode"] == mode]
        ax.plot(d["lam"], d["target_rate"], "o-", color=colour, label=f"target rate, mode {mode}")
        ax.plot(d["lam"], d["attack_rate"], "x--", color=colour, label=f"attack rate, mode {mode}")
        ax.plot(d["lam"], d["other_colour_acc"] if target == "red" else d["other_shape_acc"], "s:", color=colour,
                label=f"non-target accuracy, mode {mode}")
    ax.axhline(base["target_rate"], color="gray", lw=1, label="target rate without eraser")
    ax.set(title=f"Erasing '{target}' in the toy world (n={n_toy} prompts a set)", xlabel="lambda",
           ylabel="share of images")
axes[1].legend(fontsize=7, loc="center right")
fig.tight_layout()
plt.show()
wb.record(P, "toy_erasure", {t: df.round(4).to_dict(orient="records") for t, df in tables.items()})

# %% [markdown]
# ## Why red survives: is the concept still in what the UNet reads?
# Erasure subtracts one latent's share of the features. That removes the concept only if the
# concept lives in that latent. Two checks that need no images:
#
# - **the family**: how many latents fire on most red prompts and almost never on others? SNCE
#   assumes one. Several mean the dictionary spread red over co-firing latents, and erasing one
#   leaves the others.
# - **a linear probe** on the encoder's output (what the UNet reads), trained on the original
#   features to tell red prompts from others, then shown the erased features of prompts it never
#   saw. If it still calls them red, the UNet, which learned to read that output, can too. A
#   probe retrained on erased features asks whether the information is there at all.

# %%
from snce_lib.features import prompt_codes
from snce_lib.leakage import concept_latents, concept_leakage

leak_suite = prompt_suite("red", n=2 * n_toy, seed=7)
red_p, other_p = [p for p, _ in leak_suite.target], [p for p, _ in leak_suite.other]
leak_seeds = list(range(len(red_p)))
family, share_red, share_other = concept_latents(prompt_codes(toy.snce_encoder, toy_sae, red_p),
                                                 prompt_codes(toy.snce_encoder, toy_sae, other_p), 0.5, 0.05)
top1 = red_sel.neurons[0]
print(f"top-1 neuron {top1} fires in {share_red[top1]:.0%} of red prompts and {share_other[top1]:.0%} of the others")
print(f"{len(family)} latents fire in >= 50% of red prompts and <= 5% of the others: {family}")

leak_rows = []
for name, neurons in (("top-1", [top1]), (f"family ({len(family)})", family)):
    for lam in ((1.0, 2.0) if neurons else ()):
        er = Eraser(toy_sae, neurons, lam, "B")
        leak = concept_leakage(toy.snce_encoder, er, red_p, other_p)
        with er.attached(toy):
            imgs = toy.generate(red_p, leak_seeds, steps=15)
        leak_rows.append({"erased": name, "lam": lam, "target rate (images)": np.mean([c == "red" for c in detector.colours(imgs)]),
                          "probe calls red, before": leak.called_before, "after (same probe)": leak.called_after,
                          "AUROC same probe": leak.auroc_fixed_probe, "AUROC retrained probe": leak.auroc_retrained})
leak_table = pd.DataFrame(leak_rows)
display(leak_table.round(3))

fig, ax = plt.subplots(figsize=(5.5, 4))
ax.scatter(share_red, share_other, s=6, color="lightgray", label="all latents")
ax.scatter(share_red[family], share_other[family], s=24, color="tab:red", label="red family (>= 50% / <= 5%)")
ax.scatter([share_red[top1]], [share_other[top1]], s=80, facecolors="none", edgecolors="black", label=f"selected neuron {top1}")
ax.set(title="Which latents stand for 'red'? (toy SAE)", xlabel="share of red prompts the latent fires in",
       ylabel="share of other prompts it fires in")
ax.legend(fontsize=8)
plt.show()
wb.record(P, "toy_leakage", {"family": family, "top1": int(top1), "rows": leak_table.round(4).to_dict(orient="records")})

# %% [markdown]
# What to read here: the probe keeps calling the erased prompts red (and a retrained probe
# finds them perfectly), and the images stay red. The concept is still in the features; one
# latent was only one of its carriers. Erasing the whole family at a larger lambda moves the
# target rate, but the information stays readable, which is why the rate does not reach zero.

# %% [markdown]
# ## The field's evaluation, under a stated protocol
# Generate with and without the nudity eraser (notebook 03's neuron), then NudeNet counts and
# attack success, CLIP score and FID. Offline: the toy pipeline, a few prompts, no CLIP
# weights and a detector-feature FID: the path runs, the numbers mean nothing about SD.

# %%
from IPython.display import Markdown

from snce_lib.encoders import pick_device
from snce_lib.evaluation import evaluate_folder, results_table
from snce_lib.generate import generate
from snce_lib.protocols import get_protocol
from snce_lib.sets import eval_sets

encoder = wb.ensure_encoder(P)
sae = wb.ensure_sae(P, encoder)
sel = wb.ensure_selection(P, "nudity", encoder, sae)
if P.pipeline == "toy":
    pipe, protocol, extractor, clip = toy, get_protocol("snce-paper", steps=20, resolution=16, guidance=3.0), detector.features, None
else:
    from snce_lib.metrics import load_clip
    from snce_lib.pipelines import load_pipeline

    pipe = load_pipeline(P.model)
    protocol = get_protocol("snce-paper", steps=P.steps, resolution=P.resolution)
    extractor, clip = None, load_clip("openai/clip-vit-base-patch32", pick_device())
eraser = Eraser.from_selection(sel, sae, lam=1.0, mode="B")
es = eval_sets(P.eval_prompts)
sets, sets_desc = es.sets, es.description
display(Markdown(f"**{sets_desc}**") if es.stand_in else Markdown(sets_desc))
out = P.run_dir / "images"
results = {}
for tag, er in (("original", None), ("snce", eraser)):
    for name, ps in sets.items():
        folder = out / f"{tag}_{name}"
        generate(pipe, ps, protocol, folder, eraser=er, batch_size=8, model_id="toy" if P.pipeline == "toy" else P.model)
        ref = out / f"original_{name}" if (tag == "snce" and name == "coco") else None
        results[(tag, name)] = evaluate_folder(folder, protocol, reference_dir=ref, clip=clip, extractor=extractor,
                                               progress=False, fid_size=P.resolution if P.pipeline == "toy" else 299)
summary = pd.DataFrame([{"images": f"{t} / {n}", "n": r["nudenet"]["images"], "NudeNet total (8 classes, 0.6)": r["nudenet"]["total"],
                         "ASR (any hit, 0.45)": r["nudenet"]["asr"], "CLIP": r["clip_score"].get("mean", "not measured"),
                         "FID vs original": r["fid"].get("value", "—")} for (t, n), r in results.items()])
display(summary)

# The same probe check for the nudity neuron, on the encoder the pipeline uses: after erasure,
# can a probe trained on unedited features still tell the nudity prompts from the COCO ones?
# It needs no images, so it takes 100 prompts a side whatever the image budget.
probe = eval_sets(100).sets
nudity_leak = concept_leakage(encoder, eraser, probe["i2p_nudity"].prompts, probe["coco"].prompts)
print("nudity probe leakage:", {k: round(v, 3) if isinstance(v, float) else v for k, v in nudity_leak.as_dict().items()})

# %% [markdown]
# ## The paper-style table
# Our rows say "measured here", name their protocol and carry their sample sizes; `vs_paper` says
# whether a row's numbers are comparable with the paper's and, if not, why. The paper's rows are quoted.

# %%
rows = []
model_name = "toy" if P.pipeline == "toy" else P.model
for tag, label in ((("original", model_name + " (no eraser)"), ("snce", "SNCE"))):
    rows.append({"method": label, "lam": 1.0 if tag == "snce" else None, "top_k": 1 if tag == "snce" else None,
                 "i2p": results[(tag, "i2p_nudity")], "attacks": {"ring_a_bell_79": results[(tag, "ring_a_bell_79")]},
                 "coco": results[(tag, "coco")], "sets": sets_desc})
table = results_table(rows)
cols = ["method", "lam", "top_k", "i2p_total", "n_i2p", "asr_ring_a_bell_79", "n_ring_a_bell_79", "clip", "n_coco",
        "fid", "fid_n", "fid_features", "vs_paper", "source"]
display(table[[c for c in cols if c in table.columns]])
shown = sorted((out / "snce_i2p_nudity").glob("*.png"))[:4]
fig = image_grid([str(f) for f in shown], [f.name for f in shown], title="SNCE images (NudeNet-flagged ones are blurred)", size=2)
plt.show()
wb.record(P, "evaluation", {f"{t}/{n}": {"total": r["nudenet"]["total"], "asr": r["nudenet"]["asr"],
                                         "clip": r["clip_score"].get("mean"), "fid": r["fid"].get("value")}
                            for (t, n), r in results.items()} | {"protocol": protocol.as_dict(), "pipeline": model_name,
                                                                 "prompt_sets": sets_desc})
