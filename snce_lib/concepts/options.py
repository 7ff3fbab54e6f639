"""Which selection finds a single latent that detects the concept: every selection option on one SAE,
chosen on a validation split of the pairs and reported on the held-out sets, beside a dense probe.

The options (each what `select_neurons` computes with these options, top-1): the paper's strict filter, a 1% tolerance,
per-pair pooling, selection over content positions only (`concepts.positions`), and the plain
lens of discovery (each latent's largest activation over a prompt's content positions, concept
minus deconcept: the best single latent, as SAEBench's k = 1 sparse probing picks it), and the
mean difference. Each chosen latent is a detector: per prompt its largest activation over every
position after BOS (where the edit applies).

The pairs are split once (seeded) into selection pairs and validation pairs. Every option selects
on the selection pairs; its validation AUROC (validation concept prompts against their deconcept
twins) is what chooses the default. The held-out sets (`heldout`: the concept said without the
tuple's words, against look-alikes and against neutral scenes) are reported and never choose.
The dense probe is a logistic regression on the encoder's pooled output, fitted on the selection
pairs: what any detector on these features could reach, not a single latent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.detection import auroc, chance_note
from snce_lib.concepts.heldout import KINDS, HeldoutSets, fit_output_probe
from snce_lib.concepts.leakage import pooled_output
from snce_lib.concepts.pairs import ConceptPairs, SelectionError
from snce_lib.concepts.positions import content_only, encoder_words
from snce_lib.concepts.ranking import ConceptCodes, rank

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
    "SNCE tol 1%, content positions, per pair": {
        "method": "modulated_frequency",
        "max_deconcept_share": 0.01,
        "positions": "content",
        "pooling": "per_pair",
    },  # fmt: skip
    "max contrast, content positions (k = 1 probe)": {"method": "max_contrast", "positions": "content"},
    "mean difference": {"method": "mean_difference"},
}
PROBE = "dense probe (pooled output)"


@dataclass
class Split:
    select: ConceptPairs
    validate: ConceptPairs


def split_pairs(pairs: ConceptPairs, validation_share: float = 0.3, seed: int = 0) -> Split:
    """A seeded split of the pairs (a pair stays whole): selection pairs and validation pairs."""
    n = len(pairs.concept_prompts)
    n_val = max(1, int(round(validation_share * n)))
    if n - n_val < 2:
        raise SelectionError(f"{pairs.name!r} has {n} pairs: too few to keep {n_val} for validation")
    order = np.random.default_rng(seed).permutation(n)
    val, sel = sorted(order[:n_val].tolist()), sorted(order[n_val:].tolist())

    def part(idx, tag):
        return ConceptPairs(f"{pairs.name} ({tag})", [pairs.concept_prompts[i] for i in idx],
                            [pairs.deconcept_prompts[i] for i in idx], pairs.tuple_words)  # fmt: skip

    return Split(part(sel, "selection"), part(val, "validation"))


def compare_options(encoder, sae, pairs: ConceptPairs, held: HeldoutSets, options: dict[str, dict] | None = None,
                    name_of=None, seed: int = 0) -> dict:  # fmt: skip
    """Every option's top-1 latent on the selection pairs, its validation AUROC and held-out AUROCs,
    and the dense probe's. `name_of(latent)` names a latent in the rows (the atlas's
    `labels.with_label`); default its number. Returns {"rows", "default" (the best validation AUROC
    among the latents), "sizes", "seed"}; a row whose option leaves no latent says so in "note"."""
    name_of = name_of or (lambda f: f"#{int(f)}")
    split = split_pairs(pairs, seed=seed)
    val_c = prompt_codes(encoder, sae, split.validate.concept_prompts)
    val_d = prompt_codes(encoder, sae, split.validate.deconcept_prompts)
    held_codes = {k: prompt_codes(encoder, sae, getattr(held, k)) for k in KINDS}
    # the selection pairs' codes once, over every position and over content positions (what
    # `select_neurons` computes for each call)
    every = ConceptCodes(prompt_codes(encoder, sae, split.select.concept_prompts),
                         prompt_codes(encoder, sae, split.select.deconcept_prompts))  # fmt: skip
    content = ConceptCodes(*(content_only(c, encoder_words(encoder, c)) for c in (every.concept, every.deconcept)))
    rows = []
    for name, opt in (options or OPTIONS).items():
        row = {"option": name, "options": dict(opt), "neuron": None, "label": "", "note": ""}
        kw = {k: v for k, v in opt.items() if k not in ("method", "positions")}
        positions = opt.get("positions", "all")
        if positions != "all":
            kw["include_padding"] = False
        ranking = rank(content if positions == "content" else every, opt["method"], **kw)
        if len(ranking) == 0:
            rows.append({**row, "note": f"no latent passes {name}'s filter"})
            continue
        n = ranking.top(1)[0]
        scores = {k: held_codes[k].max_activation([n])[0] for k in KINDS}
        row.update(neuron=int(n), label=name_of(n),
                   validation=auroc(val_c.max_activation([n])[0], val_d.max_activation([n])[0]),
                   vs_lookalike=auroc(scores["concept"], scores["lookalike"]),
                   vs_neutral=auroc(scores["concept"], scores["neutral"]))  # fmt: skip
        rows.append(row)
    probe = fit_output_probe(encoder, split.select.concept_prompts, split.select.deconcept_prompts)

    def probe_score(prompts):
        return probe.decision_function(pooled_output(encoder, prompts))

    ph = {k: probe_score(getattr(held, k)) for k in KINDS}
    rows.append({"option": PROBE, "options": {}, "neuron": None, "label": "every feature (not one latent)", "note": "",
                 "validation": auroc(probe_score(split.validate.concept_prompts),
                                     probe_score(split.validate.deconcept_prompts)),
                 "vs_lookalike": auroc(ph["concept"], ph["lookalike"]),
                 "vs_neutral": auroc(ph["concept"], ph["neutral"])})  # fmt: skip
    for r in rows:
        r["chance"] = "; ".join(
            f"{what}: {chance_note(r.get(key))}" for key, what in
            (("validation", "validation"), ("vs_lookalike", "vs look-alikes"), ("vs_neutral", "vs neutral"))
            if chance_note(r.get(key))
        )  # fmt: skip
    latents = [r for r in rows if r["neuron"] is not None]
    best = max(latents, key=lambda r: r["validation"]) if latents else None
    return {
        "rows": rows,
        "default": best["option"] if best else None,
        "sizes": {
            "selection_pairs": len(split.select.concept_prompts),
            "validation_pairs": len(split.validate.concept_prompts),
            **held.sizes,
        },  # fmt: skip
        "seed": seed,
    }


def options_frame(result: dict):
    """`compare_options` as a table a reader compares: option, latent with its label, the three AUROCs."""
    import pandas as pd

    out = []
    for r in result["rows"]:
        out.append({"option": r["option"] + (" (chosen on validation)" if r["option"] == result["default"] else ""),
                    "latent": r["label"] or r["note"],
                    "validation AUROC": r.get("validation"), "held-out vs look-alikes": r.get("vs_lookalike"),
                    "held-out vs neutral": r.get("vs_neutral"), "warning": r.get("chance", "")})  # fmt: skip
    return pd.DataFrame(out).set_index("option").round(3)
