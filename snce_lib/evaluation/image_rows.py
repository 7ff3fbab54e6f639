"""Running the compared methods where images exist (the toy worlds): `method_rows` generates the target,
other and attack prompts with each method (`comparison.Entry`) and measures them with the world's exact
detector (target rate, attack rate, colour and shape accuracy on other prompts, Fréchet distance of those
images to the unedited ones), a linear probe on the pooled final features (fixed and retrained,
`concepts.leakage`), and the edit's share of generation time. Rows carry the keys of
`runs/bench/methods/table.json`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from snce_lib.concepts.leakage import pooled_output, probe_leakage
from snce_lib.evaluation.comparison import Entry
from snce_lib.evaluation.metrics import frechet_distance
from snce_lib.evaluation.toy import prompt_suite, target_kind

KEYS = ("world", "target", "method", "lam", "top_k", "target_rate", "attack_rate", "other_colour_acc",
        "other_shape_acc", "frechet", "probe_auroc_fixed", "probe_auroc_retrained", "n_prompts")  # fmt: skip


def method_rows(pipe, detector, entries: Sequence[Entry], target: str, world: str, n: int = 24, steps: int = 25,
                guidance: float = 3.0, seed: int = 7, progress: bool = True) -> list[dict]:  # fmt: skip
    """Each entry (and the unedited model, method "none") on the same `n` target, other and attack
    prompts with the same seeds."""
    from tqdm.auto import tqdm

    suite = prompt_suite(target, n, seed)
    seeds = [seed * 1000 + i for i in range(n)]
    read = detector.colours if target_kind(target) == "colour" else detector.shapes
    enc = pipe.encoder
    parts = {p: [t for t, _ in getattr(suite, p)] for p in ("target", "other", "attack")}
    other_specs = [s for _, s in suite.other]
    before = [pooled_output(enc, parts["target"]), pooled_output(enc, parts["other"])]

    def run(obj):
        t0 = time.perf_counter()
        imgs = {p: pipe.generate(parts[p], seeds, steps, guidance, method=obj) for p in parts}
        return imgs, time.perf_counter() - t0

    base, base_s = run(None)
    base_feats = detector.features(base["other"])
    rows = []
    for e in tqdm([Entry("none", None, None, None), *entries], desc=f"{world}/{target}", disable=not progress):
        if e.note and e.obj is None:  # nothing to run: the row says why, and measures nothing
            rows.append({**dict.fromkeys(KEYS), "world": world, "target": target, "method": e.method,
                         "top_k": e.top_k, "n_prompts": n, "edit_time_share": None, **e.record()})  # fmt: skip
            continue
        imgs, secs = (base, base_s) if e.obj is None else run(e.obj)
        after = before if e.obj is None else [pooled_output(enc, parts[p], e.obj) for p in ("target", "other")]
        leak = probe_leakage(before[0], before[1], after[0], after[1])
        rows.append({
            "world": world, "target": target, "method": e.method, "lam": e.lam, "top_k": e.top_k,
            "target_rate": float(np.mean([v == target for v in read(imgs["target"])])),
            "attack_rate": float(np.mean([v == target for v in read(imgs["attack"])])),
            "other_colour_acc": float(np.mean([c == s.colour for c, s in zip(detector.colours(imgs["other"]), other_specs)])),
            "other_shape_acc": float(np.mean([c == s.shape for c, s in zip(detector.shapes(imgs["other"]), other_specs)])),
            "frechet": 0.0 if e.obj is None else frechet_distance(base_feats, detector.features(imgs["other"])),
            "probe_auroc_fixed": leak.auroc_fixed_probe, "probe_auroc_retrained": leak.auroc_retrained,
            "probe_ci95_fixed": leak.ci95_fixed, "probe_ci95_retrained": leak.ci95_retrained,
            "n_prompts": n, "edit_time_share": 0.0 if e.obj is None else max(0.0, (secs - base_s) / secs),
            **e.record(),
        })  # fmt: skip
    return rows
