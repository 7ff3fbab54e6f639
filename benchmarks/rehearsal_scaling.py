"""How the colab steps' CPU work grows with their counts, on the rehearsal's real-size stand-ins: the atlas
(`explore`) at two prompt counts with the encoder's share timed apart, and NudeNet's seconds per 512 px image.

    python benchmarks/rehearsal_scaling.py [--sae RUN/colab-rehearsal/sae] [--counts 300 1200]

Needs the rehearsal's SAE (`snce workbook --profile colab-rehearsal --only 01_train_sae`) and its stand-ins
(built on first use). Prints, per count: seconds for the atlas's prompt codes (the text encoder and the SAE,
which run on the GPU on Colab), seconds for the rest of `explore` (CPU), and the peak RSS; then the CPU
part's fixed and per-prompt cost from the two counts, and NudeNet's seconds per image. One JSON line each.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sae", default="runs/colab-rehearsal/sae")
    ap.add_argument("--counts", type=int, nargs=2, default=[300, 1200])
    ap.add_argument("--images", type=int, default=24)
    a = ap.parse_args()

    from snce_lib.atlas.explore import explore
    from snce_lib.concepts.codes import prompt_codes
    from snce_lib.concepts.pairs import load_concept
    from snce_lib.evaluation.metrics import detect
    from snce_lib.models.encoders import SD14, load_sd
    from snce_lib.models.hubcache import REVISION
    from snce_lib.sae.formats import from_pretrained
    from snce_lib.workbook.cellstats import read_peaks, reset_peaks
    from snce_lib.workbook.profiles import PROFILES
    from snce_lib.workbook.rehearsal import prepare
    from snce_lib.workbook.steps import training_prompts

    env = prepare()
    enc = load_sd(f"{env['HF_HOME']}/hub/models--{SD14.replace('/', '--')}/snapshots/{REVISION}", device="cpu")
    sae = from_pretrained(a.sae).requires_grad_(False)
    prompts = training_prompts(PROFILES["colab"])
    pairs = load_concept("nudity")
    t0 = time.perf_counter()
    prompt_codes(enc, sae, pairs.concept_prompts), prompt_codes(enc, sae, pairs.deconcept_prompts)
    t_pairs = time.perf_counter() - t0
    cpu = {}
    for n in a.counts:
        sample = prompts[:n]
        t0 = time.perf_counter()
        prompt_codes(enc, sae, sample)
        t_codes = time.perf_counter() - t0
        reset_peaks()
        t0 = time.perf_counter()
        explore(enc, sae, sample, concept="nudity", progress=False)
        t_explore = time.perf_counter() - t0
        cpu[n] = t_explore - t_codes - t_pairs
        print(json.dumps({"atlas_prompts": n, "codes_seconds": round(t_codes, 1), "pair_codes_seconds": round(t_pairs, 1),
                          "explore_seconds": round(t_explore, 1), "cpu_part_seconds": round(cpu[n], 1),
                          "peak_rss_gb": round(read_peaks()["rss_peak"] / 1e9, 2)}), flush=True)  # fmt: skip
    (n1, c1), (n2, c2) = cpu.items()
    per = (c2 - c1) / (n2 - n1)
    print(json.dumps({"atlas_cpu_fixed_seconds": round(c1 - per * n1, 1), "atlas_cpu_seconds_per_prompt": round(per, 5),
                      "atlas_cpu_at_5000_seconds": round(c1 + per * (5000 - n1), 1)}), flush=True)  # fmt: skip
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (512, 512, 3), dtype=np.uint8) for _ in range(a.images)]
    detect(images[:1])  # loads the detector
    t0 = time.perf_counter()
    detect(images)
    per_image = (time.perf_counter() - t0) / len(images)
    print(json.dumps({"nudenet_seconds_per_512px_image": round(per_image, 4), "images": len(images),
                      "threads": torch.get_num_threads()}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
