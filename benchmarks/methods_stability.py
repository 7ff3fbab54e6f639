"""Do the SAE-based methods pick the same latents, and give the same rows, across three SAE seeds?

    python benchmarks/methods_stability.py [--worlds minilm clip] [--seeds 0 1 2] [--n 16] [--steps 15]
                                           [--table runs/bench/methods/table.json]

For each world, SAEs of seeds 0, 1, 2 (same captions, same recipe: only initialisation and batch
order differ; trained into --sae-root on first use, seed 0 being the one benchmarks/methods.py used).
Per target, each selection's winners (SNCE top-1 strict, top-1 with the 1% tolerance, top-10,
the latent family, Interpret-then-Deactivate's features) and, between every two seeds, the decoder
cosine of the winners (top-1: the two unit decoder rows; a set: the mean, over both sets, of each
latent's best cosine in the other set), beside the whole dictionaries' agreement (each decoder
row's best cosine in the other seed's dictionary: median, and share above 0.7). Then the SAE-based rows at one lambda each, with the same
prompts and seeds as the table; seed 0's rows are read from --table when it holds them at this
size. Rows that do not depend on the SAE (LEACE, probe projection, negative prompt, word removal)
are the same for every seed and are not rerun. Writes runs/bench/methods/stability.json. `--tokens 8000000 --sae-root runs/bench/long` asks
whether longer-trained SAEs agree more (their seed-0 rows are measured, not read from the table).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import pandas as pd
import torch

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.methods import latent_family
from snce_lib.concepts.selection import select_neurons
from snce_lib.evaluation.comparison import select_at, world_methods
from snce_lib.evaluation.image_rows import method_rows
from snce_lib.evaluation.toy import toy_concept, train_toy_sae, world_sae_dir
from snce_lib.io import atomic_write_json
from snce_lib.models.toy.detector import ToyDetector
from snce_lib.models.toy.model import WORLDS, load_world

ONE = {"snce": (4.0,), "topk": (2.0,), "family": (2.0,), "steer": (1.0,)}
#: SNCE's selections compared across seeds: name -> (top k, deconcept tolerance s^d)
SNCE_SELECTIONS = {"snce top-1 strict": (1, 0.0), "snce top-1 tol 1%": (1, 0.01), "snce top-10 tol 1%": (10, 0.01)}
SAE_FREE = ("leace", "probe projection", "negative prompt", "word removal (oracle)")


def winners(enc, sae, target: str) -> dict[str, list[int] | None]:
    """Each selection's latents; None where its filter leaves too few (no fallback: "strict" is s^d = 0)."""
    pairs = toy_concept(target)
    fam = latent_family(prompt_codes(enc, sae, pairs.concept_prompts), prompt_codes(enc, sae, pairs.deconcept_prompts))
    return {
        **{name: select_at(enc, sae, pairs, k, share) for name, (k, share) in SNCE_SELECTIONS.items()},
        "latent family": [int(i) for i in fam],
        "interpret-then-deactivate": [int(i) for i in select_neurons(enc, sae, pairs, top_k=1, method="itd")[1]["ranking"].top(16)],
    }  # fmt: skip


