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
# # 00 · Sparse dictionaries from first principles
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/snce-workbook/snce/blob/main/notebooks/00_sparse_dictionaries.ipynb)
#
# Before we look for a "nudity neuron" in a real text encoder (notebooks 01-04), we build the tool
# where **we know the answer**. You train the model that stores features in superposition, then
# write the sparse autoencoder that recovers them, and check every step against the truth. Every
# number is measured in this notebook, on your machine, with no GPU and no network; it needs no
# other notebook, and its cells run in about two minutes on a laptop CPU.
#
# **Plan about an hour and a half** for reading, the five exercises and the three predictions.
#
# **What you will learn**
# 1. superposition: a model that packs more features than dimensions once they are sparse, and
#    what principal components can and cannot find;
# 2. an SAE in a dozen lines: encode, TopK, decode, FVU, written by you;
# 3. the training step with AuxK, written by you, and recovery of the toy model's features from
#    the chance line up;
# 4. ReLU + L1 against TopK at the same sparsity and the same budget, and L1's shrinkage;
# 5. dead latents, and what AuxK does about them, with your own training step;
# 6. dictionary size: duplicates, splitting and absorption, measured against baselines.
#
# Exercises are marked ✍️. Each check says whether your answer is right, and if not, which
# mistake it sees; the cells after an exercise run on *your* function, so write them in order.
# The reference answers sit in a closed *Answer* box below each exercise. A *prediction* asks you
# to write down what you expect before the cell that measures it runs.

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
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from snce_lib import workbook as wb
from snce_lib.workbook import exercises as ex

P = wb.setup()
torch.set_num_threads(1)  # the matrices here are tiny: more threads only wait on each other
book = ex.Exercises()  # which exercises passed, and the predictions waiting for their measurement
t_start = time.perf_counter()

# %% [markdown]
# ## 1 · Superposition, built by you
# **Goal:** train the model in which superposition was first shown, and watch it store more
# features than it has dimensions once the features are sparse.
#
# The *toy model of superposition* (Elhage et al. 2022) squeezes $n$ features through $m < n$
# hidden dimensions and back:
#
# $$h = W x, \qquad x' = \mathrm{ReLU}(W^\top h + b), \qquad
#   \mathcal{L} = \mathbb{E}_x \sum_i I_i\,(x_i - x'_i)^2 .$$
#
# $W$ is $m \times n$: column $W_i$ is where feature $i$ is written. Each feature is on with
# probability $p$ (its value then uniform between 0 and 1), and the importance $I_i$ falls with
# $i$, so the loss cares most about the first features. We use $n = 80$ features and $m = 20$
# dimensions. If $p = 1$ (every feature always on), the best the model can do is keep its $m$
# most important features, one orthogonal direction each. The question is what it does when
# features are rarely on together.
#
# ✍️ **Exercise 1.** Write `toy_forward(x, W, b)` for a batch: `x` is `[batch, n]`, `W` is
# `[m, n]`, `b` is `[n]`, and the result is `[batch, n]`. The models below train on your function.


# %%
def toy_forward(x, W, b):
    """x [batch, n], W [m, n], b [n] -> ReLU(W^T W x + b) for every row, [batch, n]."""
    raise NotImplementedError  # your code here (1 line)


toy_forward = book.check("toy_forward", toy_forward)

# %% [markdown]
# <details><summary>Answer</summary>
#
# ```python
# def toy_forward(x, W, b):
#     return torch.relu((x @ W.T) @ W + b)
# ```
# `x @ W.T` is $h$ for every row, `@ W` maps it back with $W^\top$.
# </details>
#
# ✍️ **Prediction 1.** Six models train at once, one per sparsity, from $p = 1$ down to one
# feature in a hundred. A feature counts as *represented* when its column has norm at least 0.5
# (a dropped feature's column shrinks to zero). At the sparsest setting, how many of the 80
# features will the 20-dimensional model represent? Write a number, then run the cell after.

# %%
book.predict("features represented at the sparsest p", "your prediction")

# %%
from snce_lib.sae.superposition import feature_norms, summarise, train_toy_models

