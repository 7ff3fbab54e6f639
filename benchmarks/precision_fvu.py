"""Does mixed precision keep the SAE's quality? fp32 vs bf16 autocast at equal tokens, on this CPU.

    python benchmarks/precision_fvu.py [--store DIR] [--tokens N]

Trains the same SAE (same seed, same batches) twice, once in fp32 and once with bf16 autocast
(fp32 master weights), and prints held-out FVU, L0, dead fraction and tokens/s of each. Training
on a GPU uses mixed precision only if FVU stays within 1% relative of fp32. Rows: an activation
store from `snce collect` (--store), else seeded correlated Gaussian rows (384 wide).
"""

import argparse
import time

import torch

from snce_lib.sae.train import TrainConfig, train_sae


def correlated_rows(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(4 * d, d, generator=g) / d**0.5
    codes = torch.relu(torch.randn(n, 4 * d, generator=g) - 2.0)  # sparse non-negative sources
    return codes @ basis + 0.05 * torch.randn(n, d, generator=g)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=None)
    ap.add_argument("--tokens", type=int, default=1_200_000)
    a = ap.parse_args()
    if a.store:
        from snce_lib.sae.store import ActivationStore

        data, what = ActivationStore(a.store).load(), f"store {a.store}"
    else:
        data, what = correlated_rows(200_000, 384), "200,000 seeded correlated Gaussian rows, 384 wide"
    print(f"rows: {what}; {a.tokens:,} tokens, batch 4,096, k 32, 4x latents, seed 0")
    res = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(tokens=a.tokens, precision=precision, dead_after_tokens=400_000, seed=0, eval_rows=16_384)
        t0 = time.perf_counter()
        m = train_sae(data, cfg, progress=False).metrics
        res[precision] = m
        print(
            f"{precision}: FVU {m['fvu']:.5f}  L0 {m['l0']:.1f}  dead {m['dead_fraction']:.3f}  "
            f"{m['tokens_per_second']:,.0f} tokens/s  ({time.perf_counter() - t0:.0f} s)"
        )
    rel = (res["bf16"]["fvu"] - res["fp32"]["fvu"]) / res["fp32"]["fvu"]
    print(f"bf16 FVU relative to fp32: {rel:+.3%} ({'within' if abs(rel) <= 0.01 else 'outside'} the 1% bound)")


if __name__ == "__main__":
    main()
