"""Neuron selection on the offline encoder: detector AUROC, erasure's effect, baselines, a dense probe, seeds.

    python benchmarks/selection_report.py --saes runs/bench/sae_s0 runs/bench/sae_s1 runs/bench/sae_s2 \
        --out runs/bench/selection.json

Reads the public sets from ../shared/data (or $SNCE_DATA_DIR). Prints a JSON report.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.detection import auroc
from snce_lib.concepts.erase import Eraser, embedding_cosine
from snce_lib.concepts.pairs import load_concept
from snce_lib.concepts.selection import select_neurons
from snce_lib.io import atomic_write_json
from snce_lib.models.encoders import load_offline
from snce_lib.prompts import load_set
from snce_lib.sae import formats

LAMS = (0.6, 0.8, 1.0, 1.2)


def eval_sets(n_coco: int):
    i2p = load_set("i2p").frame
    nude = i2p[i2p["nudity_percentage"] > 50]["prompt"].tolist()
    rab = load_set("ring_a_bell_50").prompts
    coco = load_set("coco").prompts
    return {
        "nudity_pos": nude + rab,
        "violence_pos": load_set("i2p_violence").prompts,
        "coco_neg": coco[:n_coco],
        "coco_train": coco[n_coco : n_coco + 2000],
        "nude_only": nude,
    }


def mean_pooled(enc, prompts, layer, bs=64):
    out = []
    for s in range(0, len(prompts), bs):
        t = enc.tokenize(prompts[s : s + bs])
        h = enc.run_to_block(t, layer).float()
        m = t.attention_mask.unsqueeze(-1).float()
        m[:, 0] = 0  # BOS out, as everywhere
        out.append(((h * m).sum(1) / m.sum(1)).numpy())
    return np.concatenate(out)


def dense_probe(enc, layer, sets):
    """Ceiling: logistic regression on mean-pooled block features.

    Positives I2P nudity>50 get cross-validated scores (5 folds), Ring-A-Bell positives and
    the 1,000 test COCO captions are scored by a probe trained on all I2P>50 vs 2,000 other COCO captions.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    xp = mean_pooled(enc, sets["nude_only"], layer)
    xn = mean_pooled(enc, sets["coco_train"], layer)
    x = np.concatenate([xp, xn])
    y = np.r_[np.ones(len(xp)), np.zeros(len(xn))]
    clf = LogisticRegression(max_iter=2000, C=1.0)
    cv = cross_val_predict(clf, x, y, cv=5, method="decision_function")[: len(xp)]
    clf.fit(x, y)
    rab = clf.decision_function(mean_pooled(enc, sets["nudity_pos"][len(xp) :], layer))
    neg = clf.decision_function(mean_pooled(enc, sets["coco_neg"], layer))
    return auroc(np.r_[cv, rab], neg)


def report_for(enc, sae, sets, n_cos: int, tol: float, cosine: bool = True) -> dict:
    sae = sae.requires_grad_(False)
    codes = {k: prompt_codes(enc, sae, v) for k, v in sets.items() if k in ("nudity_pos", "violence_pos", "coco_neg")}
    out = {}
    for concept, pos in (("nudity", "nudity_pos"), ("violence", "violence_pos")):
        pairs = load_concept(concept)
        out[concept] = {}
        for method, kw in (
            ("modulated_frequency", {}),
            ("modulated_frequency_tol", {"max_deconcept_share": tol}),
            ("mean_difference", {}),
            ("itd", {}),
        ):
            m = "modulated_frequency" if method.startswith("modulated") else method
            try:
                sel, det = select_neurons(enc, sae, pairs, top_k=1, method=m, background=sets["coco_neg"][:300], **kw)
            except ValueError as exc:
                out[concept][method] = {"error": str(exc)}
                continue
            n = sel.neurons
            a = auroc(codes[pos].max_activation(n)[0], codes["coco_neg"].max_activation(n)[0])
            row = {
                "neuron": n[0],
                "auroc": round(a, 4),
                **{k: (v[0] if isinstance(v, list) else v) for k, v in sel.stats.items()},
            }
            cos = {}
            for mode in ("A", "B") if cosine else ():
                for lam in LAMS:
                    er = Eraser(sae, n, lam, mode, pairs.tuple_prompt)
                    cos[f"{mode}{lam}"] = {
                        "coco": round(float(embedding_cosine(enc, er, sets["coco_neg"][:n_cos]).mean()), 4),
                        concept: round(float(embedding_cosine(enc, er, sets[pos][:n_cos]).mean()), 4),
                    }
            row["cosine"] = cos
            out[concept][method] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--saes", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-coco", type=int, default=1000)
    ap.add_argument("--n-cos", type=int, default=200)
    ap.add_argument("--tol", type=float, default=0.01)
    ap.add_argument(
        "--cosine-saes", type=int, default=1, help="measure erasure's cosine effect on the first N SAEs only"
    )
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    enc = load_offline(device="cpu")
    sets = eval_sets(a.n_coco)
    first = formats.from_pretrained(a.saes[0])
    report = {
        "positives": {"nudity": len(sets["nudity_pos"]), "violence": len(sets["violence_pos"])},
        "negatives_coco": len(sets["coco_neg"]),
        "layer": first.cfg.layer,
        "dense_probe_auroc_nudity": round(dense_probe(enc, first.cfg.layer, sets), 4),
        "saes": {},
    }
    for i, path in enumerate(a.saes):
        sae = formats.from_pretrained(path)
        report["saes"][path] = {
            "metrics": {k: sae.metrics.get(k) for k in ("fvu", "l0", "dead_fraction", "tokens_seen")},
            **report_for(enc, sae, sets, a.n_cos, a.tol, cosine=i < a.cosine_saes),
        }
    report["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(a.out, report)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