SPARSITIES = (1.0, 0.3, 0.1, 0.05, 0.02, 0.01)
models = train_toy_models(
    n_features=80, d_hidden=20, p_active=SPARSITIES, steps=3000, forward=toy_forward, progress=True
)
phase = pd.DataFrame(summarise(models)).set_index("p_active")
display(phase.round(2))
book.reveal("features represented at the sparsest p", int(phase["represented"].iloc[-1]), " of 80")
dense, sparse = phase.iloc[0], phase.iloc[-1]
print(f"p = {phase.index[0]:g}: {dense['represented']:.0f} features represented in {dense['hidden dims']:.0f} dimensions; "
      f"p = {phase.index[-1]:g}: {sparse['represented']:.0f} in the same {sparse['hidden dims']:.0f}")  # fmt: skip
g = torch.Generator().manual_seed(0)  # a check batch, not a training batch
xs = (torch.rand(512, 80, generator=g) < 0.05) * torch.rand(512, 80, generator=g)
mine, lib = (float((models.importance * (xs - f(xs, models.W[3], models.b[3])).pow(2)).sum(1).mean()) for f in (toy_forward, ex.reference_toy_forward))  # fmt: skip
print(f"loss of the p = {models.p_active[3]:g} model on a check batch: with your toy_forward {mine:.5f}, "
      f"with the library's {lib:.5f}")  # fmt: skip

# %%
shown = [0, 2, 3, 5]
fig = plt.figure(figsize=(16, 3.8), layout="constrained")
ax = fig.add_subplot(1, 1 + len(shown), 1)
ax.plot(phase.index, phase["represented"], marker="o", label="features represented")
ax.axhline(20, color="k", ls="--", lw=1, label="hidden dimensions m")
ax.axhline(80, color="grey", ls=":", lw=1, label="features n")
ax.set(xscale="log", title="More features than dimensions\nonce features are sparse", xlabel="p (share of samples a feature is on)",
       ylabel="features (norm ≥ 0.5)")  # fmt: skip
ax.invert_xaxis()
ax.legend(fontsize=8)
for j, i in enumerate(shown):
    a = fig.add_subplot(1, 1 + len(shown), j + 2)
    wtw = (models.W[i].T @ models.W[i]).numpy()
    im = a.imshow(wtw, cmap="RdBu", vmin=-1, vmax=1)
    n_rep = int((feature_norms(models.W[i]) >= 0.5).sum())
    a.set(title=f"WᵀW at p = {models.p_active[i]:g}\n{n_rep} represented", xlabel="feature j", ylabel="feature i")
fig.colorbar(im, ax=fig.axes[1:], shrink=0.8, label="Wᵢ · Wⱼ (diagonal: norm²)")
plt.show()

# %% [markdown]
# Read the figure from left to right. With dense features the model keeps as many features as it
# has dimensions and drops the rest, and $W^\top W$ is a clean block of the identity: no two kept
# features overlap. As $p$ falls, it represents more and more features than dimensions; the
# off-diagonal entries of $W^\top W$ are the *interference* it accepts in exchange. A feature that
# is on rarely meets the features it overlaps with, and when it does, the ReLU after a negative
# bias cuts the small interference off (the table's last column: the bias sits near zero with the
# densest features and turns negative as they get sparse). The column before it counts the
# represented features that share their direction with others (Elhage's interference measure at
# least 0.1).
#
# **Measured in this section:** features represented against dimensions at each sparsity, and the
# loss of your function beside the library's on the same weights.
#
# ### 1b · What PCA can and cannot do
# **Goal:** know when principal components find features, so that you know why we need more.
#
# PCA returns at most $d$ orthogonal directions, ranked by variance. The cell compares, for each
# planted feature, its best match among the principal directions, the coordinate axes, and a
# random orthonormal basis (what any $d$ orthogonal directions give by chance), first on the toy
# model's hidden layer, then on planted data with and without superposition.

# %%
from snce_lib.sae.planted import axis_match, pca_limits, pca_match, random_basis_match
from snce_lib.sae.superposition import as_planted

toy = as_planted(models, instance=3, n_samples=20_000)  # the p = 0.05 model's hidden layer: the SAE's data below
print(f"the p = {models.p_active[3]:g} model's hidden layer: {len(toy.x):,} samples of width {toy.x.shape[1]}, "
      f"{len(toy.dirs)} represented features; features on per sample: mean {(toy.coef > 0).sum(1).float().mean():.2f}")  # fmt: skip
print(f"its features' best |cosine|, median: PCA {pca_match(toy.x, toy.dirs).median():.2f}, coordinate axis "
      f"{axis_match(toy.dirs).median():.2f}, random orthonormal basis {random_basis_match(toy.dirs).median():.2f}")  # fmt: skip
