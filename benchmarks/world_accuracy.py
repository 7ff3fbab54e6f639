"""Each toy world's colour and shape accuracy before any erasure, on fresh captions with the training words.

    python benchmarks/world_accuracy.py [--worlds minilm clip] [--n 192] [--steps 20]

The same captions, seeds and detector for every world (`evaluation.toy.accuracy_before_erasure`,
seed 11, as benchmarks/toy_table.py); for the CLIP world also its encoder's zero-shot retrieval
accuracy as recorded when it was trained (data/toy_clip/encoder/clip.json). A share's
standard error at n = 192 is at most 0.036.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from snce_lib.evaluation.toy import accuracy_before_erasure
from snce_lib.models.toy.detector import ToyDetector
from snce_lib.models.toy.model import WORLDS, load_world, world_folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", nargs="+", choices=list(WORLDS), default=list(WORLDS))
    ap.add_argument("--n", type=int, default=192)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(2)
    det = ToyDetector.load()
    for world in a.worlds:
        t0 = time.perf_counter()
        acc = accuracy_before_erasure(load_world(world), det, n=a.n, seed=11, steps=a.steps)
        out = {"world": world, **{k: acc[k] for k in ("colour", "shape", "n")}, "steps": a.steps,
               "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        meta = world_folder(world) / "encoder" / "clip.json"
        if meta.exists():
            m = json.loads(meta.read_text())
            out["clip_retrieval"] = m["retrieval"]
            out["clip_train_seconds"] = m["train_seconds"]
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
