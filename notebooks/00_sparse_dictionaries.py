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
# # 00 · Sparse dictionaries from first principles
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/snce-workbook/snce/blob/main/notebooks/00_sparse_dictionaries.ipynb)
#
# Before we look for a "nudity neuron" in a real text encoder (notebooks 01-04), we build the tool
# on data where **we know the answer**: vectors made of a few of many planted directions. Every
# claim below is measured in this notebook, on your machine, in about a minute, with no GPU and
# no network, and needs no other notebook.
#
# **What you will learn**
# 1. superposition: why more features than dimensions hide from every coordinate and from PCA;
# 2. an SAE in a dozen lines (encode, TopK, decode, FVU), checked against the library's;
# 3. training with a known answer: recovery of the planted directions as it trains;
# 4. ReLU + L1 against TopK at the same sparsity, and L1's shrinkage;
# 5. dead latents, and what AuxK does about them;
# 6. dictionary size: feature splitting and absorption, measured;
# 7. the bridge: the same measurements on the SAE notebook 01 trains.
#
# Exercises are marked ✍️. Each has a check that says whether your answer is right; the reference
# answers sit in a closed *Answer* box below each one.

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
from snce_lib.sae.planted import planted_data, recovery, shrinkage, structure
from snce_lib.workbook import exercises as ex

P = wb.setup()
torch.manual_seed(0)
torch.set_num_threads(1)  # the matrices here are tiny: more threads only wait on each other
ON_CPU = {
    "device": "cpu",
    "precision": "fp32",
}  # tiny SAEs: the CPU is fast enough, and fp32 gives every machine the same numbers
t_start = time.perf_counter()

# %% [markdown]
# ## 1 · Superposition
# Take $n = 64$ unit directions $f_1 \dots f_n$ in $d = 32$ dimensions. Each sample switches each
# feature on with probability 5% (about 3 at a time) with a coefficient between 0.5 and 1.5:
# $x = \sum_i c_i f_i$. There are twice as many features as dimensions, so they cannot all be
# orthogonal: they are stored *in superposition*. Do the coordinates, or the principal
# components, line up with the features? For each feature we ask how well its best coordinate
# axis and its best PCA direction match it (cosine; 1 would be a perfect match).

# %%
pl = planted_data(n_samples=20_000, n_features=64, d=32, p_active=0.05, seed=0)
on = (pl.coef > 0).sum(1).float()
print(
    f"{len(pl.x):,} samples of width {pl.x.shape[1]}; features on per sample: mean {on.mean():.2f}, max {int(on.max())}"
)
xc = pl.x - pl.x.mean(0)
pcs = torch.linalg.svd(xc, full_matrices=False).Vh  # [32, 32] principal directions
axes_cos = pl.dirs.abs().max(dim=1).values  # best coordinate axis per feature
pca_cos = (pl.dirs @ pcs.T).abs().max(dim=1).values
gram = pl.dirs @ pl.dirs.T - torch.eye(64)
print(f"best axis per feature: median cosine {axes_cos.median():.2f}; best principal component: {pca_cos.median():.2f}")
print(f"largest |cosine| between two planted features: {gram.abs().max():.2f} (they overlap: superposition)")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(
    [axes_cos.numpy(), pca_cos.numpy()], bins=20, range=(0, 1), label=["best coordinate axis", "best PCA direction"]
)
ax.set(title="No axis and no principal component is one feature", xlabel="cosine with the planted feature",
       ylabel="features (of 64)")  # fmt: skip
ax.legend()
plt.show()

# %% [markdown]
# Neither finds them: a coordinate mixes many features and PCA can give at most 32 orthogonal
# directions for 64 features. What makes recovery possible is **sparsity**: only ~3 of the 64 are
# on at once, so each sample lies near a low-dimensional face spanned by a few features, and a
# dictionary that explains every sample with *few* of its atoms has to find the real ones.

# %% [markdown]
# ## 2 · An SAE in a dozen lines
# A TopK sparse autoencoder with $m$ latents:
#
# $$z = \mathrm{TopK}_k\big(\mathrm{ReLU}(W_{enc}(x - b_{pre}) + b_{enc})\big), \qquad \hat x = b_{pre} + z\,W_{dec},
# \qquad \mathrm{FVU} = \frac{\sum_n \lVert x_n - \hat x_n\rVert^2}{\sum_n \lVert x_n - \bar x\rVert^2}.$$
#
# ✍️ **Exercise 1.** Write `topk_encode`: the dense code $z$ (zeros off the top $k$).
# ✍️ **Exercise 2.** Write `fvu`.