display(pd.DataFrame(pca_limits(d=32)).set_index("case").round(2))

# %% [markdown]
# On the toy model PCA does little better than the random basis. In the table it beats the random
# basis in every case, since its directions lie in the span the features fill, but it matches the
# features themselves (best cosine near 1) in one case only, the last row: orthogonal features
# whose variances differ. Superposition is not what stops it: with as many
# random features as dimensions, or half as many, it stays far from them, and even orthogonal
# features escape it when their variances tie. Principal directions are the eigenvectors of the
# covariance, and the covariance of independent features is
# $\sum_i \mathrm{Var}(c_i)\, f_i f_i^\top$: when the $f_i$ are orthogonal with distinct
# variances, its eigenvectors are the $f_i$; when variances tie, any rotation of them is an
# eigenbasis too; when the $f_i$ are not orthogonal, no orthogonal basis can be them. The
# covariance never sees *sparsity*, which is what tells the features apart. A sparse dictionary uses it.
#
# **Measured:** the median best match of PCA, the axes and a random basis in five cases.
#
# ## 2 · An SAE in a dozen lines
# **Goal:** write the sparse autoencoder's forward pass and its error measure yourself.
#
# A TopK sparse autoencoder with $m$ latents:
#
# $$z = \mathrm{TopK}_k\big(\mathrm{ReLU}(W_{enc}(x - b_{pre}) + b_{enc})\big), \qquad \hat x = b_{pre} + z\,W_{dec},
# \qquad \mathrm{FVU} = \frac{\sum_n \lVert x_n - \hat x_n\rVert^2}{\sum_n \lVert x_n - \bar x\rVert^2}.$$
#
# ✍️ **Exercise 2.** Write `topk_encode`: the dense code $z$ (zeros off the top $k$).
# ✍️ **Exercise 3.** Write `fvu`, returning a tensor (a training step will take its gradient).
# $\bar x$ is the mean *vector* over the batch.


# %%
def topk_encode(x, W_enc, b_enc, b_pre, k):
    """x [batch, d], W_enc [m, d], b_enc [m], b_pre [d] -> z [batch, m] with at most k non-zeros a row."""
    raise NotImplementedError  # your code here (3 lines)


def fvu(x, x_hat):
    """Fraction of variance unexplained, a 0-d tensor: 0 = perfect, 1 = no better than the mean vector."""
    raise NotImplementedError  # your code here (1 line)


topk_encode = book.check("topk_encode", topk_encode)
fvu = book.check("fvu", fvu)

# %% [markdown]
# <details><summary>Answer</summary>
#
# ```python
# def topk_encode(x, W_enc, b_enc, b_pre, k):
#     pre = torch.relu((x - b_pre) @ W_enc.T + b_enc)
#     vals, idx = pre.topk(k, dim=-1)
#     return torch.zeros_like(pre).scatter(-1, idx, vals)
#
# def fvu(x, x_hat):
#     return (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
# ```
# </details>
#
# Your two functions against the library's `TopKSAE`, with the same weights, on the toy model's
# hidden layer (an SAE of $m = 160$ latents, twice the toy model's features, $k = 4$, as it is
# before training):

# %%
from snce_lib.sae.lesson import start_sae

sae0 = start_sae(toy.x, n_latents=160, k=4)
z = topk_encode(toy.x, sae0.W_enc.detach(), sae0.b_enc.detach(), sae0.b_pre.detach(), 4)
x_hat = z @ sae0.W_dec.detach() + sae0.b_pre.detach()
with torch.no_grad():
    theirs = sae0(toy.x)
same = torch.allclose(z, sae0.encode_dense(toy.x).detach(), atol=1e-5)
print(f"your topk_encode and fvu: FVU {float(fvu(toy.x, x_hat)):.4f}; TopKSAE: FVU {float(theirs.fvu):.4f}; "
      f"the codes {'agree' if same else 'DIFFER'} on all {len(toy.x):,} rows (untrained, so FVU is high)")  # fmt: skip

