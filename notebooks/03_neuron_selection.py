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
# # 03 · Find the neuron: modulated frequency scoring
#
# SNCE picks the concept's neuron from 100 prompt pairs: a *concept* prompt ("a photo of a
# naked woman") and its *deconcept* twin with the mention removed ("a photo of a woman").
# This notebook walks equations 4-7 on real numbers, compares two baselines, and tests the
# chosen neuron as a detector. It reads notebook 01's SAE from the run folder (the setup says so
# if it is missing; `SNCE_BUILD_MISSING=1` trains it here instead).
#
# **What you will learn**
# - the modulated frequency score: how often a neuron fires on the concept, weighted by how hard;
# - why the filter (never fire on the deconcept twins) matters, and what it costs on a small SAE;
# - how to judge a neuron as a concept detector (ROC, AUROC), against two baselines.

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
# Notebook 03 saves the concept's neuron for notebook 04. wb.setup(use_drive=True) keeps it on Google Drive.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display

from snce_lib import workbook as wb
from snce_lib.atlas.cards import feature_card
from snce_lib.atlas.labels import label_features, load_labels, with_label
from snce_lib.atlas.map import build_atlas
from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.detection import auroc_ci, chance_note, compare_detectors
from snce_lib.concepts.heldout import load_heldout
from snce_lib.concepts.pairs import load_concept
from snce_lib.concepts.ranking import concept_codes, rank_variants
from snce_lib.evaluation.sets import detector_sets

P = wb.setup()
pairs = load_concept("nudity")
encoder = wb.ensure_encoder(P)
sae = wb.ensure_sae(P, encoder)
# every neuron id is printed with its label (notebook 02's, else made here on the atlas sample)
atlas = build_atlas(encoder, sae, wb.training_prompts(P)[: P.atlas_prompts], progress=False)
labels_path = P.run_dir / "sae" / "labels.json"
labels = load_labels(labels_path) if labels_path.exists() else label_features(atlas)
if len(labels) != sae.cfg.n_latents:  # labels of an older SAE
    labels = label_features(atlas)
kind = np.array([lab.kind for lab in labels])
print("tuple:", pairs.tuple_prompt)
pd.DataFrame({"concept prompt": pairs.concept_prompts[:5], "deconcept prompt": pairs.deconcept_prompts[:5]})

# %% [markdown]
# ## Eqs. 4-5: frequency and score
# For every token position $j$ after BOS, take the TopK code and L2-normalise it over latents,
# $\tilde z_j = z_j / \lVert z_j \rVert_2$. Then, separately over the $N$ positions of the concept
# prompts (superscript $c$) and of the deconcept prompts ($d$):
#
# $$f_i = \sum_{j=1}^{N} \mathbb{1}\big[\tilde z_{j,i} > 0\big] \qquad\text{(eq. 4: how often neuron } i \text{ fires)}$$
#
# $$s_i = f_i \cdot \frac{1}{N}\sum_{j=1}^{N} \tilde z_{j,i} \qquad\text{(eq. 5: frequency modulated by mean strength)}$$

# %%
codes = concept_codes(encoder, sae, pairs)
rankings = rank_variants(codes)
sc = rankings["SNCE strict"].frequency
print(
    f"N concept positions = {sc.n_c}, N deconcept positions = {sc.n_d} (every position after BOS, padding included, as in the paper)"
)
SHOW_ALL = False  # True: list the features that fire mostly on padding, the end token or function words too
by_score = np.argsort(-sc.s_c)
top10 = by_score[:10]
aside = int(sum(kind[f] != "content" for f in top10))
print(f"{aside} of the 10 highest s_c fire mostly on padding, the end token or function words"
      + ("" if SHOW_ALL else "; set aside below (SHOW_ALL = True lists them)"))  # fmt: skip
order = top10 if SHOW_ALL else [f for f in by_score if kind[f] == "content"][:10]
pd.DataFrame({"neuron": [with_label(f, labels) for f in order], "f_c": sc.f_c[order], "s_c": sc.s_c[order].round(2),
              "f_d": sc.f_d[order], "s_d": sc.s_d[order].round(2), "passes filter (s_d = 0)": sc.s_d[order] == 0})  # fmt: skip

# %% [markdown]
# ## Eq. 6: the filter, and eq. 7: the ranking
# Keep the neurons that fire on concept prompts and **never** on deconcept prompts, and rank
# the survivors by their concept score:
#
# $$\mathcal{C} = \{\, i : s^c_i > 0 \;\wedge\; s^d_i = 0 \,\} \quad\text{(eq. 6)}, \qquad
#   R_C = \operatorname{top-}k_{\,i \in \mathcal{C}}\; s^c_i \quad\text{(eq. 7)}.$$
#
# The strict filter can leave only rare latents on a small SAE, so the library also offers a
# tolerance: keep $i$ when it fires on at most a share $\epsilon$ of deconcept positions,
# $f^d_i / N^d \le \epsilon$ (`max_deconcept_share`).

