"""Train the toy world's model and detector on this CPU and write them to data/toy/.

    python scripts/train_toy.py                 # the MiniLM world's committed recipe (seed 0)
    python scripts/train_toy.py --world clip    # the CLIP world: its small CLIP, then its UNet
    python scripts/train_toy.py --steps 300     # a quick look

Writes data/toy/unet.safetensors + toy.json (the UNet's EMA weights, fp16, and the config,
wall time and loss history) and data/toy/detector.safetensors + detector.json. The CLIP
world (data/toy_clip/) shares the detector; its text encoder (CLIPTextModel + CLIPTokenizer
files, clip.json with the training record) is written to encoder/ before the UNet trains on it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from snce_lib.models.toy.detector import accuracy, train_detector
from snce_lib.models.toy.model import WORLDS, ToyConfig, train_toy, world_folder


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--world", choices=list(WORLDS), default="minilm")
    ap.add_argument("--clip-steps", type=int, default=None, help="the CLIP world's contrastive steps")
    ap.add_argument("--out", default=None, help="default: the world's folder under data/")
    ap.add_argument("--snapshots", default=None, help="folder for EMA snapshots every 500 steps")
    ap.add_argument("--skip-detector", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    out = Path(a.out) if a.out else world_folder(a.world)
    if a.world == "clip":
        from snce_lib.models.toy.clip import ClipConfig, train_clip

        ccfg = ClipConfig(seed=a.seed, **({"steps": a.clip_steps} if a.clip_steps else {}))
        meta = train_clip(ccfg, out / "encoder")
        print(json.dumps({k: v for k, v in meta.items() if k != "history"}))
    elif not a.skip_detector:
        t0 = time.perf_counter()
        det = train_detector(seed=a.seed)
        acc = accuracy(det)
        det.save(out)
        print(json.dumps({"detector_seconds": round(time.perf_counter() - t0, 1), "detector_accuracy": acc}))
    cfg = ToyConfig(steps=a.steps, seed=a.seed, encoder=a.world)
    _, hist = train_toy(cfg, out, snapshot_dir=Path(a.snapshots) if a.snapshots else None)
    meta = json.loads((out / "toy.json").read_text())
    print(json.dumps({"train_seconds": meta["train_seconds"], "final_loss": meta["final_loss"], "steps": a.steps}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