# %% [markdown]
# **Measured:** your code and the library's on the same weights.
#
# ## 3 · Training with a known answer
# **Goal:** write the training step, AuxK included, and watch the SAE find the toy model's
# features, starting from chance.
#
# *Recovery.* For each of the toy model's represented features, its best cosine among the
# decoder rows; a feature is *found* at cosine 0.9 or more. Only latents that fire on held-out
# rows count: a latent that never fires explains nothing, wherever its decoder row points. The
# *chance line* is the same measure for a dictionary of random rows.
#
# ✍️ **Exercise 4.** Write `share_found(W_dec, dirs, threshold)`.
#
# *The training step.* The loss is the FVU plus AuxK (Gao et al. 2024), which keeps latents
# alive. A latent that never wins a top-$k$ place gets no gradient from the reconstruction, so
# once *dead* it stays dead. AuxK lets the $k_{aux}$ dead latents with the largest
# *pre-activations* $a = W_{enc}(x - b_{pre}) + b_{enc}$ (before the ReLU: their codes are zero,
# so those cannot rank them) reconstruct what the live latents missed, $e = x - \hat x$:
#
# $$\hat e = \mathrm{ReLU}\big(\mathrm{TopK}_{k_{aux}}(a^{dead})\big)\, W_{dec}, \qquad
#   \mathcal{L} = \mathrm{FVU} + \alpha\, \frac{\lVert e - \hat e\rVert^2}{\lVert e - \bar e\rVert^2}.$$
#
# The residual $e$ is a target, not something to train: detach it. The decoder rows are kept at
# unit norm: after `backward()` call `sae.remove_parallel_grad_()` (the gradient along each row
# would only change its length), after `opt.step()` call `sae.set_decoder_norm_()`.
#
# ✍️ **Exercise 5.** Write `train_step(sae, opt, x, dead, k_aux, alpha)`: one Adam step on that
# loss for the batch `x`, with `dead` a `[m]` boolean mask. Return `(fvu, auxk, z)`: the two loss
# terms as floats (before the update) and the batch's code `z` (the loop counts which latents fire
# from it). Use your `topk_encode` and `fvu`. The SAE's tensors are `sae.W_enc`, `sae.b_enc`,
# `sae.W_dec`, `sae.b_pre`, and `sae.cfg.k` is $k$.


# %%
def share_found(W_dec, dirs, threshold=0.9):
    """Share of the planted directions (rows of dirs) whose best cosine among the rows of W_dec is >= threshold."""
    raise NotImplementedError  # your code here (2 lines)


def train_step(sae, opt, x, dead, k_aux, alpha):
    """One Adam step on FVU + alpha * AuxK. x [batch, d], dead [m] bool -> (fvu, auxk, z [batch, m])."""
    raise NotImplementedError  # your code here (about 12 lines)


share_found = book.check("share_found", share_found)
train_step = book.check("train_step", train_step)

# %% [markdown]
# <details><summary>Answer</summary>
#
# ```python
# def share_found(W_dec, dirs, threshold=0.9):
#     cos = torch.nn.functional.normalize(dirs, dim=1) @ torch.nn.functional.normalize(W_dec, dim=1).T
#     return float((cos.max(dim=1).values >= threshold).float().mean())
#
# def train_step(sae, opt, x, dead, k_aux, alpha):
#     pre = (x - sae.b_pre) @ sae.W_enc.T + sae.b_enc            # before the ReLU
#     z = topk_encode(x, sae.W_enc, sae.b_enc, sae.b_pre, sae.cfg.k)
#     x_hat = z @ sae.W_dec + sae.b_pre
#     loss_fvu = fvu(x, x_hat)
#     auxk = x.new_zeros(())
#     if dead.any():
#         e = (x - x_hat).detach()                                  # what the live latents missed
#         vals, idx = pre.masked_fill(~dead, float("-inf")).topk(min(k_aux, int(dead.sum())), dim=-1)
#         e_hat = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals)) @ sae.W_dec
#         auxk = (e_hat - e).pow(2).sum() / (e - e.mean(0)).pow(2).sum()
#     opt.zero_grad()
#     (loss_fvu + alpha * auxk).backward()
#     sae.remove_parallel_grad_()
#     opt.step()
#     sae.set_decoder_norm_()
#     return float(loss_fvu.detach()), float(auxk.detach()), z.detach()
# ```
# </details>
#
# The cell below trains the SAE twice from the same start on the same batches: once with your
# `train_step` (and your `share_found` counting what it found), once with the library's trainer
# step, for the same 2,000 steps.

# %%
from snce_lib.sae.lesson import library_step, train_watched

