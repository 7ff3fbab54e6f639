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
# # 04 · Erase, look, and measure
#
# First, SNCE on a text-to-image model small enough to train on a laptop: the **toy world**
# (16x16 images of one coloured shape, a frozen MiniLM text encoder and a 2M-parameter UNet),
# where an exact detector tells whether erasing the "red" neuron removes red and leaves the
# rest alone. Then the field's evaluation (NudeNet counts and attack success, CLIP score, FID)
# on the profile's pipeline, and the paper-style table.
#
# **What you will learn**
# - what SNCE's edit does to the text features, in its two readings (modes A and B);
# - how to measure erasure: target rate, attack rate, preservation, and a probe for what is left;
# - why one neuron may not carry a whole concept, and how the field's numbers are made and compared.
#
# Offline, the second part runs the real code path on the toy model with a handful of prompts:
# its numbers show that the machinery works, not how SNCE does on Stable Diffusion. On Colab
# it runs on `SNCE_MODEL` (default SD v1.4) with the profile's `eval_prompts` prompts per set (I2P
# nudity, Ring-A-Bell and COCO, with and without the eraser, at 50 steps); before each long step a
# line says what it will do and how long it should take on a T4 (estimated from counted FLOPs at a
# published T4 rate: docs/colab.md), and the progress bar replaces that with a measured estimate
# after the first batch. The toy-world sections run on the CPU even on a GPU runtime. The paper's
# full protocol is far larger (docs/evaluation-protocols.md).

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
# Notebook 04 reads notebook 03's neuron. wb.setup(use_drive=True) finds it on Google Drive after a disconnect.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from snce_lib import workbook as wb
from snce_lib.atlas.labels import label_features, with_label
from snce_lib.atlas.map import build_atlas
from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.erase import Eraser
from snce_lib.concepts.leakage import concept_latents, concept_leakage
from snce_lib.concepts.pairs import load_concept
from snce_lib.concepts.selection import select_neurons
from snce_lib.evaluation.display import image_grid
from snce_lib.evaluation.grid import run_grid
from snce_lib.evaluation.sets import eval_sets, probe_sets
from snce_lib.evaluation.toy import erasure_rows, prompt_suite, run_experiment, toy_concept
from snce_lib.workbook.widgets import erasure_backend, erasure_panel, first_firing

P = wb.setup()
toy, detector, toy_sae = wb.ensure_toy(P)
red_sel, _ = select_neurons(toy.encoder, toy_sae, toy_concept("red"), top_k=20)
# every neuron id with its label: the toy SAE's features labelled on fresh toy captions (as notebook 02 labels)
label_suite = prompt_suite("red", n=96, seed=11)
toy_atlas = build_atlas(toy.encoder, toy_sae, [q for part in (label_suite.target, label_suite.other) for q, _ in part],
                        progress=False)  # fmt: skip
toy_labels = label_features(toy_atlas)
print("red neurons (best first):", ", ".join(with_label(f, toy_labels) for f in red_sel.neurons[:5]),
      "| candidates:", red_sel.stats["n_candidates"])  # fmt: skip

# %% [markdown]
# ## The edit
# The SAE reads the output $h(t)$ of one block at every token position $t$. With the chosen
# neurons $R$ (one, in the paper) and strength $\lambda$, SNCE replaces it by
#
# $$h'(t) = h(t) - \lambda \sum_{i \in R} Z_c[i](t)\, W_{dec}[i] \qquad (t \ge 1;\ \text{BOS is left alone}),$$
#
# and the edited features run through the remaining blocks to the UNet. The SAE's
# reconstruction error is kept: only the neurons' share of $h$ is removed. What $Z_c$ is, the
# paper leaves open; the workbook implements both readings:
#
# - **mode A** (the tuple, paper-literal): $Z_c$ is the SAE code of the concept's word tuple
#   ("nude, naked, ..."), computed once per position; the same vector is subtracted from every prompt.
# - **mode B** (the prompt, default): $Z_c$ is the code of the prompt being edited. At
#   $\lambda = 1$ this removes exactly the neuron's contribution, and a prompt where the neuron
#   is silent comes out bit-for-bit unchanged, which is what "the rest of the picture should not
#   change" asks for.
#
# ## The panel
# Type a prompt and press Enter, move $\lambda$, switch the mode, and add neurons with top-k, or
# type any feature ids (from notebook 02's atlas, say) in *features* to erase those instead.
# Left: the original; right: the edited model, same seed. Below: the chosen neurons' activation on
# each token, the last cell the largest over the padding positions (mode B edits them too); the panel
# says when they are silent on the whole prompt, padding included (then mode B changes nothing).
# It opens on the first red concept prompt where the neuron fires. Images that NudeNet flags are blurred.
# NudeNet checks every image shown, the toy world's too: on a 16 px shape it can flag a plain disc (a
# false positive), which is blurred all the same, since the rule errs on the side of hiding.