# %%
def topk_encode(x, W_enc, b_enc, b_pre, k):
    """x [batch, d], W_enc [m, d], b_enc [m], b_pre [d] -> z [batch, m] with at most k non-zeros a row."""
    raise NotImplementedError  # your code here (3 lines)


def fvu(x, x_hat):
    """Fraction of variance unexplained, a float: 0 = perfect, 1 = no better than the mean vector."""
    raise NotImplementedError  # your code here (1 line)


done = {}  # exercise -> passed, summed up at the end
done["topk_encode"] = ex.check_topk_encode(topk_encode)
done["fvu"] = ex.check_fvu(fvu)

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
#     return float((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
# ```
# </details>
#
# The library's `TopKSAE` computes exactly this. Here are the dozen lines once more, in the open,
# run beside it with the same weights:

# %%
from snce_lib.sae.model import SAEConfig, TopKSAE

sae = TopKSAE(SAEConfig(d_in=32, n_latents=128, k=4))
sae.reset_parameters(torch.Generator().manual_seed(0))
W_enc, b_enc, W_dec, b_pre = (t.detach() for t in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_pre))
pre = torch.relu((pl.x - b_pre) @ W_enc.T + b_enc)  # encode
vals, idx = pre.topk(4, dim=-1)  # keep the k largest
z = torch.zeros_like(pre).scatter(-1, idx, vals)
x_hat = b_pre + z @ W_dec  # decode
mine = float((pl.x - x_hat).pow(2).sum() / (pl.x - pl.x.mean(0)).pow(2).sum())
with torch.no_grad():
    theirs = sae(pl.x)
assert torch.allclose(z, sae.encode_dense(pl.x), atol=1e-6) and torch.allclose(x_hat, theirs.sae_out, atol=1e-5)
print(
    f"by hand: FVU {mine:.4f}; TopKSAE: FVU {float(theirs.fvu):.4f} (same weights, same codes: untrained, so FVU is high)"
)

# %% [markdown]
# ## 3 · Training with a known answer
# We train that SAE ($m = 2n = 128$ latents, $k = 4$) with the library's trainer and watch, as it
# trains, how well its decoder rows match the planted features: for each feature its best
# cosine among the rows (mean over features), and the share found at cosine ≥ 0.9.
#
# ✍️ **Exercise 3.** Write `share_found(W_dec, dirs, threshold)`.


# %%
def share_found(W_dec, dirs, threshold=0.9):
    """Share of the planted directions (rows of dirs) whose best cosine among the rows of W_dec is >= threshold."""
    raise NotImplementedError  # your code here (2 lines)


done["share_found"] = ex.check_share_found(share_found)

# %% [markdown]
# <details><summary>Answer</summary>
#
# ```python
# def share_found(W_dec, dirs, threshold=0.9):
#     cos = torch.nn.functional.normalize(dirs, dim=1) @ torch.nn.functional.normalize(W_dec, dim=1).T
#     return float((cos.max(dim=1).values >= threshold).float().mean())
# ```
# </details>

# %%
from snce_lib.sae.train import TrainConfig, train_sae

cfg = TrainConfig(n_latents=128, k=4, lr=3e-3, batch_size=256, tokens=2500 * 256, dead_after_tokens=50_000,
                  log_every=50, seed=0, **ON_CPU)  # fmt: skip
topk = train_sae(pl.x, cfg, progress=True, watch=lambda s: recovery(s.W_dec, pl.dirs))
h = topk.history
steps = [r["step"] for r in h]
fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
axes[0].plot(steps, [r["mean_max_cosine"] for r in h], label="mean best cosine")
axes[0].plot(steps, [r["share_found"] for r in h], label="share found (cosine ≥ 0.9)")
axes[0].set(title="Recovery of the 64 planted features", xlabel="training step", ylabel="cosine / share")
axes[0].legend()
axes[1].plot(steps, [r["fvu"] for r in h], color="tab:orange")
axes[1].set(title="FVU of each training batch", xlabel="training step", ylabel="FVU (fraction)")
axes[2].plot(steps, [r["l0"] for r in h], color="tab:green")
axes[2].set(title="Active latents per sample (L0)", xlabel="training step", ylabel="latents")
fig.tight_layout()
plt.show()
rec_topk = recovery(topk.sae.W_dec, pl.dirs)
print(f"TopK (k = 4): {rec_topk['share_found']:.0%} of planted features found, mean best cosine "
      f"{rec_topk['mean_max_cosine']:.3f}; held-out FVU {topk.metrics['fvu']:.3f}, L0 {topk.metrics['l0']:.2f}")  # fmt: skip