SAE_RUN = dict(n_latents=160, k=4, steps=2000, auxk_alpha=1 / 32, dead_after_tokens=50_000, log_every=50)
yours = train_watched(toy, step=train_step, found=share_found, progress=True, **SAE_RUN)
library = train_watched(toy, step=library_step, **SAE_RUN)
fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
for name, run, ls in (("your step", yours, "-"), ("library's step", library, ":")):
    steps = [r["step"] for r in run.history]
    axes[0].plot(steps, [r["share_found"] for r in run.history], ls=ls, label=f"found (cos ≥ 0.9), {name}")
    axes[0].plot(steps, [r["mean_max_cosine"] for r in run.history], ls=ls, label=f"mean best cosine, {name}")
    axes[1].plot(steps, [r["fvu"] for r in run.history], ls=ls, label=name)
    axes[2].plot(steps, [r["dead_share"] for r in run.history], ls=ls, label=name)
axes[0].axhline(yours.chance["mean_max_cosine"], color="k", ls="--", lw=1, label="chance: random dictionary, mean best cosine")  # fmt: skip
axes[0].axhline(yours.chance["share_found"], color="grey", ls="--", lw=1, label="chance: random dictionary, found")
axes[0].set(
    title=f"Recovery of the toy model's {len(toy.dirs)} features", xlabel="training step", ylabel="cosine / share"
)
axes[1].set(title="FVU on held-out rows", xlabel="training step", ylabel="FVU (fraction)")
axes[2].set(title="Dead latents (silent for 50,000 samples)", xlabel="training step", ylabel="share of latents")
for ax in axes:
    ax.legend(fontsize=7)
fig.tight_layout()
plt.show()
for name, run in (("your step", yours), ("library's step", library)):
    h0, h1 = run.history[0], run.history[-1]
    print(f"{name:14s}: step 0 found {h0['share_found']:.0%}, mean best cosine {h0['mean_max_cosine']:.3f} | step "
          f"{h1['step']} found {h1['share_found']:.0%}, mean best cosine {h1['mean_max_cosine']:.3f}, FVU {h1['fvu']:.3f}, "
          f"L0 {h1['l0']:.2f}, dead {h1['dead_share']:.0%}")  # fmt: skip
print(f"chance (a random dictionary of 160 rows): found {yours.chance['share_found']:.0%}, mean best cosine "
      f"{yours.chance['mean_max_cosine']:.3f}; recovery counts the latents that fire on {2048:,} held-out rows")  # fmt: skip

# %% [markdown]
# Recovery starts on the chance line: the decoder rows are random, drawn from a stream of their
# own, and nothing in them knows the answer. Training lifts it well above chance, with your step
# and the library's alike.
#
# The run also ends with some latents dead (the last figure and the line above say how many): the
# dictionary has about twice as many latents as the toy model has represented features, so once
# every feature has a latent the spare ones have nothing left to explain, and even AuxK cannot
# give them work that is not there. Section 5 shows AuxK reviving latents when there is work.
#
# *Why is the FVU not zero when every feature is found?* The SAE keeps $k$ latents a sample.
# The cell below splits the held-out rows by how many of the toy model's features are on.

# %%
from snce_lib.sae.planted import fvu_by_features_on

probe = toy.x[-2048:]  # the rows train_watched held out
sae = yours.sae
split = fvu_by_features_on(probe, sae.decode_dense(sae.encode_dense(probe)), toy.coef[-2048:], k=4)
print(f"samples with more than k = 4 features on: {split['share_over_k']:.0%} of {len(probe):,}; they carry "
      f"{split['error_share_over_k']:.0%} of the squared error (FVU {split['fvu_over_k']:.3f} on them, "
      f"{split['fvu_at_most_k']:.3f} on the rest)")  # fmt: skip
floor = fvu(probe, toy.coef[-2048:] @ toy.dirs)  # h is the sum of every feature; this keeps the represented ones
print(
    f"the floor: even the true code of the represented features leaves FVU {float(floor):.4f} "
    "(the residue of the features the toy model dropped)"
)