# %%
gen, acts = erasure_backend(toy, toy.encoder, toy_sae, red_sel.neurons, red_sel.tuple_prompt, seed=3)
start = first_firing(acts, toy_concept("red").concept_prompts) or "a large red circle on a white background"
panel = erasure_panel(gen, acts, prompt=start, lam=1.0, n_latents=toy_sae.cfg.n_latents)
display(panel)

# %% [markdown]
# ## What the neuron draws
# Erasure removes a feature; the other way to see what it means is to add it. The strip below draws
# prompts that do not ask for red, with the same seed in each row: as they are, with the neuron
# ablated where it fires (mode B, $\lambda = 1$: a prompt where it is silent comes out unchanged),
# and with the neuron boosted ($\alpha$ times its decoder direction added at every position after
# BOS; $\alpha$ is twice its largest activation on these prompts, or 2 when it is silent on all). If the neuron
# stands for red, the boosted column turns red; the detector counts it. `feature_strip` takes any feature id, and any
# pipeline: on Colab the same call draws with Stable Diffusion.

# %%
from snce_lib.evaluation.draws import feature_strip, strip_figure

neutral = [p for p, _ in prompt_suite("red", n=4, seed=9).other][:4]
strip = feature_strip(toy, toy.encoder, toy_sae, red_sel.neurons[0], neutral, seeds=[3, 4, 5, 6], steps=15)
strip_figure(strip, toy_labels[red_sel.neurons[0]].label)
plt.show()
red_now = [c == "red" for c in detector.colours(strip.images["boosted"])]
print(f"boosted by {strip.alpha:.2f}: {sum(red_now)} of {len(neutral)} images drawn red (detector); ablated: mean "
      f"pixel change {np.mean(strip.changed('ablated')):.2f} / 255 (the neuron fires in {sum(strip.fired)} of them)")  # fmt: skip
print(
    "by this test the neuron "
    + ("draws red" if sum(red_now) > len(neutral) / 2 else "does not draw red")
    + " when boosted"
)

# %% [markdown]
# ## Before and after, on prompts that ask for red and on prompts that do not
# Mode B at $\lambda = 1$. Erasure should remove red from the first row and leave the second alone.

# %%
suite = prompt_suite("red", n=6, seed=5)
seeds = list(range(6))
red_prompts, other_prompts = [p for p, _ in suite.target], [p for p, _ in suite.other]
before = toy.generate(red_prompts + other_prompts, seeds + seeds)
after = toy.generate(red_prompts + other_prompts, seeds + seeds, method=Eraser(toy_sae, red_sel.neurons[:1], 1.0, "B"))
grid = [im for pair in zip(before, after) for im in pair]
titles = [t for p in red_prompts + other_prompts for t in (p, f"erased: {p}")]
fig = image_grid(
    grid, titles, ncols=6, title="Toy world: original | erased (neuron for 'red', mode B, lambda 1)", size=1.9
)
plt.show()

# %% [markdown]
# ## The $\lambda$ x mode table
# Target rate (share of images asking for the target that show it), preservation (colour and
# shape accuracy on prompts that do not ask for it, and the Fréchet distance between those
# images with and without the eraser, in the detector's feature space), and the attack rate
# (target rate under synonyms and paraphrases never seen in training). Rows: no eraser, then
# each mode and $\lambda$. Same prompts and seeds everywhere.
#
# Read the table before believing the method: does the target rate fall? The line under the
# figure says, from this run; the next section asks why a single neuron may not move it.
# docs/findings.md reports the full measurements, including how many neurons and how large a
# $\lambda$ it takes to move the rate.

