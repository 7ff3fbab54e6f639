"""Every erasure method side by side in both toy worlds, targets "red" and "triangle", same prompts and
seeds; then the same methods on the offline encoder's nudity prompts, where no images exist.

    python benchmarks/methods.py [--worlds minilm clip] [--n 16] [--steps 15] [--full]
                                 [--out runs/bench/methods/table.json] [--nudity-sae runs/offline/sae]

Methods (`snce_lib/concepts/methods.py`): SNCE top-1 strict (modes A and B) and with a 1%
tolerance, top-10 and top-20, the latent family, Concept Steerers, Interpret-then-Deactivate,
LEACE, probe projection, the negative prompt and word removal (oracle), with a coarse lambda grid
(`--full`: 48 prompts a set and a finer grid). Writes the rows (`evaluation.image_rows.KEYS` plus
`edit_time_share`) to --out and prints them. With n prompts a rate's standard error is at most
sqrt(0.25 / n) (0.125 at n = 16, 0.072 at n = 48).

The worlds (`snce_lib.models.toy.model.WORLDS`) share renders, detector, prompts, seeds, UNet
recipe and sampler, and differ in the text encoder: "minilm" (bidirectional) and "clip" (a small
causal CLIP trained here). Each world's SAE (block 4 of 6) is trained into --sae-root/<world> on
first use. The nudity part (skipped with --skip-nudity, or when --nudity-sae is missing: train it
with the offline workbook, `make run`) writes --out's sibling nudity.json: per method, probe leakage
on I2P nudity >= 50 against COCO captions (without the public sets, the training corpus's nudity prompts
against its prompts with no studied concept, as the row says; never the held-out sets, since the probe is
fitted on them), and the held-out check (`concepts.heldout`).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import pandas as pd
import torch

from snce_lib.evaluation.comparison import world_methods
from snce_lib.evaluation.image_rows import KEYS, method_rows
from snce_lib.evaluation.toy import train_toy_sae, world_sae_dir
from snce_lib.io import atomic_write_json
from snce_lib.models.toy.detector import ToyDetector
from snce_lib.models.toy.model import WORLDS, load_world
from snce_lib.sae import formats


def show(rows: list[dict], cols: list[str]) -> None:
    with pd.option_context("display.width", 220, "display.max_rows", 400, "display.max_columns", 30):
        print(pd.DataFrame(rows)[cols].round(3).to_string(index=False))


def nudity_part(sae_path: Path, out: Path, n_sets: int) -> None:
    from snce_lib.concepts.heldout import load_heldout
    from snce_lib.concepts.pairs import load_concept
    from snce_lib.evaluation.comparison import concept_methods
    from snce_lib.evaluation.offline_rows import concept_rows
    from snce_lib.evaluation.sets import probe_sets
    from snce_lib.models.encoders import load_offline

    enc, sae = load_offline(fp16=False), formats.from_pretrained(sae_path).requires_grad_(False)
    pairs = load_concept("nudity")
    ps = probe_sets(n_sets, "nudity")  # never the held-out sets: the leakage probe is fitted on these
    rows = concept_rows(enc, sae, pairs, concept_methods(enc, sae, pairs), ps.concept, ps.other,
                        load_heldout("nudity"), world="offline minilm")  # fmt: skip
    for r in rows:
        r["probe_sets"] = ps.description
    atomic_write_json(out, rows)
    show(rows, ["method", "lam", "top_k", "probe_auroc_fixed", "probe_auroc_retrained",
                "heldout_probe_auroc_vs_lookalike", "heldout_probe_auroc_vs_neutral",
                "heldout_latents_auroc_vs_lookalike"])  # fmt: skip
    print(f"probe sets: {rows[0]['probe_sets']}; held-out sets: {rows[0]['n_heldout']}; written to {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", nargs="+", choices=list(WORLDS), default=list(WORLDS))
    ap.add_argument("--n", type=int, default=16, help="prompts per set (target, other, attack)")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--full", action="store_true", help="48 prompts a set, lambdas 0.5-8")
    ap.add_argument("--targets", nargs="+", default=["red", "triangle"])
    ap.add_argument("--sae-root", default="runs/bench")
    ap.add_argument("--out", default="runs/bench/methods/table.json")
    ap.add_argument("--nudity-sae", default="runs/offline/sae")
    ap.add_argument("--nudity-n", type=int, default=200, help="prompts per probe-leakage set (nudity part)")
    ap.add_argument("--skip-nudity", action="store_true")
    ap.add_argument("--skip-worlds", action="store_true", help="the nudity part only")
    a = ap.parse_args()
    torch.set_num_threads(2)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)  # before any work: the table has somewhere to go
    n = 48 if a.full else a.n
    lams = ({"snce": (0.5, 1.0, 2.0, 4.0, 8.0), "topk": (0.5, 1.0, 2.0, 4.0), "family": (0.5, 1.0, 2.0, 4.0),
             "steer": (0.5, 1.0, 2.0, 4.0)} if a.full else None)  # fmt: skip
    t0 = time.perf_counter()
    rows: list[dict] = []
    if not a.skip_worlds:
        det = ToyDetector.load()
        for world in a.worlds:
            pipe = load_world(world)
            sae = train_toy_sae(world_sae_dir(a.sae_root, world), world=world).requires_grad_(False)
            for target in a.targets:
                entries = world_methods(pipe.encoder, sae, target, lams)
                rows += method_rows(pipe, det, entries, target, world, n=n, steps=a.steps)
                atomic_write_json(out, rows)  # after each target: an interrupted run keeps what it measured
        show(rows, [k for k in (*KEYS, "edit_time_share") if k != "n_prompts"])
        print(f"\n{len(rows)} rows, {n} prompts a set (rate standard error <= {math.sqrt(0.25 / n):.3f}), "
              f"{a.steps} steps, {time.perf_counter() - t0:.0f} s; written to {out}")  # fmt: skip
    if not a.skip_nudity:
        if Path(a.nudity_sae, "cfg.json").exists():
            t1 = time.perf_counter()
            nudity_part(Path(a.nudity_sae), out.parent / "nudity.json", a.nudity_n)
            print(f"nudity part: {time.perf_counter() - t1:.0f} s")
        else:
            print(f"no SAE at {a.nudity_sae}: the nudity part needs the offline workbook's SAE (`make run`)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