# %% [markdown]
# A sample with more features on than $k$ cannot be written with $k$ latents: the SAE writes its
# largest $k$ and misses the rest, and those samples carry a share of the error far above their
# share of the data. The features the toy model dropped leave almost nothing (the floor). What is
# left on the other samples comes from the encoder: it reads each feature through one linear
# projection, and the features overlap (the toy model put them in superposition), so every
# pre-activation carries its neighbours' interference. A feature with a small coefficient can lose
# its place to a neighbour, and the activations kept come out a little off their true size
# (TopK's slope in the next section).
#
# **Measured in this section:** recovery from step 0 beside the chance line, with your step and
# the library's, and where the remaining error sits.
#
# ## 4 · ReLU + L1 against TopK, at the same L0 and the same budget
# **Goal:** see what a sparsity *penalty* costs that a sparsity *constraint* does not.
#
# The older recipe (Anthropic's *Towards Monosemanticity*) makes codes sparse with a penalty,
# $\mathcal{L} = \mathrm{FVU} + \lambda_1 \lVert z \rVert_1$, instead of keeping the top $k$. Its
# sparsity is set only indirectly, so we search $\lambda_1$ until its L0 matches TopK's; every run
# of the search trains for the same 2,000 steps as TopK did.
#
# ✍️ **Prediction 2.** At the same L0, which SAE's activations will come out further below the
# true coefficients, the TopK one or the L1 one? Answer before you run the comparison.

# %%
book.answer("shrinkage", "your answer")

# %%
from snce_lib.sae.l1 import fit_l1_for_l0, l0_of
from snce_lib.sae.planted import best_rescale, recovery, shrinkage

x_all = toy.x[:-2048]
l1 = fit_l1_for_l0(x_all, 160, target_l0=yours.history[-1]["l0"], steps=SAE_RUN["steps"])
rows, sh = [], {}
for name, model, l0 in (("TopK", yours.sae, yours.history[-1]["l0"]), ("ReLU + L1", l1.sae, l0_of(l1.sae, probe))):
    z = model.encode_dense(probe)
    sh[name] = shrinkage(model.encode_dense(toy.x), model.W_dec, toy)
    scale, fvu_scaled = best_rescale(probe, z, model.W_dec, model.b_pre)
    rows.append({"SAE": name, "L0": l0, "held-out FVU": float(fvu(probe, model.decode_dense(z))),
                 "found (cos ≥ 0.9)": recovery(model.W_dec, toy.dirs, live=(z > 0).any(0))["share_found"],
                 "activation / coefficient (slope)": sh[name]["slope"],
                 "missed (feature on, its latent silent)": sh[name]["missed"],
                 "best single rescale of the codes": scale, "FVU after it": fvu_scaled})  # fmt: skip
display(pd.DataFrame(rows).set_index("SAE").round(3))
print(f"both trained {SAE_RUN['steps']:,} steps of 256 rows; L1 coefficient chosen: {l1.l1:.3g}; slope and missed over "
      f"the {sh['TopK']['n_features']} and {sh['ReLU + L1']['n_features']} features each found")  # fmt: skip
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True, sharey=True)
for ax, name in zip(axes, sh):
    s = sh[name]
    sel = np.random.default_rng(0).choice(len(s["true"]), min(3000, len(s["true"])), replace=False)
    ax.scatter(s["true"][sel], s["est"][sel], s=3, alpha=0.3)
    ax.plot([0, 1.6], [0, 1.6], "k--", lw=1, label="activation = coefficient")
    ax.set(title=name, xlabel="true coefficient", ylabel="latent's activation")
    ax.legend()
fig.suptitle("Activations against the true coefficients, on the features each SAE found")
fig.tight_layout()
plt.show()

# %% [markdown]
# The L1 penalty charges every unit of activation. To hold L0 down to TopK's, its coefficient has
# to be large, and the activations it keeps come out far below the truth (its slope). Shrinkage
# is only part of its error: fitting one overall scale to its codes (TopK's best scale is about 1:
# refitting its size wins TopK nothing) wins back part of the gap, not all of it. The rest is in the other
# columns: it found fewer of the features, and its latents stay silent on more of their features'
# samples than TopK's, since a small coefficient is not worth the penalty. TopK spends no penalty on
# how strongly a latent fires, only on how many fire, so at the same L0 and the same number of
# steps its FVU is far lower. The L1 SAE buys its sparsity with reconstruction error.
#
# **Measured:** FVU, recovery and shrinkage of both recipes at matched L0 and equal steps.
#
# ## 5 · Dead latents: what AuxK does
# **Goal:** see latents die and come back, with your own training step.
#
# We start a dictionary of 80 latents, about one per toy-model feature, with half of them dead
# (their encoder rows shrunk so they lose every top-$k$ contest, and their counters already at
# the dead window), and train it with your `train_step`, once without AuxK ($\alpha = 0$) and once
# with it ($\alpha = 1/32$, $k_{aux} = 8$). Half a dictionary cannot hold all the features, so the
# share found tells whether the dead half came back and went to work.