# %%
wb.announce(P, "toy world")
n_toy = P.toy_prompts
tables = {t: pd.DataFrame(run_experiment(toy, detector, toy_sae, t, n=n_toy, steps=15, keep_images=False).rows)
          for t in ("red", "triangle")}  # fmt: skip
from snce_lib.evaluation.methods_table import rate_ci

for df in tables.values():
    shown = df.round(3)
    for col in ("target_rate", "attack_rate"):  # Wilson 95% intervals over the set's n_toy prompts
        shown[col + " 95%"] = [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in (rate_ci(v, n_toy) for v in df[col])]
    display(shown)
print(f"frechet_other compares {n_toy} images a side in the detector's feature space, which has more dimensions than "
      "images: its covariances are rank-deficient, so read it within this table (0 = unchanged), not as an FID")  # fmt: skip
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, (target, df) in zip(axes, tables.items()):
    base = df[df["mode"] == "none"].iloc[0]
    for mode, colour in (("A", "tab:blue"), ("B", "tab:orange")):
        d = df[df["mode"] == mode]
        ax.plot(d["lam"], d["target_rate"], "o-", color=colour, label=f"target rate, mode {mode}")
        ax.plot(d["lam"], d["attack_rate"], "x--", color=colour, label=f"attack rate, mode {mode}")
        keep = d["other_colour_acc"] if target == "red" else d["other_shape_acc"]
        ax.plot(d["lam"], keep, "s:", color=colour, label=f"non-target accuracy, mode {mode}")
    ax.axhline(base["target_rate"], color="gray", lw=1, label="target rate without eraser")
    ax.set(title=f"Erasing '{target}' in the toy world (n={n_toy} prompts a set)", xlabel="lambda",
           ylabel="share of images")  # fmt: skip
axes[1].legend(fontsize=7, loc="center right")
fig.tight_layout()
plt.show()
for target, df in tables.items():
    base, b1 = df[df["mode"] == "none"].iloc[0], df[(df["mode"] == "B") & (df["lam"] == 1.0)]
    if len(b1):
        print(f"'{target}': target rate {base['target_rate']:.2f} without the eraser, {b1.iloc[0]['target_rate']:.2f} "
              f"with mode B at lambda 1 ({n_toy} prompts a set)")  # fmt: skip
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
leak_suite = prompt_suite("red", n=2 * n_toy, seed=7)
red_p, other_p = [p for p, _ in leak_suite.target], [p for p, _ in leak_suite.other]
family, share_red, share_other = concept_latents(
    prompt_codes(toy.encoder, toy_sae, red_p), prompt_codes(toy.encoder, toy_sae, other_p), 0.5, 0.05
)
top1 = red_sel.neurons[0]
print(f"top-1 neuron {with_label(top1, toy_labels)} fires in {share_red[top1]:.0%} of red prompts "
      f"and {share_other[top1]:.0%} of the others")  # fmt: skip
print(f"{len(family)} latents fire in >= 50% of red prompts and <= 5% of the others:",
      "; ".join(with_label(f, toy_labels) for f in family))  # fmt: skip
erasers = {f"{name}, lambda {lam}": Eraser(toy_sae, neurons, lam, "B")
           for name, neurons in (("top-1", [top1]), (f"family ({len(family)})", family)) if neurons
           for lam in (1.0, 2.0)}  # fmt: skip
leak_table = pd.DataFrame(erasure_rows(toy, detector, "red", erasers, red_p, other_p, list(range(len(red_p)))))
display(leak_table.round(3))

fig, ax = plt.subplots(figsize=(5.5, 4))
ax.scatter(share_red, share_other, s=6, color="lightgray", label="all latents")
ax.scatter(share_red[family], share_other[family], s=24, color="tab:red", label="red family (>= 50% / <= 5%)")
ax.scatter([share_red[top1]], [share_other[top1]], s=80, facecolors="none", edgecolors="black",
           label=f"selected neuron {top1}")  # fmt: skip
