"""The toy world's full table: accuracy before erasure, then lambda x mode for "red" and "triangle".

python benchmarks/toy_table.py --n 48 --out runs/bench/toy_table.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from snce_lib.evaluation.toy import accuracy_before_erasure, run_experiment, train_toy_sae
from snce_lib.io import atomic_write_json
from snce_lib.models.toy.detector import ToyDetector, accuracy
from snce_lib.models.toy.model import load_toy_pipeline


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default="runs/bench/toy_table.json")
    ap.add_argument("--sae-dir", default="runs/bench/toy")
    ap.add_argument("--tol", type=float, default=0.0)
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    pipe, det = load_toy_pipeline(), ToyDetector.load()
    sae = train_toy_sae(Path(a.sae_dir))
    report = {"detector_on_renders": accuracy(det, n=2000, seed=99)}
    acc = accuracy_before_erasure(pipe, det, n=192, seed=11, steps=a.steps)
    report["model_accuracy"] = {k: acc[k] for k in ("colour", "shape", "n")}
    report["sae_metrics"] = sae.metrics
    for target in ("red", "triangle"):
        res = run_experiment(pipe, det, sae, target, n=a.n, steps=a.steps, keep_images=False, max_deconcept_share=a.tol)
        report[target] = {"neuron": res.selection.neurons, "selection_stats": res.selection.stats, "rows": res.rows}
        print(pd.DataFrame(res.rows).round(3).to_string())
    report["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(a.out, report)
    print(json.dumps({k: v for k, v in report.items() if k not in ("red", "triangle")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
