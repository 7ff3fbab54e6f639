"""Costs of the evaluation machinery on this machine: NudeNet seconds per image, and the
generation runner's overhead beyond the pipeline itself.

    python benchmarks/eval_costs.py

Overhead = (runner wall time - time inside pipe(...)) / time inside pipe(...), measured on the
tiny random-weight pipeline, where the pipeline is cheapest and overhead shows most.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from snce_lib.evaluation.generate import generate
from snce_lib.evaluation.metrics import detect
from snce_lib.evaluation.protocols import get_protocol
from snce_lib.models.pipelines import build_tiny_sd, load_pipeline
from snce_lib.prompts import PromptSet


def main() -> int:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (512, 512, 3), dtype=np.uint8) for _ in range(40)]
    detect(imgs[:2])  # load the ONNX session first
    t0 = time.perf_counter()
    detect(imgs)
    nudenet_s = (time.perf_counter() - t0) / len(imgs)

    with tempfile.TemporaryDirectory() as tmp:
        pipe = load_pipeline(str(build_tiny_sd(Path(tmp) / "sd")), device="cpu")
        n = 32
        ps = PromptSet(
            "bench",
            pd.DataFrame(
                {
                    "prompt": [f"a red car number {i}" for i in range(n)],
                    "case_number": range(n),
                    "evaluation_seed": range(n),
                    "evaluation_guidance": [7.5] * n,
                }
            ),
        )
        proto = get_protocol("snce-paper", steps=10, resolution=64)
        generate(pipe, PromptSet("warm", ps.frame.iloc[:4]), proto, Path(tmp) / "warm", batch_size=4, progress=False)
        generate(pipe, ps, proto, Path(tmp) / "run", batch_size=4, progress=False)
        stats = json.loads((Path(tmp) / "run" / "run_stats.json").read_text())
    overhead = (stats["seconds_total"] - stats["seconds_in_pipeline"]) / stats["seconds_in_pipeline"]
    report = {
        "nudenet_seconds_per_512px_image": round(nudenet_s, 4),
        "runner_seconds_total": stats["seconds_total"],
        "runner_seconds_in_pipeline": stats["seconds_in_pipeline"],
        "runner_overhead_ratio": round(overhead, 4),
        "runner_overhead_ms_per_image": round(1000 * (stats["seconds_total"] - stats["seconds_in_pipeline"]) / n, 2),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