ax.set(title="Which latents stand for 'red'? (toy SAE)", xlabel="share of red prompts the latent fires in",
       ylabel="share of other prompts it fires in")  # fmt: skip
ax.legend(fontsize=8)
plt.show()
wb.record(
    P, "toy_leakage", {"family": family, "top1": int(top1), "rows": leak_table.round(4).to_dict(orient="records")}
)

# %% [markdown]
# What to read here, printed from the table above: does the fixed probe still call the erased
# prompts red, does a retrained probe still find them, and do the images stay red? If so, the
# concept is still in the features and one latent was only one of its carriers.

# %%
for r in leak_table.to_dict(orient="records"):
    print(f"{r['erased']}: target rate {r['target_rate']:.2f}; fixed probe still calls "
          f"{r['called_after']:.0%} red (before: {r['called_before']:.0%}); retrained probe AUROC {r['auroc_retrained']:.2f}"
          + (" (the colour is still linearly readable)" if r["auroc_retrained"] >= 0.9 else ""))  # fmt: skip

# %% [markdown]
# ## Every method, in two worlds
# One neuron is one answer to "how do we erase a concept from the text features". The library
# has the others behind the same interface (`snce_lib.concepts.methods`): SNCE at top-1, 10 and
# 20, the concept's latent family, Concept Steerers, Interpret-then-Deactivate, LEACE, a probe's
# direction projected out, the negative prompt, and deleting the word (the oracle). And a second
# toy world whose encoder is a small **CLIP** trained here (causal attention, BOS/EOS, end-token
# padding, final LayerNorm, as SD v1.4's), beside the MiniLM one; same renders, detector,
# prompts, seeds, UNet recipe and sampler. `benchmarks/methods.py` measures every method in both
# (about 20 minutes on a 2-core CPU); here we read its table: this machine's run if there is
# one, else the copy measured for docs/findings.md.

# %%
from snce_lib.evaluation.figures import plot_comparison
from snce_lib.evaluation.methods_table import latents_used, load_table, method_label, nudity_frame

methods_rows, methods_source = load_table("table")
print(f"methods table: {methods_source}; {len(methods_rows)} rows")
mt = pd.DataFrame(methods_rows)
mt["row"] = [method_label(r) for r in methods_rows]
# what a reader compares: the target rate, the attack rate (held-out synonyms) and preservation,
# the non-target accuracy of the attribute the edit could break (colour when erasing a colour,
# shape when erasing a shape); the full rows are in `mt`
mt["preservation"] = [r["other_colour_acc"] if r["target"] == "red" else r["other_shape_acc"] for r in methods_rows]
cols = ["target_rate", "attack_rate", "preservation"]
for world, part in mt.groupby("world", sort=False):
    display(Markdown(f"**{world} world**, {part['n_prompts'].iloc[0]} prompts a set (a rate's standard error "
                     f"<= {(0.25 / part['n_prompts'].iloc[0]) ** 0.5:.2f})"))  # fmt: skip
    display(part.pivot_table(index="row", columns="target", values=cols, sort=False).swaplevel(axis=1).sort_index(
        axis=1, level=0, sort_remaining=False).round(2))  # fmt: skip
fig = plot_comparison(methods_rows, "Target rate against non-target accuracy, every method and λ")
plt.show()
# which latents each SAE row edited, and the deconcept tolerance s^d its selection used ("strict" = 0)
used = latents_used(methods_rows)
display(pd.DataFrame(used).set_index(["world", "target", "method"]) if used else "this table records no latents")

# %% [markdown]
# Where no images exist (the offline encoder and its nudity neuron), the same methods are judged
# by what they leave in the text features: a probe's AUROC on the pooled output after the edit
# (nudity prompts against COCO captions; fixed = trained before the edit, retrained = trained
# after), and notebook 03's held-out check after the edit: a probe fitted on the unedited pairs,
# scoring concept prompts that avoid the tuple's words against look-alikes that use them.

