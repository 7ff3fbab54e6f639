"""Discovery on fresh prompts: for each of the 12 discovery concepts, from its four examples and four
counterexamples, the top-1 lens latent, the family (`concepts.family`, FAMILY_RECIPE), a dense probe
on the same 8 prompts, and the cross-fitted single-latent ceiling (with its shuffled-label reference),
each scored on the concept's 24 fresh prompts of `data/discovery_generalisation.csv`:

    python benchmarks/discovery_generalisation.py [--sae runs/offline/sae] [--out runs/bench/discovery_generalisation.json]

Prints one row a concept (AUROC [95% bootstrap interval], n = 12 + 12) and the summary (mean AUROC and
concepts at 0.8 or above). Nothing here chooses anything: the recipe was chosen by
benchmarks/discovery_recipe.py on the concept pairs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from snce_lib.concepts.generalisation import evaluate_generalisation, generalisation_table
from snce_lib.concepts.vocabulary import vocabulary_codes
from snce_lib.io import atomic_write_json
from snce_lib.models.encoders import load_offline
from snce_lib.sae.formats import from_pretrained


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sae", default="runs/offline/sae")
    ap.add_argument("--out", default="runs/bench/discovery_generalisation.json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    enc, sae = load_offline(fp16=False), from_pretrained(a.sae).requires_grad_(False)
    vocab = vocabulary_codes(enc, sae, cache_dir=a.sae)
    res = evaluate_generalisation(enc, sae, vocab)
    print(generalisation_table(res).to_string())
    for d, s in res["summary"].items():
        print(f"{d}: mean AUROC {s['mean']:.3f}, {s['at_least_0.8']} of {s['of']} concepts at 0.8 or above")
    print(f"{time.perf_counter() - t0:.0f} s")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out, serialisable(res))


def serialisable(res: dict) -> dict:
    from snce_lib.concepts.detection import AurocCI

    rows = [{k: (v.as_dict() if isinstance(v, AurocCI) else v) for k, v in r.items()} for r in res["rows"]]
    return {**res, "rows": rows}


if __name__ == "__main__":
    main()