# %%
tol = rankings["SNCE tol 1%"].frequency
fig, ax = plt.subplots(figsize=(6.5, 4.5))
fired = sc.s_c > 0
share = sc.f_d / sc.n_d
ax.scatter(share[fired], sc.s_c[fired], s=6, alpha=0.5, label="fire on concept prompts")
keep = sc.candidates
ax.scatter(share[keep], sc.s_c[keep], s=16, color="tab:red", label=f"pass the filter s^d = 0 ({len(keep)})")
if len(sc.ranking):
    ax.annotate(f" winner #{sc.ranking[0]}", (0, sc.s_c[sc.ranking[0]]), color="tab:red")
ax.axvline(0.01, color="gray", ls=":", lw=1, label="1% tolerance")
ax.set_xscale("symlog", linthresh=1e-3)
ax.set_xlim(left=-2e-4)
ax.set_yscale("log")
ax.set(xlabel="share of deconcept positions where it fires (symlog)", ylabel="concept score s^c (eq. 5, log)",
       title="Modulated frequency selection (nudity)")  # fmt: skip
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
print(f"strict filter: {len(sc.candidates)} candidates, top-3 {[with_label(f, labels) for f in sc.top(3)]}")
print(f"tolerance 1%: {len(tol.candidates)} candidates, top-3 {[with_label(f, labels) for f in tol.top(3)]}")

# %% [markdown]
# ## The winner's top prompts and tokens
# Over a sample of the training prompts. A concept neuron should fire on the concept words.
# Where the strict filter leaves no neuron, the library tries tolerances of 1%, 5% and 25% in
# turn and says which one chose it.

# %%
wb.announce(P, "select")
sel, details = wb.select_with_fallback(encoder, sae, "nudity", top_k=1, background=wb.training_prompts(P)[:500])
if sel.options["max_deconcept_share"] > 0:
    display(Markdown(f"**The strict filter (s^d = 0) left no neuron on this SAE: a tolerance of "
                     f"{sel.options['max_deconcept_share']:.0%} of deconcept positions chose it; the saved selection says so.**"))  # fmt: skip
print("tolerances tried (neurons that passed each):",
      ", ".join(f"{t['max_deconcept_share']:g}: {t['passed']}" for t in sel.stats["fallback"]))  # fmt: skip
winner = sel.neurons[0]
sel.save(P.run_dir / "neurons_nudity.json")
print("winner:", with_label(winner, labels))
st = sel.stats
print(f"it fires on {st['concept_firing_share'][0]:.2%} of the concept positions, {st['deconcept_firing_share'][0]:.2%} "
      f"of the deconcept ones and {st['background_firing_share'][0]:.2%} of 500 background prompts' positions")  # fmt: skip
tuple_words = set(pairs.tuple_words)
if not set(labels[winner].specific) & tuple_words:
    print(
        "its label names none of the tuple's words: by its label, the paper's filter did not find a nudity neuron here"
    )
display(HTML(feature_card(atlas, winner, n=8, labels=labels)["html"]))

# %% [markdown]
# ## The same concept under two baselines
# *Mean difference*: rank by the mean normalised activation on concept minus deconcept
# positions, $\bar{\tilde z}^c_i - \bar{\tilde z}^d_i$, with no filter. *Interpret-then-Deactivate
# style*: the concept words' top features minus the retain (deconcept) prompts' top features.

# %%
with pd.option_context("display.max_colwidth", None):  # labels in full, not cut at 50 characters
    display(
        pd.DataFrame(
            {
                "method": list(rankings),
                "top-3 neurons": [", ".join(with_label(f, labels) for f in r.top(3)) for r in rankings.values()],
            }
        )
    )

# %% [markdown]
# ## The neuron as a detector
# Score each prompt by the neuron's largest activation over its positions, $\max_t z_i(t)$; an
# ROC curve against captions without the concept shows how cleanly it separates them. The area
# under it (AUROC) is the chance that a random concept prompt outscores a random other one.

# %%
ds = detector_sets(P.coco_negatives, "nudity")
if ds.stand_in:
    display(Markdown(f"**{ds.description}**"))
detectors = compare_detectors(
    rankings, prompt_codes(encoder, sae, ds.positives), prompt_codes(encoder, sae, ds.negatives)
)
fig, ax = plt.subplots(figsize=(5, 5))
for j, d in enumerate(detectors):  # a neuron two methods share is drawn once, dashed the second time
    shared = any(e.neuron == d.neuron for e in detectors[:j])
    ax.plot(d.fpr, d.tpr, ls="--" if shared else "-", lw=2.5 if shared else 1.5,
            label=f"{d.label} (#{d.neuron}): AUROC {d.auroc:.3f} [{d.ci.lo:.2f}, {d.ci.hi:.2f}]"
            + (" (same neuron as above)" if shared else ""))  # fmt: skip
    print(f"{d.label}: {with_label(d.neuron, labels)}, AUROC {d.ci} {chance_note(d.ci)}".rstrip())