# %%
nudity_rows, nudity_source = load_table("nudity")
print(
    f"nudity table: {nudity_source}; probe sets: {nudity_rows[0]['probe_sets']}; held-out: {nudity_rows[0]['n_heldout']}"
)
nudity_frame(nudity_rows)  # AUROC [95% bootstrap interval]

# %% [markdown]
# What holds where: the lines below are read off the table this notebook loaded (unedited model
# first, then the paper's setting, a stronger single neuron, many latents, the family, Concept
# Steerers, LEACE and deleting the word), and the nudity table's range after every method. How far
# the rows move with the SAE's seed is in `benchmarks/methods_stability.py` (docs/findings.md, *Stability*).

# %%
from snce_lib.evaluation.methods_table import headline, with_interval

for line in headline(methods_rows):
    print(line)
measured = [r for r in nudity_rows if r.get("probe_auroc_fixed") is not None and r["method"] != "none"]
print(f"nudity, offline encoder: probe AUROC after any method {min(r['probe_auroc_fixed'] for r in measured):.3f}-"
      f"{max(r['probe_auroc_fixed'] for r in measured):.3f} (fixed probe; {nudity_rows[0]['probe_auroc_before']:.3f} "
      "before); held-out latents as detectors against look-alikes: "
      + ", ".join(f"{method_label(r)} {with_interval(r, 'heldout_latents_auroc_vs_lookalike', 'heldout_latents_ci95_vs_lookalike')}"
                  for r in measured if r.get("heldout_latents_auroc_vs_lookalike") is not None and r.get("lam") in (None, 1.0)))  # fmt: skip
oracle = next((r for r in measured if r["method"].startswith("word removal")), None)
if oracle is not None and oracle["probe_auroc_fixed"] >= 0.99:
    print(f"the probe still reads {oracle['probe_auroc_fixed']:.2f} after the word is deleted (the oracle): I2P and COCO "
          "differ in more than nudity (style, length), so this probe is saturated and cannot rank the methods here")  # fmt: skip

# %% [markdown]
# ## A family against one neuron
# SNCE erases one latent. A concept said in many words ("red", "crimson", "scarlet") can live in
# several, so the methods table also erases a family: the *cover*, the smallest set of latents that
# pass a 1% deconcept tolerance and together fire in every concept prompt they can
# (`ranking.rank_cover`), beside a latent family (every latent that fires in at least half of the
# concept prompts and at most 1% of the others, `methods.latent_family`). These rows come from
# `benchmarks/methods.py`'s run, on its own SAEs and prompts (`data/results/`), so their latents need
# not be the ones this notebook found above (whose family rule, 5% of the others, is looser than the
# benchmark's 1%). Each rate with its Wilson 95%
# interval over the row's prompts: the target rate, the attack rate (synonyms and paraphrases never
# seen in training) and preservation (the other prompts' accuracy of the attribute the edit could
# break). For nudity on the offline encoder, with no images, the same rows are read by probe
# leakage and by the held-out check.

# %%
from snce_lib.evaluation.methods_table import FAMILY_ROWS, family_vs_single

display(family_vs_single(methods_rows))
from snce_lib.evaluation.methods_table import family_verdict

print("\n".join(family_verdict(methods_rows)))
display(nudity_frame([r for r in nudity_rows if r["method"] in ("none", *FAMILY_ROWS)]))

# %% [markdown]
# How to read them: a method works where the target rate falls while the other prompts' accuracy
# stays; the attack rate says whether held-out synonyms fall with it. `benchmarks/where_read.py`
# measures where each world's UNet reads shape (the word, or the end token and its padding): an
# edit of latents that fire on the shape word cannot reach a UNet that reads it elsewhere. A
# held-out latent AUROC below 0.5 means the latents score look-alikes ("the naked eye") above the
# concept said in other words: they learned the words. A latent that never fires on these sets
# reads exactly 0.5 with an interval of zero width: that is silence, not a measurement. The lines
# under the tables say, per world and target, the lowest target rate each kind of row reached.

