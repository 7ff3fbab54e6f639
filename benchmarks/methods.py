"""Every erasure method side by side in the toy world, targets "red" and "triangle", same prompts and seeds.

    python benchmarks/methods.py [--n 16] [--steps 15] [--full] [--out runs/bench/methods/table.json]

Methods (`snce_lib/concepts/methods.py`): SNCE top-1 strict (modes A and B) and with a 1%
tolerance, top-10 and top-20, the latent family, Concept Steerers, Interpret-then-Deactivate,
LEACE, probe projection, the negative prompt and word removal (oracle), with a coarse lambda grid
(`--full`: 48 prompts a set and a finer grid). Writes the rows (`evaluation.comparison.KEYS` plus
`edit_time_share`) to --out and prints them. With n prompts a rate's standard error is at most
sqrt(0.25 / n) (0.125 at n = 16, 0.072 at n = 48). The world: the MiniLM toy world (world
"minilm"); its SAE is trained into --sae-dir on first use (as benchmarks/toy_table.py does).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import pandas as pd
import torch

from snce_lib.evaluation.comparison import KEYS, method_rows, world_methods
from snce_lib.evaluation.toy import train_toy_sae
from snce_lib.io import atomic_write_json
from snce_lib.models.toy.detector import ToyDetector
from snce_lib.models.toy.model import load_toy_pipeline


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="prompts per set (target, other, attack)")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--full", action="store_true", help="48 prompts a set, lambdas 0.5-8")
    ap.add_argument("--targets", nargs="+", default=["red", "triangle"])
    ap.add_argument("--sae-dir", default="runs/bench/toy")
    ap.add_argument("--out", default="runs/bench/methods/table.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)  # before any work: the table has somewhere to go
    n = 48 if a.full else a.n
    lams = ({"snce": (0.5, 1.0, 2.0, 4.0, 8.0), "topk": (0.5, 1.0, 2.0, 4.0), "family": (0.5, 1.0, 2.0, 4.0),
             "steer": (0.5, 1.0, 2.0, 4.0)} if a.full else None)  # fmt: skip
    t0 = time.perf_counter()
    pipe, det = load_toy_pipeline(), ToyDetector.load()
    sae = train_toy_sae(Path(a.sae_dir)).requires_grad_(False)
    rows = []
    for target in a.targets:
        entries = world_methods(pipe.encoder, sae, target, lams)
        rows += method_rows(pipe, det, entries, target, "minilm", n=n, steps=a.steps)
        atomic_write_json(Path(a.out), rows)  # after each target: an interrupted run keeps what it measured
    df = pd.DataFrame(rows)[[*KEYS, "edit_time_share"]]
    with pd.option_context("display.width", 200, "display.max_rows", 200, "display.max_columns", 20):
        print(df.drop(columns=["world", "n_prompts"]).round(3).to_string(index=False))
    print(f"\n{len(rows)} rows, {n} prompts a set (rate standard error <= {math.sqrt(0.25 / n):.3f}), "
          f"{a.steps} steps, {time.perf_counter() - t0:.0f} s; written to {a.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