ax.plot([0, 1], [0, 1], "k:", lw=1)
ax.set(title=f"Neuron as nudity detector\n{ds.description}", xlabel="false positive rate", ylabel="true positive rate")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()
results = {d.label: {"neuron": d.neuron, **d.ci.as_dict()} for d in detectors}
wb.record(P, "selection_nudity", {"neurons": sel.neurons, "candidates": len(sc.candidates), "detector": results,
                                  "roc_sets": ds.description, "winner_stats": sel.stats})  # fmt: skip

# %% [markdown]
# ## Held out: which selection finds a latent that detects the concept?
# The ROC above scores prompts that mostly *use* the tuple's words. A concept detector should also
# fire on the concept said in other words ("unclothed", "in the buff") and stay quiet on the
# tuple's words used in other senses ("the naked eye", "bare hands", "exposed brick"). Three sets
# written for this check (`data/concepts/nudity_heldout.csv`: concept prompts without the words,
# look-alikes, and neutral scenes; nothing is selected, fitted or chosen on them).
#
# Every selection option runs on the same SAE: the paper's strict filter, a 1% tolerance, per-pair
# scoring (the filter must hold in every pair), selection over content positions only, a coverage
# requirement, the plain lens of notebook 02's discovery (each latent's largest activation over
# content positions, concept minus deconcept: SAEBench's k = 1 sparse probe), the mean difference,
# and one family: the *cover*, the smallest set of latents that pass a 1% tolerance and together fire
# in every concept prompt they can, scored as one detector (their summed activation).
#
# Choosing among many options on a few dozen prompts and then quoting the winner's own score
# flatters it, so the pairs are split three ways (seeded), **by mention**: all pairs whose mentions
# share a concept word ("naked", "completely naked") sit in one part, so no phrasing is on two
# sides. Every option selects on the *selection* part; the *validation* part chooses one option;
# the *test* part, which chose nothing, reports every option, the chosen one included. Each AUROC
# carries its sample sizes and a bootstrap 95% interval. A dense linear probe on the encoder's pooled
# output, fitted on the selection part, stands beside them as a reference: a detector that reads every
# feature at once, not one latent (a single latent can still beat it on a given set). The
# warning column flags an AUROC whose interval contains 0.5 (near chance) or lies under it (below
# chance: the detector prefers the other set; against look-alikes, it prefers the word to the concept).

# %%
from snce_lib.concepts.options import PAPER, SCORES, compare_options, options_frame, serialisable

held = load_heldout("nudity")
opts = compare_options(encoder, sae, pairs, held, name_of=lambda f: with_label(f, labels))
print("sizes:", opts["sizes"], f"(split seed {opts['seed']}; mention groups per part: {opts['groups']})")
held_df = options_frame(opts)
rows = {r["option"]: r for r in opts["rows"]}
fig, ax = plt.subplots(figsize=(11, 6))
names = list(rows)
for j, (key, what) in enumerate(SCORES.items()):
    got = [(i, rows[n][key]) for i, n in enumerate(names) if rows[n].get(key) is not None]
    ys = [i + (j - 1.5) * 0.2 for i, _ in got]
    ax.errorbar([a.auroc for _, a in got], ys, xerr=[[a.auroc - a.lo for _, a in got], [a.hi - a.auroc for _, a in got]],
                fmt="o", ms=4, capsize=2, label=what)  # fmt: skip
ax.axvline(0.5, color="k", ls=":", lw=1, label="chance")
ax.set_yticks(range(len(names)), [n + (" *" if n == opts["chosen"] else "") for n in names])
ax.invert_yaxis()
ax.set(title="Single-latent detectors and the dense probe: AUROC with 95% bootstrap intervals (* chosen on validation)",
       xlabel="AUROC (0.5 = chance)", ylabel="selection option", xlim=(0, 1))  # fmt: skip
ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=5)
fig.tight_layout()
plt.show()
wb.record(P, "heldout_nudity", serialisable(opts))
display(held_df)

# %% [markdown]
# The line below reads the table: the option chosen on validation, and its score on the test pairs,
# which did not choose it (its validation score is no report: it won the contest). When the
# validation part holds few mention groups, several options can tie there; the line says so, and
# the tie goes to the option that fits its own selection pairs best (in-sample: a tie-break, never
# a report), then to the first in the list. Then the held-out check read as a sentence, beside what
# prompt length alone gets (the held-out sets are not matched in length, so a feature that reads
# only how long a prompt is can score there). Then which neuron notebook 04 erases, and why it is
# not always the detector chosen here.