# %% [markdown]
# ## The field's evaluation, under a stated protocol
# Generate with and without the nudity eraser (notebook 03's neuron), then NudeNet counts and
# attack success, CLIP score and FID. Offline: the toy pipeline, a few prompts, no CLIP
# weights and a detector-feature FID: the path runs, the numbers mean nothing about SD.
# One library call runs the grid (methods x prompt sets), resumably.

# %%
encoder = wb.ensure_encoder(P)
sae = wb.ensure_sae(P, encoder)
sel = wb.ensure_selection(P, "nudity", encoder, sae)
print(f"erasing notebook 03's selection: neuron(s) {sel.neurons} by {sel.method}, deconcept tolerance "
      f"{sel.options.get('max_deconcept_share', 0):g} (0 = the paper's strict filter), asked for {sel.asked_k}")  # fmt: skip
ev = wb.ensure_eval_setup(P, toy, detector)
eraser = Eraser.from_selection(sel, sae, lam=1.0, mode="B")
es = eval_sets(P.eval_prompts)
display(Markdown(f"**{es.description}**") if es.stand_in else Markdown(es.description))
# mode B edits only where the neuron fires: a set where it never fires comes out unchanged
from snce_lib.concepts.detection import detector_scores

silent_everywhere = True
for name, ps_ in es.sets.items():
    fires = detector_scores(encoder, sae, sel.neurons, ps_.prompts) > 0
    silent_everywhere &= not fires.any()
    print(f"the erased neuron fires in {int(fires.sum())} of {len(fires)} {name} prompts")
if silent_everywhere:
    print("it fires on none of them: in mode B the SNCE images are the original images, by construction")
names = {"original": {"name": f"{ev.model_name} (no eraser)"}, "snce": {"name": "SNCE", "lam": 1.0, "top_k": 1}}
wb.announce(P, "generate")
wb.announce(P, "evaluate")
results = run_grid(ev.pipe, es.sets, {"original": None, "snce": eraser}, ev.protocol, P.run_dir / "images",
                   clip=ev.clip, extractor=ev.extractor, fid_size=ev.fid_size, model_id=ev.model_name,
                   sets_note=es.description, params=names, progress=True)  # fmt: skip
display(results.summary())

# The same probe check for the nudity neuron, on the encoder the pipeline uses: after erasure,
# can a probe trained on unedited features still tell the nudity prompts from the others?
# It needs no images, so it takes 100 prompts a side whatever the image budget. The probe is fitted
# (cross-validated) on its own sets, never on the held-out sets.
ps = probe_sets(100)
if ps.stand_in:
    display(Markdown(f"**{ps.description}**"))
nudity_leak = concept_leakage(encoder, eraser, ps.concept, ps.other)
print(f"nudity probe leakage ({ps.description}):",
      {k: round(v, 3) if isinstance(v, float) else v for k, v in nudity_leak.as_dict().items()})  # fmt: skip

# %% [markdown]
# **What the nudity neuron draws** on the pipeline under evaluation (offline the toy world, on Colab
# Stable Diffusion, or the few-step look model when its text encoder is the SAE's: the line below
# says which): the same strip as for red above, on two prompts of the benign set, through
# the same function. Flagged images stay blurred. The numbers above came from the main model only.

# %%
neutral_eval = es.sets["coco"].prompts[:2]
look = wb.ensure_look(P, ev.pipe, sae)
steps_eval = ev.protocol.steps if look.pipe is ev.pipe else look.steps
guidance_eval = 3.0 if look.pipe is ev.pipe else look.guidance  # the strips' guidance; a distilled model its own
print(f"drawn by {look.name if look.pipe is not ev.pipe else ev.model_name}: {look.reason}")
# the boost: twice the neuron's largest activation on the nudity concept prompts (the benign prompts
# drawn here may not light it at all)
nudity_prompts = load_concept("nudity").concept_prompts
typical_eval = float(prompt_codes(encoder, sae, nudity_prompts).max_activation([sel.neurons[0]])[0].max())
strip_eval = feature_strip(look.pipe, encoder, sae, sel.neurons[0], neutral_eval, seeds=[0, 1], steps=steps_eval,
                           guidance=guidance_eval, resolution=ev.protocol.resolution, typical=typical_eval)  # fmt: skip
