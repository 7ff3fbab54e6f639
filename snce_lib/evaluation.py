"""Evaluating generated image folders under a protocol, and the paper-style table.

Every result carries its protocol in full. A metric that cannot be computed here (no
CLIP or Inception weights offline) is reported as not measured, with the reason, never
as a number.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .generate import load_manifest_images
from .metrics import any_hit, class_counts, clip_scores, detect, fid_folders
from .protocols import Protocol, get_protocol
from .resources import data_path



def nudity_metrics(detections, protocol: Protocol) -> dict:
    counts = class_counts(detections, protocol.count_threshold, protocol.count_labels)
    hits = any_hit(detections, protocol.asr_threshold, protocol.asr_labels)
    return {"images": len(detections), "counts": counts, "total": counts["total"],
            "asr": float(np.mean(hits)) if hits else None, "hits": int(sum(hits))}


def evaluate_folder(images_dir, protocol: str | Protocol = "snce-paper", reference_dir=None, clip=None,
                    extractor=None, progress: bool = True, fid_size: int = 299) -> dict:
    """NudeNet counts and ASR; CLIP score when `clip` = (model, tokenizer) is given; FID against
    `reference_dir` when given (with `extractor`, or the standard Inception when online)."""
    protocol = get_protocol(protocol)
    rows, files = load_manifest_images(images_dir)
    dets = detect(files, progress=progress)
    result = {"images_dir": str(images_dir), "protocol": protocol.as_dict(), "nudenet": nudity_metrics(dets, protocol),
              "eraser": rows[0].get("eraser"), "model": rows[0].get("model"), "steps": rows[0].get("steps"),
              "per_image": [{"file": r["file"], "case_number": r["case_number"], "seed": r["seed"],
                             "detections": d} for r, d in zip(rows, dets)]}
    if clip is not None:
        s = clip_scores(files, [r["prompt"] for r in rows], clip[0], clip[1], scale=protocol.clip_scale)
        result["clip_score"] = {"mean": float(s.mean()), "n": len(s), "model": getattr(clip[0], "name_or_path", "")}
    else:
        result["clip_score"] = {"not_measured": "no CLIP model given (needs the hub on first use)"}
    if reference_dir is not None:
        try:
            value, n, width = fid_folders(images_dir, reference_dir, extractor, size=fid_size, details=True)
            result["fid"] = {"value": value, "reference": str(reference_dir), "n": n, "feature_width": width,
                             "features": "injected extractor" if extractor is not None else protocol.fid_features}
        except RuntimeError as exc:
            result["fid"] = {"not_measured": str(exc)}
    else:
        result["fid"] = {"not_measured": "no reference folder given"}
    return result


def paper_rows() -> pd.DataFrame:
    data = json.loads(data_path("paper_numbers.json").read_text())
    df = pd.DataFrame(data["rows"])
    df["source"] = "paper (quoted): " + data["protocol"]
    return df


def results_table(results: Sequence[dict], include_paper: bool = True) -> pd.DataFrame:
    """Paper-style table. Each of `results` is a dict with keys method, lam, top_k and any of:
    `i2p` (an evaluate_folder result), `attacks` {set name: result}, `coco` (result with clip/fid),
    and `sets` (a note on which prompt sets were used; stand-ins are named there).

    Every measured row carries its sample sizes (prompts per set, FID n and feature width), its
    protocol, and `vs_paper`: which of its numbers are comparable with the paper's and, for the
    others, why not. The paper's rows are quoted beneath.
    """
    rows = []
    for r in results:
        row = {"method": r["method"], "lam": r.get("lam"), "top_k": r.get("top_k")}
        proto, why = None, []
        if "i2p" in r:
            nn = r["i2p"]["nudenet"]
            row.update({f"count_{k.lower().replace('_exposed', '')}": v for k, v in nn["counts"].items() if k != "total"})
            row["i2p_total"], row["n_i2p"] = nn["total"], nn["images"]
            proto = r["i2p"]["protocol"]
            if nn["images"] != PAPER_SIZES["i2p"]:
                why.append(f"i2p_total over {nn['images']} prompts, the paper's over all {PAPER_SIZES['i2p']:,}")
        for name, res in r.get("attacks", {}).items():
            row[f"asr_{name}"], row[f"n_{name}"] = res["nudenet"]["asr"], res["nudenet"]["images"]
            proto = proto or res["protocol"]
            full = PAPER_SIZES.get(name)
            if full is None or res["nudenet"]["images"] != full:
                why.append(f"asr_{name} over {res['nudenet']['images']} prompts" + (f", the paper's over {full}" if full else ""))
        if "coco" in r:
            c = r["coco"]
            row["clip"], row["n_coco"] = c["clip_score"].get("mean"), c["nudenet"]["images"]
            fid = c["fid"]
            row["fid"], row["fid_n"], row["fid_features"] = fid.get("value"), fid.get("n"), fid.get("features")
            if fid.get("feature_width") is not None:
                row["fid_features"] = f"{fid['features']} ({fid['feature_width']}-d)"
            proto = proto or c["protocol"]
            if row["fid"] is not None and (fid.get("n") or 0) < PAPER_SIZES["fid"]:
                why.append(f"FID on {fid.get('n')} images, the paper's on {PAPER_SIZES['fid']:,}")
            if row["clip"] is not None and row["n_coco"] < PAPER_SIZES["fid"]:
                why.append(f"CLIP score on {row['n_coco']} images, the paper's on {PAPER_SIZES['fid']:,}")
        if proto and proto["name"] != "snce-paper":
            why.insert(0, f"protocol {proto['name']}, not the paper's")
        if r.get("sets"):
            row["sets"] = r["sets"]
            if "STAND-IN" in r["sets"]:
                why.insert(0, "stand-in prompt sets")
        row["vs_paper"] = "not comparable: " + "; ".join(why) if why else "comparable"
        row["source"] = f"measured here: protocol {proto['name']} ({_protocol_summary(proto)})" if proto else "measured here"
        rows.append(row)
    df = pd.DataFrame(rows)
    if include_paper:
        df = pd.concat([df, paper_rows()], ignore_index=True, sort=False)
    return df


#: Sample sizes behind the paper's numbers (method doc section 5): I2P totals over all 4,703
#: prompts; Ring-A-Bell's 79 and P4D's 361 prompts; FID and CLIP score on 3,000 COCO prompts. The
#: paper does not say which I2P-nudity subset its ASR uses, so no measured I2P-nudity ASR is comparable.
PAPER_SIZES = {"i2p": 4703, "ring_a_bell_79": 79, "p4d": 361, "fid": 3000}


def _protocol_summary(p: dict) -> str:
    return (f"{len(p['count_labels'])} classes at {p['count_threshold']}, ASR any-hit at {p['asr_threshold']}, "
            f"{p['steps']} steps, guidance {p['guidance']}, seeds {p['seed']}")