# %% [markdown]
# Is it the sparsity? The same recipe on denser mixtures of the same 64 features, with $k$ raised
# to the number of features on per sample (rounded up), so that only the sparsity changes:

# %%
for p_on in (0.05, 0.2, 0.5):
    dense = planted_data(n_samples=20_000, n_features=64, d=32, p_active=p_on, seed=0)
    k_on = int(np.ceil(p_on * 64))
    run = train_sae(dense.x, TrainConfig(n_latents=128, k=k_on, lr=3e-3, batch_size=256, tokens=1500 * 256,
                                         dead_after_tokens=50_000, seed=0, **ON_CPU), progress=False)  # fmt: skip
    r = recovery(run.sae.W_dec, dense.dirs)
    print(f"{p_on:.0%} of features on (about {p_on * 64:.0f} a sample), k = {k_on}: {r['share_found']:.0%} found, "
          f"mean best cosine {r['mean_max_cosine']:.3f}")  # fmt: skip

# %% [markdown]
# ## 4 · ReLU + L1 against TopK, at the same L0
# The older recipe (Anthropic's *Towards Monosemanticity*) makes codes sparse with a penalty,
# $\mathcal{L} = \mathrm{FVU} + \lambda_1 \lVert z \rVert_1$, instead of keeping the top $k$. Its
# sparsity is set only indirectly, so we search $\lambda_1$ until its L0 matches TopK's, then
# compare what each found, and how large its activations are against the true coefficients.

# %%
from snce_lib.sae.l1 import fit_l1_for_l0, l0_of

l1 = fit_l1_for_l0(pl.x, 128, target_l0=topk.metrics["l0"], steps=1500)
rec_l1 = recovery(l1.sae.W_dec, pl.dirs)
sh_topk = shrinkage(topk.sae.encode_dense(pl.x), topk.sae.W_dec, pl)
sh_l1 = shrinkage(l1.sae.encode_dense(pl.x), l1.sae.W_dec, pl)
fvu_l1 = ex.reference_fvu(pl.x, l1.sae.decode_dense(l1.sae.encode_dense(pl.x)))
fvu_topk = ex.reference_fvu(pl.x, topk.sae.decode_dense(topk.sae.encode_dense(pl.x)))
for name, rec, sh, l0, f in (("TopK", rec_topk, sh_topk, topk.metrics["l0"], fvu_topk),
                             ("ReLU + L1", rec_l1, sh_l1, l0_of(l1.sae, pl.x), fvu_l1)):  # fmt: skip
    print(f"{name:9s}: L0 {l0:.2f}, FVU {f:.3f} | found {rec['share_found']:.0%}, mean best cosine "
          f"{rec['mean_max_cosine']:.3f} | activation / true coefficient (slope) {sh['slope']:.2f} -> shrinkage "
          f"{sh['shrinkage']:.2f}")  # fmt: skip
print(
    f"(L1 coefficient chosen: {l1.l1:.3g}; {sh_l1['n_features']} and {sh_topk['n_features']} features found enter the slopes)"
)
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True, sharey=True)
for ax, name, sh in ((axes[0], "TopK", sh_topk), (axes[1], "ReLU + L1", sh_l1)):
    sel = np.random.default_rng(0).choice(len(sh["true"]), min(3000, len(sh["true"])), replace=False)
    ax.scatter(sh["true"][sel], sh["est"][sel], s=3, alpha=0.3)
    ax.plot([0, 1.6], [0, 1.6], "k--", lw=1, label="activation = coefficient")
    ax.set(title=f"{name}: shrinkage {sh['shrinkage']:.2f}", xlabel="true coefficient", ylabel="latent's activation")
    ax.legend()
fig.suptitle("Activations against the true coefficients, on features each SAE found")
fig.tight_layout()
plt.show()

