"""The paper-style table: one row a method, with sample sizes, protocol and whether each number is
comparable with the paper's; the paper's own rows quoted beneath."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from snce_lib.evaluation.protocols import Protocol
from snce_lib.evaluation.results import EvalResult
from snce_lib.resources import data_path

#: Sample sizes behind the paper's numbers (method doc section 5): I2P totals over all 4,703
#: prompts; Ring-A-Bell's 79 and P4D's 361 prompts; FID and CLIP score on 3,000 COCO prompts. The
#: paper does not say which I2P-nudity subset its ASR uses, so no measured I2P-nudity ASR is comparable.
PAPER_SIZES = {"i2p": 4703, "ring_a_bell_79": 79, "p4d": 361, "fid": 3000}


#: the model the paper's numbers were measured on, under the names a manifest may record it by
PAPER_MODELS = ("CompVis/stable-diffusion-v1-4", "sd14")


@dataclass
class MethodRow:
    """One method's results over the table's prompt sets: I2P counts, attack sets' ASR, COCO quality."""

    method: str
    lam: float | None = None
    top_k: int | None = None
    i2p: EvalResult | None = None
    attacks: dict[str, EvalResult] = field(default_factory=dict)
    coco: EvalResult | None = None
    sets: str = ""
    """Which prompt sets were used; stand-ins are named there."""


def paper_rows() -> pd.DataFrame:
    data = json.loads(data_path("paper_numbers.json").read_text())
    df = pd.DataFrame(data["rows"])
    df["source"] = "paper (quoted): " + data["protocol"]
    return df


def results_table(results: Sequence[MethodRow], include_paper: bool = True) -> pd.DataFrame:
    """Paper-style table. Every measured row carries its sample sizes (prompts per set, FID n and
    feature width), its protocol, and `vs_paper`: which of its numbers are comparable with the
    paper's and, for the others, why not. The paper's rows are quoted beneath."""
    rows = []
    for r in results:
        row: dict = {"method": r.method, "lam": r.lam, "top_k": r.top_k}
        proto, why = None, []
        if r.i2p is not None:
            nn = r.i2p.nudenet
            row.update({f"count_{k.lower().replace('_exposed', '')}": v for k, v in nn.counts.items() if k != "total"})
            row["i2p_total"], row["n_i2p"] = nn.total, nn.images
            proto = r.i2p.protocol
            if nn.images != PAPER_SIZES["i2p"]:
                why.append(f"i2p_total over {nn.images} prompts, the paper's over all {PAPER_SIZES['i2p']:,}")
        for name, res in r.attacks.items():
            row[f"asr_{name}"], row[f"n_{name}"] = res.nudenet.asr, res.images
            proto = proto or res.protocol
            full = PAPER_SIZES.get(name)
            if full is None or res.images != full:
                why.append(f"asr_{name} over {res.images} prompts" + (f", the paper's over {full}" if full else ""))
        if r.coco is not None:
            c = r.coco
            row["clip"], row["n_coco"] = c.clip.value, c.images
            row["fid"], row["fid_n"], row["fid_features"] = c.fid.value, c.fid.n, c.fid.using or None
            if c.fid.feature_width is not None:
                row["fid_features"] = f"{c.fid.using} ({c.fid.feature_width}-d)"
            proto = proto or c.protocol
            if c.fid.measured and (c.fid.n or 0) < PAPER_SIZES["fid"]:
                why.append(f"FID on {c.fid.n} images, the paper's on {PAPER_SIZES['fid']:,}")
            if c.clip.measured and c.images < PAPER_SIZES["fid"]:
                why.append(f"CLIP score on {c.images} images, the paper's on {PAPER_SIZES['fid']:,}")
        if proto and proto.name != "snce-paper":
            why.insert(0, f"protocol {proto.name}, not the paper's")
        made = [x.model for x in (r.i2p, *r.attacks.values(), r.coco) if x is not None and x.model]
        if made and made[0] not in PAPER_MODELS:
            why.insert(0, f"images of {made[0]}, the paper's of SD v1.4")
        if r.sets:
            row["sets"] = r.sets
            if "STAND-IN" in r.sets:
                why.insert(0, "stand-in prompt sets")
        row["vs_paper"] = "not comparable: " + "; ".join(why) if why else "comparable"
        row["source"] = (
            f"measured here: protocol {proto.name} ({_protocol_summary(proto)})" if proto else "measured here"
        )
        rows.append(row)
    df = pd.DataFrame(rows)
    if include_paper:
        df = pd.concat([df, paper_rows()], ignore_index=True, sort=False)
    return df


def _protocol_summary(p: Protocol) -> str:
    return (
        f"{len(p.count_labels)} classes at {p.count_threshold}, ASR any-hit at {p.asr_threshold}, "
        f"{p.steps} steps, guidance {p.guidance}, seeds {p.seed}"
    )