# %%
from snce_lib.sae.dead import dead_start_run

runs = {a: dead_start_run(toy, 80, 4, auxk_alpha=a, steps=600, k_aux=8, dead_after_tokens=2048, step=train_step)
        for a in (0.0, 1 / 32)}  # fmt: skip
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for a, r in runs.items():
    lab = "AuxK off" if a == 0 else "AuxK on (α = 1/32, k_aux = 8)"
    seen = [x["tokens"] / 1000 for x in r["history"]]
    axes[0].plot(seen, [x["dead_share"] for x in r["history"]], label=lab)
    axes[1].plot(seen, [x["share_found"] for x in r["history"]], label=lab)
    h0, h1 = r["history"][0], r["history"][-1]
    print(f"{lab}: {r['revived']} of {r['n_started_dead']} latents started dead fired again, {r['still_dead']} still "
          f"dead; found (latents that fire) {h0['share_found']:.0%} at step 0 -> {h1['share_found']:.0%}, of "
          f"{len(toy.dirs)} features")  # fmt: skip
chance = runs[0.0]["chance"]["share_found"]
axes[1].axhline(chance, color="k", ls="--", lw=1, label="chance: random dictionary of 80")
axes[0].set(title="Dead latents (silent for 2,048 samples)", xlabel="training samples (thousands)",
            ylabel="share of latents")  # fmt: skip
axes[1].set(
    title="Features found by latents that fire", xlabel="training samples (thousands)", ylabel="share of features"
)
for ax in axes:
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Without AuxK the dead half gets no gradient and stays dead, and the live half finds what it can.
# With AuxK the dead latents learn to explain the residual, win top-$k$ places again, and the
# share found climbs past what half a dictionary could hold.
#
# **Measured:** latents revived, latents still dead, and the share found with AuxK off and on.
#
# ## 6 · Dictionary size: splitting and absorption
# **Goal:** measure what a larger dictionary does to features that come in a hierarchy, with
# measures that can come out empty.
#
# The toy model's features are independent, so for this section we plant a hierarchy: 64 random
# directions in 32 dimensions, four *parent* features, each of which fires exactly when one of its
# three *children* does (think "animal" with "cat", "dog", "horse"). We train TopK SAEs of
# $m = n/2, n, 2n, 4n$ latents and measure, over the latents that fire:
# - **found**: features whose best latent has cosine at least 0.9 (*learned*);
# - **duplicated**: features held by two or more latents that are near-copies of each other (one
#   direction written twice: wasted, not finer);
# - **split**: features held by two or more latents (cosine at least 0.7) that point different ways;
# - **absorption** (Chanin et al. 2024), counted for *learned* parents only: the share of samples
#   with the parent on in which the parent's latent is **silent**. Beside it, the **silence
#   baseline**: how often the latent of a well-learned feature outside the hierarchy is silent
#   while its feature is on (on samples with as many features on), which TopK's $k$ places
#   alone produce;
# - **child lean**: how much closer each child's latent points to its parent than the child's own
#   direction does (the planted cosine subtracted).
#
# ✍️ **Prediction 3.** When absorption happens, whose latent goes silent while its feature is
# on: the parent's or the child's? Answer before you run the table.

# %%
book.answer("absorption", "your answer")

# %%
from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.planted import planted_data, structure

hier = [(0, [1, 2, 3]), (4, [5, 6, 7]), (8, [9, 10, 11]), (12, [13, 14, 15])]
ph = planted_data(20_000, n_features=64, d=32, p_active=0.05, hierarchy=hier, seed=1)


def size_row(label, sae, start=None):
    st = structure(sae.encode_dense(ph.x), sae.W_dec, ph)
    return {"dictionary": label, "found at step 0": start, "found": st["share_found"], "duplicated": st["share_duplicated"],
            "split": st["share_split"], "missing": st["share_missing"], "dead latents": st["dead_share"],
            "learned parents (of 4)": st["n_learned_parents"], "parent absorption": st["mean_absorption"],
            "silence baseline": st["silence_baseline"], "child lean": st["lean_excess"]}  # fmt: skip


