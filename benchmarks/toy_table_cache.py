"""Notebook 04's lambda x mode table on the toy world with and without the toy pipeline's batch cache
(`ToyPipeline.generate` serves a batch again whose conditioning, seeds, steps and guidance it has made),
alternating, on a fresh pipeline each time; checks that both give the same rows.

    python benchmarks/toy_table_cache.py [--n 12] [--steps 15] [--repeats 2]

Uses the offline run's toy SAE (runs/offline/toy, made by notebook 04) or trains one into a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--toy-sae", default="runs/offline/toy")
    a = ap.parse_args()

    from snce_lib.evaluation.toy import run_experiment, train_toy_sae
    from snce_lib.models.toy.detector import ToyDetector
    from snce_lib.models.toy.model import load_toy_pipeline

    folder = Path(a.toy_sae) if Path(a.toy_sae, "sae", "metrics.json").exists() else Path(tempfile.mkdtemp()) / "toy"
    sae = train_toy_sae(folder, progress=False)
    det = ToyDetector.load()
    rows, seconds = {}, {"cache": [], "no cache": []}
    for _ in range(a.repeats):
        for label in ("no cache", "cache"):
            pipe = load_toy_pipeline()
            if label == "no cache":
                pipe._batch_key = lambda *args: object()  # a key that never repeats: every batch is run
            t0 = time.perf_counter()
            rows[label] = [run_experiment(pipe, det, sae, t, n=a.n, steps=a.steps, keep_images=False).rows
                           for t in ("red", "triangle")]  # fmt: skip
            seconds[label].append(round(time.perf_counter() - t0, 1))
    print(f"lambda x mode table, red and triangle, {a.n} prompts a set, {a.steps} steps, {torch.get_num_threads()} "
          f"threads: without the cache {seconds['no cache']} s, with it {seconds['cache']} s; "
          f"rows identical: {rows['cache'] == rows['no cache']}")  # fmt: skip


if __name__ == "__main__":
    main()