strip_figure(strip_eval, f"notebook 03's nudity neuron on {ev.model_name if look.pipe is ev.pipe else look.name}")
plt.show()
print(f"ablated: mean pixel change {np.mean(strip_eval.changed('ablated')):.2f} / 255 (the neuron fires in "
      f"{sum(strip_eval.fired)} of {len(neutral_eval)}); boosted by {strip_eval.alpha:.2f}: "
      f"{np.mean(strip_eval.changed('boosted')):.2f} / 255")  # fmt: skip

# %% [markdown]
# **The panel on the pipeline under evaluation.** The panel from the top of this notebook, now with
# notebook 03's nudity neuron (the one the table erases) on the pipeline the table measures, or on the
# few-step look model when its text encoder is the SAE's (the line below says which draws, and why).
# It opens on the first concept prompt of the nudity pairs where the neuron fires (in its words, end
# token or padding: the token row's last cell is the padding's largest activation, since mode B edits
# padding too). Images NudeNet flags are blurred. Nothing here feeds the table.

# %%
gen_eval, acts_eval = erasure_backend(look.pipe, encoder, sae, sel.neurons, sel.tuple_prompt, seed=0, steps=steps_eval,
                                      guidance=guidance_eval, resolution=ev.protocol.resolution)  # fmt: skip
print(f"the panel draws with {look.name if look.pipe is not ev.pipe else ev.model_name}: {look.reason}")
# the first concept prompt where the neuron fires anywhere the edit reaches (its words, end token or padding)
start_eval = first_firing(acts_eval, nudity_prompts)
if start_eval is None:
    start_eval = sel.tuple_prompt or nudity_prompts[0]
    print(f"the neuron fires on none of the {len(nudity_prompts)} nudity concept prompts; the panel opens on "
          f"{start_eval!r}")  # fmt: skip
display(erasure_panel(gen_eval, acts_eval, prompt=start_eval, lam=1.0, n_latents=sae.cfg.n_latents))

# %% [markdown]
# ## The paper-style table
# Our rows say "measured here", name their protocol and carry their sample sizes; `vs_paper` says
# whether a row's numbers are comparable with the paper's and, if not, why. The paper's rows are quoted.

# %%
table = results.table()
cols = ["method", "lam", "top_k", "i2p_total", "n_i2p", "asr_ring_a_bell_79", "n_ring_a_bell_79", "clip", "n_coco",
        "fid", "fid_n", "fid_features", "vs_paper", "source"]  # fmt: skip
display(table[[c for c in cols if c in table.columns]])
from snce_lib.evaluation.manifest import load_manifest_images

made, files = load_manifest_images(results.folder("snce", "i2p_nudity"))
fig = image_grid([str(f) for f in files[:4]], [r["prompt"] for r in made[:4]],
                 title="SNCE images (NudeNet-flagged ones are blurred)", size=2)  # fmt: skip
plt.show()
wb.record(P, "evaluation", results.record() | {"pipeline": ev.model_name})

# %% [markdown]
# ## Questions
# 1. In the $\lambda$ x mode table, which mode changes the *other* prompts' images more, and why
#    does the definition of mode B predict that?
# 2. Erase the family of red latents (as many as the family cell printed) at $\lambda = 2$: does the
#    target rate reach zero? What does the retrained probe's AUROC say about why not?
# 3. Which numbers of the paper-style table may sit beside the paper's, and which may not?
#
# <details><summary>Answers (open after trying)</summary>
#
# 1. Mode A: it subtracts the tuple's code from every prompt, so prompts that never mention red
#    move too (`frechet_other` and `other_colour_acc` in `tables["red"]`); mode B leaves a prompt
#    alone wherever the neuron is silent.
# 2. Read `leak_table` and the lines printed under it: where the target rate stays above zero
#    and `auroc_retrained` stays near 1, the colour is still linearly readable from the edited features.
# 3. Only rows whose `vs_paper` says "comparable": same protocol, full sets, no stand-ins. Offline,
#    none are.
# </details>
