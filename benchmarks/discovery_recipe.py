"""Which family recipe (`concepts.family.find_family`: how many vocabulary words, how many latents a
word, max or mean pooling, probe or uniform weights) generalises from four examples? Chosen here, on
the project's own concept pairs, never on the generalisation set:

    python benchmarks/discovery_recipe.py [--sae runs/offline/sae] [--out runs/bench/discovery_recipe.json]
                                          [--n-words 10 20 40 --per-word 1 2 4 --pooling max mean ...]

For each studied concept (nudity, violence, gun, knife) and each of its mention groups with at least
four pairs (`concepts.pairs.mention_groups`: pairs whose mentions share a concept word), four pairs of
that group are the examples (concept prompts) and counterexamples (their twins), as a user would give
them. A recipe is scored on what the four examples never say: the concept prompts of the concept's
*other* mention groups, against the concept prompts of the three other concepts (same templates and
lengths, another concept). Each recipe's AUROC is averaged over every (concept, group) draw; the top-1
lens and the dense probe are printed beside them. The best mean is FAMILY_RECIPE.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.detection import auroc
from snce_lib.concepts.family import find_family, fit_concept_probe, pooled_block
from snce_lib.concepts.generalisation import lens_latent
from snce_lib.concepts.options import dedupe_pairs
from snce_lib.concepts.pairs import load_concept, mention_groups
from snce_lib.concepts.ranking import prompt_max
from snce_lib.concepts.vocabulary import vocabulary_codes
from snce_lib.io import atomic_write_json
from snce_lib.models.encoders import load_offline
from snce_lib.rng import numpy_rng
from snce_lib.sae.formats import from_pretrained

CONCEPTS = ("nudity", "violence", "gun", "knife")
GRID = {"n_words": (10, 20, 40), "per_word": (1, 2, 4), "pooling": ("max", "mean"), "weighting": ("probe", "uniform")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sae", default="runs/offline/sae")
    ap.add_argument("--out", default="runs/bench/discovery_recipe.json")
    ap.add_argument("--per-group", type=int, default=4, help="example pairs drawn from a mention group")
    ap.add_argument("--max-test", type=int, default=60, help="fresh prompts a side, at most")
    for knob, values in GRID.items():
        ap.add_argument(f"--{knob.replace('_', '-')}", nargs="+", type=type(values[0]), default=list(values),
                        help=f"values of {knob} to try (default {' '.join(map(str, values))})")  # fmt: skip
    a = ap.parse_args()
    grid = {k: getattr(a, k) for k in GRID}
    t0 = time.perf_counter()
    enc, sae = load_offline(fp16=False), from_pretrained(a.sae).requires_grad_(False)
    layer = sae.cfg.layer or None
    vocab = vocabulary_codes(enc, sae, cache_dir=a.sae)
    pairs = {c: dedupe_pairs(load_concept(c)) for c in CONCEPTS}
    rng = numpy_rng(0, "discovery-recipe")
    draws = []
    for c, p in pairs.items():
        groups = np.asarray(mention_groups(p))
        others = [q for o in CONCEPTS if o != c for q in pairs[o].concept_prompts]
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            if len(idx) < a.per_group:
                continue
            pick = rng.choice(idx, a.per_group, replace=False)
            pos = [p.concept_prompts[i] for i in np.flatnonzero(groups != g)]
            pos = [pos[i] for i in rng.permutation(len(pos))[: a.max_test]]
            neg = [others[i] for i in rng.permutation(len(others))[: len(pos)]]
            draws.append({"concept": c, "group": int(g), "examples": [p.concept_prompts[i] for i in pick],
                          "counterexamples": [p.deconcept_prompts[i] for i in pick], "pos": pos, "neg": neg})  # fmt: skip
    print(f"{len(draws)} draws over {len(CONCEPTS)} concepts", flush=True)
    recipes = [dict(zip(grid, v)) for v in itertools.product(*grid.values())]
    scores = {json.dumps(r, sort_keys=True): [] for r in recipes}
    base = {"top-1 lens": [], "dense probe": []}
    for d in draws:
        ex, cx = prompt_codes(enc, sae, d["examples"]), prompt_codes(enc, sae, d["counterexamples"])
        pos, neg = prompt_codes(enc, sae, d["pos"]), prompt_codes(enc, sae, d["neg"])
        probe = fit_concept_probe(enc, d["examples"], d["counterexamples"], layer)
        top = lens_latent(ex, cx, enc)
        base["top-1 lens"].append(auroc(prompt_max(pos)[:, top], prompt_max(neg)[:, top]))
        base["dense probe"].append(auroc(probe.score(pooled_block(enc, d["pos"], layer)),
                                         probe.score(pooled_block(enc, d["neg"], layer))))  # fmt: skip
        for r in recipes:
            fam = find_family(enc, sae, d["examples"], d["counterexamples"], vocab, ex_codes=ex, cx_codes=cx,
                              probe=probe, **r)  # fmt: skip
            scores[json.dumps(r, sort_keys=True)].append(auroc(fam.scores(pos), fam.scores(neg)))
    table = sorted(({"recipe": json.loads(k), "mean_auroc": float(np.mean(v)), "min_auroc": float(np.min(v))}
                    for k, v in scores.items()), key=lambda r: -r["mean_auroc"])  # fmt: skip
    for name, v in base.items():
        print(f"{name:>12}: mean AUROC {np.mean(v):.3f} (min {np.min(v):.3f}) over {len(v)} draws")
    for r in table[:10]:
        print(f"family {r['recipe']}: mean AUROC {r['mean_auroc']:.3f} (min {r['min_auroc']:.3f})")
    print(f"chosen: {table[0]['recipe']}; {time.perf_counter() - t0:.0f} s")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out, {"draws": [{k: d[k] for k in ("concept", "group")} for d in draws],
                              "baselines": {k: float(np.mean(v)) for k, v in base.items()},
                              "recipes": table, "chosen": table[0]["recipe"]})  # fmt: skip


if __name__ == "__main__":
    main()