def set_cosine(wa: torch.Tensor, wb: torch.Tensor) -> float | None:
    """Mean over both sets of each unit decoder row's best cosine in the other set."""
    if len(wa) == 0 or len(wb) == 0:
        return None
    c = torch.nn.functional.normalize(wa, dim=1) @ torch.nn.functional.normalize(wb, dim=1).T
    return float(torch.cat([c.max(1).values, c.max(0).values]).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", nargs="+", choices=list(WORLDS), default=list(WORLDS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--targets", nargs="+", default=["red", "triangle"])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--sae-root", default="runs/bench")
    ap.add_argument("--tokens", type=int, default=1_000_000, help="each SAE's training budget (the table's: 1M)")
    ap.add_argument("--table", default="runs/bench/methods/table.json")
    ap.add_argument("--out", default="runs/bench/methods/stability.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    table = json.loads(Path(a.table).read_text()) if Path(a.table).exists() else []
    det = ToyDetector.load()
    cos_rows, rows, dict_rows = [], [], []
    for world in a.worlds:
        pipe = load_world(world)
        enc = pipe.encoder
        saes = {
            s: train_toy_sae(world_sae_dir(a.sae_root, world, s), tokens=a.tokens, world=world, seed=s).requires_grad_(
                False
            )
            for s in a.seeds
        }
        same_as_table = a.tokens == 1_000_000 and Path(a.sae_root) == Path("runs/bench")
        for s1, s2 in itertools.combinations(a.seeds, 2):  # the baseline: how alike are the whole dictionaries?
            w1, w2 = (torch.nn.functional.normalize(saes[x].W_dec.detach(), dim=1) for x in (s1, s2))
            best = (w1 @ w2.T).max(1).values
            dict_rows.append({"world": world, "seeds": [s1, s2], "median_best_cosine": float(best.median()),
                              "share_above_0.7": float((best > 0.7).float().mean()),
                              "fvu": [saes[s1].metrics.get("fvu"), saes[s2].metrics.get("fvu")]})  # fmt: skip
        for target in a.targets:
            win = {s: winners(enc, saes[s], target) for s in a.seeds}
            for name in win[a.seeds[0]]:
                for s1, s2 in itertools.combinations(a.seeds, 2):
                    w1, w2 = win[s1][name], win[s2][name]
                    cos = None if w1 is None or w2 is None else set_cosine(saes[s1].W_dec[w1], saes[s2].W_dec[w2])
                    cos_rows.append({
                        "world": world, "target": target, "selection": name, "seeds": [s1, s2],
                        "latents": [w1, w2], "decoder_cosine": cos,
                        "deconcept_tolerance": SNCE_SELECTIONS.get(name, (None, None))[1],
                    })  # fmt: skip
            for s in a.seeds:
                have = [r for r in table if r["world"] == world and r["target"] == target and r["n_prompts"] == a.n
                        and "neurons" in r]  # fmt: skip
                entries = [e for e in world_methods(enc, saes[s], target, ONE) if e.method not in SAE_FREE]
                if s == 0 and have and same_as_table:  # the table's own SAE: its rows are already measured
                    keep = {(e.method, e.lam) for e in entries} | {("none", None)}
                    got = [dict(r, sae_seed=0) for r in have if (r["method"], r["lam"]) in keep]
                else:
                    got = [
                        dict(r, sae_seed=s)
                        for r in method_rows(pipe, det, entries, target, world, n=a.n, steps=a.steps)
                    ]
                rows += got
                atomic_write_json(Path(a.out), {"cosines": cos_rows, "rows": rows})
    df = pd.DataFrame(rows)
    spread = (
        df[df.method != "none"]
        .groupby(["world", "target", "method", "lam"], dropna=False)
        .agg(
            target_rate_min=("target_rate", "min"),
            target_rate_max=("target_rate", "max"),
            attack_rate_min=("attack_rate", "min"),
            attack_rate_max=("attack_rate", "max"),
            frechet_min=("frechet", "min"),
            frechet_max=("frechet", "max"),
            seeds=("sae_seed", "nunique"),
        )  # fmt: skip
        .reset_index()
    )
    summary = {"dictionaries": dict_rows, "cosines": cos_rows, "rows": rows, "spread": spread.to_dict("records"), "n_prompts": a.n, "tokens": a.tokens,
               "steps": a.steps, "seeds": a.seeds, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    atomic_write_json(Path(a.out), summary)
    with pd.option_context("display.width", 220, "display.max_rows", 400, "display.max_columns", 20):
        c = pd.DataFrame(cos_rows)
        c["seeds"] = c["seeds"].map(lambda s: f"{s[0]}-{s[1]}")
        print(c.pivot_table(index=["world", "target", "selection"], columns="seeds", values="decoder_cosine").round(3))
        print(spread.round(3).to_string(index=False))
        print(pd.DataFrame(dict_rows).round(3).to_string(index=False))
    se = math.sqrt(0.25 / a.n)
    print(
        f"\n{a.n} prompts a set (a rate's standard error <= {se:.3f}); {time.perf_counter() - t0:.0f} s; written to {a.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