rand = TopKSAE(SAEConfig(32, 128, 4))  # an untrained dictionary: what every measure reads by chance
rand.reset_parameters(torch.Generator().manual_seed(0))
rows = [size_row("random, m = 128 (chance)", rand)]
for m in (32, 64, 128, 256):
    r = train_watched(ph, n_latents=m, k=4, steps=2000, log_every=2000)
    rows.append(size_row(f"m = {m}", r.sae, r.history[0]["share_found"]) | {"held-out FVU": r.history[-1]["fvu"]})
size_table = pd.DataFrame(rows).set_index("dictionary")
display(size_table.round(3))
for name, r in size_table.iterrows():  # absorption is a rate over the learned parents only: few parents, few samples
    print(f"{name}: parent absorption over {int(r['learned parents (of 4)'])} learned parent(s) of 4")
trained = size_table.iloc[1:]
fig, ax = plt.subplots(figsize=(7, 3.6))
for col in ("found", "split", "duplicated", "parent absorption", "silence baseline"):
    ax.plot(range(len(trained)), trained[col], marker="o", label=col, ls=":" if col == "silence baseline" else "-")
ax.set(xticks=range(len(trained)), xticklabels=[i.split("= ")[1] for i in trained.index],
       title="What a larger dictionary does to a hierarchy", xlabel="latents m (64 planted features)",
       ylabel="share")  # fmt: skip
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Read the table from the top. The random dictionary finds nothing, learns no parent, and so
# reports no absorption at all (NaN): a measure that can come out empty. The small dictionaries
# learn no parent either; their children's latents lean towards their parents far more than the
# children's own directions do, which is absorption in the geometry: one latent writes "child +
# parent", and no latent is left for the parent alone. Where there is room for a parent latent and
# it is learned, compare its absorption with the silence baseline: far above it means the
# children's latents carry the parent's direction, so the parent's latent has nothing left to
# explain. The lines under the table say over how many learned parents each absorption is
# measured: with one or two, it is the story of one or two latents, not a rate.
# Larger dictionaries split more features into latents that point different ways, and leave more
# latents dead; no feature is merely duplicated here.
#
# For concept erasure this matters: a "parent" latent (say, *nudity*) can be silent exactly where
# one of its children (a particular phrasing) fires, so erasing the parent's latent misses those
# prompts.
#
# **Measured in this section:** found, duplicated, split, dead, absorption beside its baseline and
# the child lean, per dictionary size and for a random dictionary.

# %%
print(f"{book.summary()}; chapter 00 ran in {time.perf_counter() - t_start:.0f} s")

# %% [markdown]
# ## Questions
# 1. In section 1b, why can PCA give at most $d$ directions, and why would more samples not help
#    it on the toy model's hidden layer?
# 2. In section 4 the L1 SAE's directions can match the features less closely than TopK's. Why
#    could a penalty on activations also bend the directions?
# 3. In section 6, why can a child's latent absorb its parent, and why does the child lean fall
#    as the dictionary grows?
# 4. In section 3, what would you change to bring the FVU on samples with more than $k$ features
#    on down, and what would it cost?
#
# <details><summary>Answers (open after trying)</summary>
#
# 1. PCA returns orthogonal directions, at most one per dimension, ranked by variance; 80
#    features in 20 dimensions cannot all be orthogonal, so no choice of 20 orthogonal axes can be
#    them. More samples estimate the same covariance better, and the covariance alone does not
#    tell the features apart: sparsity does, which PCA never uses.
# 2. Shrunk activations leave part of each feature unexplained; the reconstruction term then pays
#    a decoder row to lean towards the features that usually fire with it, to win some of that
#    back, so the rows drift off the features.
# 3. Explaining "child + parent" with one active latent costs fewer of the $k$ places than two
#    latents, so a child's latent can learn to write the parent's direction too. With few latents
#    that is the only way (the lean is high: no parent latent exists); with more latents there is
#    room for a parent latent, the children's rows lean less, yet where the parent's latent is
#    learned it can still stay silent whenever a child's latent already writes its direction.
# 4. A larger $k$: more of those samples fit, at the price of denser codes, each latent with more
#    company, and so harder to read one at a time.
# </details>
#
# **Next:** notebook 01 trains the real SAE on a text encoder's block; its last section reads
# that dictionary with the measures of this chapter that need no planted answer.
