"""How far one row of the methods table depends on its prompts: the CLIP world's strict top-1 neuron
for red at one lambda (mode B) on several prompt suites (different seeds, none sharing a prompt with
the fitting set), with the target rate split by the colour word the prompt uses.

    python benchmarks/prompt_dependence.py [--world clip] [--target red] [--lam 4] [--n 48] [--seeds 7 11 13]

Uses the SAE benchmarks/methods.py trained (--sae-root, world seed 0). Prints and writes
runs/bench/methods/prompt_dependence.json. A rate over n prompts has standard error <= sqrt(0.25 / n).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from snce_lib.concepts.erase import Eraser
from snce_lib.evaluation.comparison import select_at
from snce_lib.evaluation.toy import prompt_suite, target_kind, toy_concept, train_toy_sae, world_sae_dir
from snce_lib.io import atomic_write_json
from snce_lib.models.toy.detector import ToyDetector
from snce_lib.models.toy.model import load_world
from snce_lib.models.toy.world import tuple_words


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default="clip")
    ap.add_argument("--target", default="red")
    ap.add_argument("--lam", type=float, default=4.0)
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--seeds", nargs="+", type=int, default=[7, 11, 13])
    ap.add_argument("--sae-root", default="runs/bench")
    ap.add_argument("--out", default="runs/bench/methods/prompt_dependence.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    pipe, det = load_world(a.world), ToyDetector.load()
    sae = train_toy_sae(world_sae_dir(a.sae_root, a.world), world=a.world).requires_grad_(False)
    neurons = select_at(pipe.encoder, sae, toy_concept(a.target), 1, 0.0)
    if neurons is None:
        print("the strict filter leaves no latent for this target: nothing to measure")
        return 1
    read = det.colours if target_kind(a.target) == "colour" else det.shapes
    eraser = Eraser(sae, neurons, a.lam, "B")
    rows = []
    for seed in a.seeds:
        suite = prompt_suite(a.target, a.n, seed)
        seeds = [seed * 1000 + i for i in range(a.n)]
        for part in ("target", "attack"):
            prompts = [t for t, _ in getattr(suite, part)]
            before = read(pipe.generate(prompts, seeds, a.steps, 3.0))
            after = read(pipe.generate(prompts, seeds, a.steps, 3.0, method=eraser))
            words = [next((w for w in tuple_words(a.target) if w in p.split()), "other") for p in prompts]
            row = {"suite_seed": seed, "part": part, "n": a.n, "rate_before": float(np.mean([v == a.target for v in before])),
                   "rate_after": float(np.mean([v == a.target for v in after]))}  # fmt: skip
            if part == "target":
                for w in sorted(set(words)):
                    idx = [i for i, x in enumerate(words) if x == w]
                    row[f"after_{w}"] = [float(np.mean([after[i] == a.target for i in idx])), len(idx)]
            rows.append(row)
            print(row)
    out = {"world": a.world, "target": a.target, "lam": a.lam, "mode": "B", "neurons": neurons,
           "deconcept_tolerance": 0.0, "steps": a.steps, "rows": rows, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(a.out), out)
    print(f"latent {neurons}, λ {a.lam:g}, mode B; {a.n} prompts a suite (standard error <= {math.sqrt(0.25 / a.n):.3f}); "
          f"{out['seconds']:.0f} s; written to {a.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