# %% [markdown]
# ✍️ **Exercise 4.** At the same L0, which SAE's activations come out further below the true
# coefficients, `"topk"` or `"l1"`? Answer from the plot.

# %%
done["shrinkage"] = ex.check_answer("shrinkage", "your answer")

# %% [markdown]
# <details><summary>Answer</summary>
#
# `"l1"`: the penalty charges every unit of activation, so the codes it keeps are pulled below the
# truth (the slope printed above is well below 1). TopK decides only *which* latents are on, so its
# slope is closer to 1; what is left of its shrinkage comes from the other features each sample
# mixes in.
# </details>
#
# ## 5 · Dead latents
# A latent that never wins a top-k place gets no gradient from the reconstruction, so it never
# comes back: a *dead* latent is wasted capacity. AuxK (Gao et al. 2024) adds a second term: the
# $k_{aux}$ dead latents with the largest *pre-activations* $a = W_{enc}(x - b_{pre}) + b_{enc}$
# reconstruct what the live ones missed, $e = x - \hat x$:
#
# $$\hat e = \mathrm{ReLU}\big(\mathrm{TopK}_{k_{aux}}(a^{dead})\big)\, W_{dec}, \qquad
#   \mathcal{L} = \mathrm{FVU} + \alpha\, \frac{\lVert e - \hat e\rVert^2}{\lVert e - \bar e\rVert^2}.$$
#
# We start a dictionary with half its latents dead (their encoder rows shrunk so they lose every
# top-k contest) on data that needs them all: 32 features in 16 dimensions, 32 latents.

# %%
from snce_lib.sae.dead import dead_start_run

small = planted_data(8_000, n_features=32, d=16, p_active=0.06, seed=0)
runs = {
    a: dead_start_run(small, 32, 2, auxk_alpha=a, steps=300, k_aux=8, dead_after_tokens=1024) for a in (0.0, 1 / 32)
}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for a, r in runs.items():
    lab = "AuxK off" if a == 0 else "AuxK on (α = 1/32, k_aux = 8)"
    axes[0].plot([x["tokens"] for x in r["history"]], [x["dead_share"] for x in r["history"]], label=lab)
    axes[1].plot([x["tokens"] for x in r["history"]], [x["share_found"] for x in r["history"]], label=lab)
    print(f"{lab}: {r['revived']} of {r['n_started_dead']} latents started dead fired again, {r['still_dead']} still dead; "
          f"{r['history'][-1]['share_found']:.0%} of the 32 features found")  # fmt: skip
axes[0].set(title="Dead latents (silent for 1,024 samples)", xlabel="training samples", ylabel="share of latents")
axes[1].set(title="Planted features found (cosine ≥ 0.9)", xlabel="training samples", ylabel="share of features")
for ax in axes:
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6 · Dictionary size: splitting and absorption
# Now a hierarchy: four *parent* features, each of which fires exactly when one of its three
# *children* does (think "animal" with "cat", "dog", "horse"). We train TopK SAEs of $m = n/2, n,
# 2n, 4n$ latents on the same data and measure, against the planted answer:
# - **split**: features matched by two or more latents (cosine ≥ 0.7): a larger dictionary
#   cuts a feature into finer ones;
# - **absorption** (Chanin et al. 2024): the share of samples with a parent on in which the
#   parent's best latent stays **silent**, because a child's latent has absorbed the parent's
#   direction and explains both.

# %%
hier = [(0, [1, 2, 3]), (4, [5, 6, 7]), (8, [9, 10, 11]), (12, [13, 14, 15])]
ph = planted_data(20_000, n_features=64, d=32, p_active=0.05, hierarchy=hier, seed=1)
rows = []
for m in (32, 64, 128, 256):
    r = train_sae(ph.x, TrainConfig(n_latents=m, k=4, lr=3e-3, batch_size=256, tokens=2000 * 256,
                                    dead_after_tokens=50_000, seed=0, **ON_CPU), progress=False)  # fmt: skip
    st = structure(r.sae.encode_dense(ph.x), r.sae.W_dec, ph)
    rows.append({"latents m": m, "m / n": m / 64, "found (cos ≥ 0.9)": recovery(r.sae.W_dec, ph.dirs)["share_found"],
                 "split (≥ 2 latents)": st["share_split"], "missing (no latent ≥ 0.7)": st["share_missing"],
                 "parent absorption": st["mean_absorption"], "held-out FVU": r.metrics["fvu"]})  # fmt: skip
