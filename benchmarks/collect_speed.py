"""Collection's encoder passes on the offline corpus: the full 77-position pass against the pass over the
kept positions only (`sae.collect.block_rows`, for encoders that mask padding out of attention), on the
same batches, alternating, and the whole `collect` as the workbook runs it.

    python benchmarks/collect_speed.py [--prompts 6000] [--repeats 1]

Prints seconds for each, and how many float16 rows differ between the two passes.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from snce_lib.models.encoders import load_offline
from snce_lib.prompts import read_prompts
from snce_lib.resources import data_path
from snce_lib.sae.collect import block_rows, collect, rows_for_batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=6000)
    a = ap.parse_args()
    enc = load_offline(device="cpu")
    prompts = read_prompts(data_path("corpus.csv"))[: a.prompts]
    layer, _ = enc.resolve_layer(None)
    t_full = t_kept = 0.0
    differ = total = 0
    for b0 in range(0, len(prompts), 64):
        toks = enc.tokenize(prompts[b0 : b0 + 64])
        t0 = time.perf_counter()
        h = enc.run_to_block(toks, layer)
        bi, pos, _ = rows_for_batch(h, toks.attention_mask, 8)
        full = h[torch.as_tensor(bi), torch.as_tensor(pos)].float().numpy()
        t1 = time.perf_counter()
        kept, *_ = block_rows(enc, toks, layer, 8)
        t2 = time.perf_counter()
        t_full, t_kept = t_full + t1 - t0, t_kept + t2 - t1
        differ += int((full.astype(np.float16) != kept.astype(np.float16)).sum())
        total += full.size
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        collect(enc, prompts, tmp + "/store", layer=layer, progress=False)
        t_collect = time.perf_counter() - t0
    print(
        f"{len(prompts)} prompts, {torch.get_num_threads()} threads: full pass {t_full:.1f} s, kept positions "
        f"{t_kept:.1f} s ({t_full / t_kept:.2f}x); float16 values that differ: {differ} of {total:,} "
        f"({differ / total:.2e}); collect() as the workbook runs it: {t_collect:.1f} s"
    )


if __name__ == "__main__":
    main()