# %%
chosen = rows[opts["chosen"]]
paper = rows[PAPER]
print(f"chosen on validation: {opts['chosen']}, {chosen['label']}; on the test pairs AUROC {chosen['test']}"
      f"{'; ' + chosen['chance'] if chosen['chance'] else ''}")  # fmt: skip
if len(opts["tied"]) > 1:
    fits = "; ".join(f"{n} {rows[n]['selection_fit']:.3f}" for n in opts["tied"])
    print(f"  ({len(opts['tied'])} options tie on validation at {chosen['validation'].auroc:.3f}; the tie goes to the "
          f"best AUROC on the option's own selection pairs, then to the first in order: {fits})")  # fmt: skip
print(
    f"validation holds {len(opts['groups']['validation'])} mention group(s), {opts['sizes']['validation_pairs']} pairs"
)
look = chosen.get("vs_lookalike")
if look is not None and look.hi < 0.5:
    print(f"held out, the chosen latent scores look-alikes above the concept said in other words (AUROC {look}): "
          "it detects the tuple's words, not the concept")  # fmt: skip
words = {k: np.array([len(p.split()) for p in getattr(held, k)]) for k in ("concept", "lookalike", "neutral")}
print(f"prompt length alone (word count): vs look-alikes AUROC {auroc_ci(words['concept'], words['lookalike'])}, "
      f"vs neutral {auroc_ci(words['concept'], words['neutral'])} (mean words: "
      + ", ".join(f"{k} {v.mean():.1f}" for k, v in words.items()) + ")")  # fmt: skip
by_length = auroc_ci(words["concept"], words["lookalike"]).auroc
no_better = [
    r["option"] for r in opts["rows"] if r.get("vs_lookalike") is not None and r["vs_lookalike"].lo <= by_length
]
print(f"held out vs look-alikes, no better than length alone ({by_length:.3f}; interval not above it): "
      + (", ".join(no_better) or "none"))  # fmt: skip
if paper["neuron"] is not None:
    print(f"the paper's filter ({PAPER}): {paper['label']}; on the test pairs AUROC {paper['test']}")
else:
    print(f"the paper's filter ({PAPER}): {paper['note']}")
print(f"erased in notebook 04: {with_label(winner, labels)}, SNCE's selection on all {len(pairs.concept_prompts)} "
      f"pairs (tolerance {sel.options['max_deconcept_share']:g}), because the workbook reimplements SNCE; "
      + ("it is the same latent as the chosen detector."
         if chosen["neurons"] == [winner] else
         f"the chosen detector {chosen['label']} is compared with it here and not erased."))  # fmt: skip

# %% [markdown]
# ## Questions
# 1. How many neurons pass the strict filter here, and how often does the winner fire on the
#    background prompts? Is it a concept neuron or a rare one?
# 2. Mean difference has no filter. If its top neuron detects better here (higher AUROC), what
#    is the risk of erasing it instead?
# 3. Run the selection for `violence` instead of `nudity`. Does the winner's card show violent
#    words?
# 4. In the held-out check, which detectors rank the look-alikes ("the naked eye") above the
#    concept in other words ("an unclothed woman")? What would erasing such a neuron do to a prompt
#    that asks for nudity in other words?
#
# <details><summary>Answers (open after trying)</summary>
#
# 1. `len(sc.candidates)` and `sel.stats["background_firing_share"]`: a winner that almost never
#    fires on the background is a rare latent that happens to dodge every deconcept position,
#    which is why the tolerance exists.
# 2. It ranks by how much more the neuron fires on concept prompts, so a frequent context
#    feature can win; subtracting a feature that also fires on benign prompts changes them too
#    (compare `rankings["mean difference"].top(1)` in `sc.f_d / sc.n_d`, its deconcept share).
# 3. `sel_v, _ = wb.select_with_fallback(encoder, sae, "violence")`, then
#    `display(HTML(feature_card(atlas, sel_v.neurons[0])["html"]))` (it returns the selection and
#    its details, and the card is a dict whose "html" is what to show).
# 4. The cell below lists them: any row whose interval against the look-alikes lies under 0.5 scores
#    the words above the concept, so subtracting that neuron edits prompts that use the words and
#    leaves paraphrases as they were.
# </details>

# %%
words_first = [r["option"] for r in opts["rows"] if r.get("vs_lookalike") is not None and r["vs_lookalike"].hi < 0.5]
print(
    f"1. {len(sc.candidates)} neurons pass the strict filter; the winner fires on "
    f"{sel.stats['background_firing_share'][0]:.2%} of background positions"
)
print("4. prefer the words to the concept (95% interval vs look-alikes under 0.5):", ", ".join(words_first) or "none")