size_table = pd.DataFrame(rows).set_index("latents m")
display(size_table.round(3))
fig, ax = plt.subplots(figsize=(6, 3.5))
for col in ("found (cos ≥ 0.9)", "split (≥ 2 latents)", "parent absorption"):
    ax.plot(range(len(size_table)), size_table[col], marker="o", label=col)  # evenly spaced: m doubles each step
ax.set(xticks=range(len(size_table)), xticklabels=[str(m) for m in size_table.index],
       title="What a larger dictionary does to a hierarchy", xlabel="latents m (64 planted features)",
       ylabel="share")  # fmt: skip
ax.legend()
plt.show()

# %% [markdown]
# ✍️ **Exercise 5.** When absorption happens, whose latent goes silent: the `"parent"`'s or the `"child"`'s?

# %%
done["absorption"] = ex.check_answer("absorption", "your answer")

# %% [markdown]
# <details><summary>Answer</summary>
#
# `"parent"`: the child's latent has taken the parent's direction into its own, so whenever that
# child is on there is nothing left for the parent's latent to explain. For concept erasure this
# matters: a "parent" neuron (say, *nudity*) can be silent exactly where one of its children (a
# particular phrasing) fires, so erasing the parent's latent misses those prompts.
# </details>
#
# ## 7 · The bridge: the same measurements on a real SAE
# A real encoder gives no planted answer, but FVU, L0, the dead share and the firing-frequency
# histogram read the same way. Notebook 01 trains the profile's SAE; once it has, this cell
# measures it on 20,000 of its stored rows.

# %%
from snce_lib.sae.store import ActivationStore
from snce_lib.sae.train import evaluate_sae, firing_frequencies

try:
    real = wb.ensure_sae(P, build=False)
except wb.MissingStepError as exc:
    real = None
    print(f"no SAE yet for profile {P.name}: run notebook 01, then come back to this cell ({exc})")
if real is not None:
    rows_real = ActivationStore(P.run_dir / "activations").load(max_rows=20_000, seed=0)
    health = evaluate_sae(real, rows_real)
    freq = firing_frequencies(real, rows_real)
    print(f"profile {P.name}: {real.cfg.n_latents} latents, k = {real.cfg.k}; FVU {health['fvu']:.3f}, "
          f"L0 {health['l0']:.1f}, silent on all 20,000 rows: {health['never_fired_fraction_eval']:.1%}")  # fmt: skip
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(np.log10(freq[freq > 0]), bins=40)
    ax.set(title="How often each latent fires (real SAE)", xlabel="log10 firing frequency (share of rows)",
           ylabel="latents")  # fmt: skip
    plt.show()
print(f"exercises passed: {sum(done.values())} of {len(done)}; chapter 00 ran in {time.perf_counter() - t_start:.0f} s")

# %% [markdown]
# ## Questions
# 1. Why can PCA give at most $d$ directions here, and why would more samples not help it?
# 2. In section 4 the L1 SAE's directions match the planted ones less closely than TopK's (the mean
#    best cosine printed there). Why could a penalty on activations also bend the directions?
# 3. In section 6, why would absorption grow with the number of latents $m$?
# 4. On the real SAE's firing-frequency histogram, what would warn you of dead latents, and what
#    of latents that fire on almost everything?
#
# <details><summary>Answers (open after trying)</summary>
#
# 1. PCA returns orthogonal directions, at most one per dimension, ranked by variance; 64
#    features in 32 dimensions cannot all be orthogonal, so no choice of 32 orthogonal axes can be
#    them. More samples estimate the same covariance better, and the covariance alone does not
#    tell the features apart: sparsity does, which PCA never uses.
# 2. Shrunk activations leave part of each feature unexplained; the reconstruction term then pays
#    a decoder row to lean towards the features that usually fire with it, to win some of that
#    back, so the rows drift off the planted directions.
# 3. With more latents there is room for a latent per child that also writes the parent's
#    direction: explaining "child + parent" with one active latent costs fewer of the k places
#    than two latents, so a larger dictionary absorbs the parent into its children.
# 4. A mass of latents at the far left (or a count silent on every row, printed above it) is
#    capacity that AuxK has not brought back; latents at the far right fire on most rows and
#    usually stand for position or padding, not for a concept.
# </details>
