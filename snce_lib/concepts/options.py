"""Which selection finds a single latent that detects the concept: every selection option on one SAE,
chosen on one split of the pairs and reported on another, beside a dense probe and the held-out sets.

The options (each what `select_neurons` computes with these options, top-1): the paper's strict filter, a 1% tolerance,
per-pair scoring (the filter in every pair), selection over content positions only (`concepts.positions`),
a coverage requirement (the latent fires in half of the concept prompts), the plain lens of discovery
(each latent's largest activation over a prompt's content positions, concept minus deconcept: the best
single latent, as SAEBench's k = 1 sparse probing picks it), and the mean difference. Each chosen latent
is a detector: per prompt its largest activation over every position after BOS (where the edit applies).

The pairs are deduplicated, then split once (seeded) into three parts **grouped by mention**: pairs whose
mentions share a concept word ("naked", "completely naked") sit in one part (`pairs.mention_groups`), so
no phrasing is on two sides. Every option selects on the selection part; its validation AUROC (validation
concept prompts against their twins) chooses one option; the **test** part, which chose nothing, reports
every option, the chosen one included. The held-out sets (`heldout`: the concept said without the tuple's
words, against look-alikes and against neutral scenes) are reported and never choose. Every AUROC carries
its sample sizes and a bootstrap 95% interval (`detection.auroc_ci`). The dense probe is a logistic
regression on the encoder's pooled output, fitted on the selection part: what a detector on every
feature reaches, not a single latent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.detection import AurocCI, auroc, auroc_ci, chance_note
from snce_lib.concepts.heldout import KINDS, HeldoutSets, fit_output_probe
from snce_lib.concepts.leakage import pooled_output
from snce_lib.concepts.pairs import ConceptPairs, SelectionError, mention_groups
from snce_lib.concepts.positions import encoder_words
from snce_lib.concepts.ranking import ConceptCodes
from snce_lib.concepts.selection import rank_counted
from snce_lib.rng import numpy_rng

PAPER = "SNCE strict (paper)"
OPTIONS: dict[str, dict] = {
    PAPER: {"method": "modulated_frequency"},
    "SNCE tol 1%": {"method": "modulated_frequency", "max_deconcept_share": 0.01},
    "SNCE strict, per pair": {"method": "modulated_frequency", "pooling": "per_pair"},
    "SNCE tol 1%, per pair": {"method": "modulated_frequency", "max_deconcept_share": 0.01, "pooling": "per_pair"},
    "SNCE strict, content positions": {"method": "modulated_frequency", "positions": "content"},
    "SNCE tol 1%, content positions": {
        "method": "modulated_frequency",
        "max_deconcept_share": 0.01,
        "positions": "content",
    },  # fmt: skip
    "SNCE tol 1%, coverage 50%": {"method": "modulated_frequency", "max_deconcept_share": 0.01, "min_coverage": 0.5},
    "max contrast, content positions (k = 1 probe)": {"method": "max_contrast", "positions": "content"},
    "mean difference": {"method": "mean_difference"},
    "cover, tol 1% (every latent of it)": {"method": "cover", "max_deconcept_share": 0.01, "family": True},
}
PROBE = "dense probe (pooled output)"
#: The parts of the pairs, in order: where options select, where one option is chosen, where all are reported.
PARTS = ("selection", "validation", "test")
#: Each part's share of the pairs (reached as closely as whole mention groups allow).
SHARES = (0.5, 0.25, 0.25)
#: The AUROCs every row reports, by key, with what they compare.
SCORES = {"validation": "validation pairs (chooses)", "test": "test pairs", "vs_lookalike": "held out vs look-alikes",
          "vs_neutral": "held out vs neutral"}  # fmt: skip


@dataclass
class Split:
    select: ConceptPairs
    validate: ConceptPairs
    test: ConceptPairs
    groups: dict
    """Part -> the mention groups it holds (their ids in `pairs.mention_groups`)."""


def dedupe_pairs(pairs: ConceptPairs) -> ConceptPairs:
    """The pairs with each concept prompt once (its first twin kept), before any split: a prompt on two
    sides of a split would score on the pairs that chose it."""
    seen, keep = set(), []
    for i, c in enumerate(pairs.concept_prompts):
        if c not in seen:
            seen.add(c)
            keep.append(i)
    return ConceptPairs(pairs.name, [pairs.concept_prompts[i] for i in keep],
                        [pairs.deconcept_prompts[i] for i in keep], pairs.tuple_words)  # fmt: skip


#: Mention groups each part of the split gets at least, when there are enough groups.
MIN_GROUPS = 2


def split_pairs(pairs: ConceptPairs, shares: tuple[float, float, float] = SHARES, seed: int = 0) -> Split:
    """A seeded three-way split of the (deduplicated) pairs, each mention group whole on one side: groups
    largest first (a seeded order within one size), each into the part furthest below its share, except that with `2 x 3` groups or
    more every part gets at least two (a part of one mention group, all its pairs alike, ties every
    option that fires on that mention and cannot choose between them). A pair stays whole."""
    pairs = dedupe_pairs(pairs)
    groups = np.asarray(mention_groups(pairs))
    ids = np.unique(groups)
    if len(ids) < 3:
        raise SelectionError(
            f"{pairs.name!r} has {len(ids)} mention group(s) (pairs whose mentions share a concept word): too few "
            "to split three ways with no phrasing on two sides; write pairs that say the concept in more ways"
        )
    sizes = {g: int((groups == g).sum()) for g in ids}
    # largest groups first (the seed orders groups of one size), so that the shares come out close
    order = sorted(numpy_rng(seed, "concept-split").permutation(ids), key=lambda g: -sizes[g])
    target = np.asarray(shares, dtype=float) / sum(shares) * len(groups)
    filled, count = np.zeros(3), np.zeros(3, dtype=int)
    least = MIN_GROUPS if len(ids) >= MIN_GROUPS * 3 else 1
    where: dict[int, int] = {}
    for i, g in enumerate(order):
        short = [p for p in range(3) if count[p] < least]
        left = len(order) - i
        # when only as many groups are left as the parts still lack, they go to the parts that lack them
        need = sum(least - count[p] for p in short)
        part = short[0] if short and left <= need else int(np.argmax(target - filled))
        where[int(g)] = part
        filled[part] += sizes[g]
        count[part] += 1

    def part(k: int, tag: str) -> ConceptPairs:
        idx = [i for i, g in enumerate(groups) if where[int(g)] == k]
        return ConceptPairs(f"{pairs.name} ({tag})", [pairs.concept_prompts[i] for i in idx],
                            [pairs.deconcept_prompts[i] for i in idx], pairs.tuple_words)  # fmt: skip

    parts = [part(k, t) for k, t in enumerate(PARTS)]
    if min(len(q.concept_prompts) for q in parts) < 2:
        raise SelectionError(f"{pairs.name!r}: a part of the split holds fewer than 2 pairs; too few pairs to split")
    return Split(*parts, {t: sorted(g for g, k in where.items() if k == n) for n, t in enumerate(PARTS)})


def compare_options(encoder, sae, pairs: ConceptPairs, held: HeldoutSets, options: dict[str, dict] | None = None,
                    name_of=None, seed: int = 0) -> dict:  # fmt: skip
    """Every option's top-1 latent on the selection part; its AUROCs (with 95% intervals) on the
    validation part, the test part and the held-out sets; the dense probe's. `name_of(latent)` names a
    latent in the rows (the atlas's `labels.with_label`); default its number. Returns {"rows",
    "chosen" (the option with the best validation AUROC; ties to the better AUROC on the selection pairs,
    "selection_fit", then to the first in order; its test AUROC is its report), "tied" (the options that
    share that validation AUROC), "sizes", "seed", "groups"}; a row whose option leaves no latent says so in "note"."""
    name_of = name_of or (lambda f: f"#{int(f)}")
    split = split_pairs(pairs, seed=seed)
    scored = {"validation": split.validate, "test": split.test}
    codes = {k: (prompt_codes(encoder, sae, p.concept_prompts), prompt_codes(encoder, sae, p.deconcept_prompts))
             for k, p in scored.items()}  # fmt: skip
    held_codes = {k: prompt_codes(encoder, sae, getattr(held, k)) for k in KINDS}
    every = ConceptCodes(prompt_codes(encoder, sae, split.select.concept_prompts),
                         prompt_codes(encoder, sae, split.select.deconcept_prompts))  # fmt: skip
    # the content words of the selection codes once, for every option that counts content positions
    words = (encoder_words(encoder, every.concept), encoder_words(encoder, every.deconcept))

    def aurocs(pos_neg: dict) -> dict:
        return {key: auroc_ci(*pos_neg[key], seed=seed) for key in SCORES}

    rows = []
    for name, opt in (options or OPTIONS).items():
        row = {"option": name, "options": dict(opt), "neuron": None, "neurons": [], "label": "", "note": ""}
        kw = {k: v for k, v in opt.items() if k not in ("method", "positions", "family")}
        ranking, _, _ = rank_counted(every, opt["method"], opt.get("positions", "all"), words=words, **kw)
        if len(ranking) == 0:
            rows.append({**row, "note": f"no latent passes {name}'s filter"})
            continue
        # a family option is one detector of all its latents (their summed activation), else the top one
        ns = ranking.top(len(ranking)) if opt.get("family") else ranking.top(1)
        h = {k: held_codes[k].max_activation(ns)[0] for k in KINDS}
        got = {k: (c.max_activation(ns)[0], d.max_activation(ns)[0]) for k, (c, d) in codes.items()}
        got.update(vs_lookalike=(h["concept"], h["lookalike"]), vs_neutral=(h["concept"], h["neutral"]))
        label = name_of(ns[0]) if len(ns) == 1 else f"{len(ns)} latents: " + "; ".join(name_of(f) for f in ns[:3])
        # in-sample, on the pairs that selected it: only a tie-break, never a report
        fit = auroc(every.concept.max_activation(ns)[0], every.deconcept.max_activation(ns)[0])
        rows.append({**row, "neuron": int(ns[0]), "neurons": [int(f) for f in ns], "label": label,
                     "selection_fit": float(fit), **aurocs(got)})  # fmt: skip
    probe = fit_output_probe(encoder, split.select.concept_prompts, split.select.deconcept_prompts)

    def probe_score(prompts):
        return probe.decision_function(pooled_output(encoder, prompts))

    ph = {k: probe_score(getattr(held, k)) for k in KINDS}
    got = {k: (probe_score(p.concept_prompts), probe_score(p.deconcept_prompts)) for k, p in scored.items()}
    got.update(vs_lookalike=(ph["concept"], ph["lookalike"]), vs_neutral=(ph["concept"], ph["neutral"]))
    rows.append({"option": PROBE, "options": {}, "neuron": None, "label": "every feature (not one latent)", "note": "",
                 **aurocs(got)})  # fmt: skip
    for r in rows:
        r["chance"] = "; ".join(f"{what}: {chance_note(r[key])}" for key, what in SCORES.items()
                                if r.get(key) is not None and chance_note(r[key]))  # fmt: skip
    latents = [r for r in rows if r["neuron"] is not None]
    # ties on validation go to the better fit on the selection pairs (a latent silent there loses), then
    # to the first option in `options`' order (the paper's filter first)
    best = max(latents, key=lambda r: (r["validation"].auroc, r["selection_fit"])) if latents else None
    tied = [r["option"] for r in latents if best and r["validation"].auroc == best["validation"].auroc]
    return {
        "rows": rows,
        "chosen": best["option"] if best else None,
        "tied": tied,
        "sizes": {
            "selection_pairs": len(split.select.concept_prompts),
            "validation_pairs": len(split.validate.concept_prompts),
            "test_pairs": len(split.test.concept_prompts),
            **held.sizes,
        },  # fmt: skip
        "groups": split.groups,
        "seed": seed,
    }


def options_frame(result: dict):
    """`compare_options` as a table a reader compares: option, latent with its label, each AUROC with
    its 95% interval, the warnings. The chosen option is marked; its test column is its report."""
    import pandas as pd

    out = []
    for r in result["rows"]:
        row = {"option": r["option"] + (" (chosen on validation)" if r["option"] == result["chosen"] else ""),
               "latent": r["label"] or r["note"]}  # fmt: skip
        for key, what in SCORES.items():
            a = r.get(key)
            row[what] = None if a is None else f"{a.auroc:.3f} [{a.lo:.2f}, {a.hi:.2f}]"
        row["warning"] = r.get("chance", "")
        out.append(row)
    return pd.DataFrame(out).set_index("option")


def serialisable(result: dict) -> dict:
    """`compare_options`'s result as plain JSON data (intervals as {"auroc", "ci95", "n_pos", "n_neg"})."""
    rows = [{k: (v.as_dict() if isinstance(v, AurocCI) else v) for k, v in r.items()} for r in result["rows"]]
    return {**result, "rows": rows}
