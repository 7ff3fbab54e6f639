"""Evaluating one folder of generated images under a protocol, as a typed result.

Every result carries its protocol and its sample sizes. A metric that cannot be computed here
(no CLIP or Inception weights offline) is a `Metric` with `not_measured` saying why, never a number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from snce_lib.evaluation.manifest import load_manifest_images
from snce_lib.evaluation.metrics import any_hit, class_counts, clip_scores, detect, fid_folders
from snce_lib.evaluation.protocols import Protocol, get_protocol


@dataclass
class NudityCounts:
    """NudeNet over one folder: detections per class at the count threshold, and attack success."""

    images: int
    counts: dict
    total: int
    asr: float | None
    hits: int


@dataclass
class Metric:
    """A number with its sample size and what it was computed with, or the reason it was not measured."""

    value: float | None = None
    n: int | None = None
    using: str = ""
    """The model or features behind the number (CLIP checkpoint, FID feature extractor)."""
    feature_width: int | None = None
    reference: str = ""
    not_measured: str = ""

    @property
    def measured(self) -> bool:
        return self.value is not None


@dataclass
class EvalResult:
    images_dir: str
    protocol: Protocol
    nudenet: NudityCounts
    clip: Metric
    fid: Metric
    eraser: dict | None = None
    model: str | None = None
    steps: int | None = None
    per_image: list = field(default_factory=list, repr=False)

    @property
    def images(self) -> int:
        return self.nudenet.images

    def as_dict(self) -> dict:
        """The JSON record `snce evaluate` writes."""
        clip = (
            {"mean": self.clip.value, "n": self.clip.n, "model": self.clip.using}
            if self.clip.measured
            else {"not_measured": self.clip.not_measured}
        )
        fid = (
            {
                "value": self.fid.value,
                "reference": self.fid.reference,
                "n": self.fid.n,
                "feature_width": self.fid.feature_width,
                "features": self.fid.using,
            }
            if self.fid.measured
            else {"not_measured": self.fid.not_measured}
        )
        return {
            "images_dir": self.images_dir,
            "protocol": self.protocol.as_dict(),
            "nudenet": asdict(self.nudenet),
            "clip_score": clip,
            "fid": fid,
            "eraser": self.eraser,
            "model": self.model,
            "steps": self.steps,
            "per_image": self.per_image,
        }


def nudity_metrics(detections, protocol: Protocol) -> NudityCounts:
    counts = class_counts(detections, protocol.count_threshold, protocol.count_labels)
    hits = any_hit(detections, protocol.asr_threshold, protocol.asr_labels)
    return NudityCounts(
        len(detections), counts, counts["total"], float(np.mean(hits)) if hits else None, int(sum(hits))
    )


def evaluate_folder(
    images_dir,
    protocol: str | Protocol = "snce-paper",
    reference_dir=None,
    clip=None,
    extractor=None,
    progress: bool = True,
    fid_size: int = 299,
) -> EvalResult:
    """NudeNet counts and ASR; CLIP score when `clip` = (model, tokenizer) is given; FID against
    `reference_dir` when given (with `extractor`, or the standard Inception when online)."""
    protocol = get_protocol(protocol)
    rows, files = load_manifest_images(images_dir)
    dets = detect(files, progress=progress)
    if clip is not None:
        s = clip_scores(files, [r["prompt"] for r in rows], clip[0], clip[1], scale=protocol.clip_scale)
        clip_m = Metric(float(s.mean()), len(s), getattr(clip[0], "name_or_path", ""))
    else:
        clip_m = Metric(not_measured="no CLIP model given (needs the hub on first use)")
    if reference_dir is None:
        fid_m = Metric(not_measured="no reference folder given")
    else:
        try:
            value, n, width = fid_folders(images_dir, reference_dir, extractor, size=fid_size, details=True)
            fid_m = Metric(
                value,
                n,
                "injected extractor" if extractor is not None else protocol.fid_features,
                width,
                str(reference_dir),
            )
        except RuntimeError as exc:
            fid_m = Metric(not_measured=str(exc))
    per_image = [
        {"file": r["file"], "case_number": r["case_number"], "seed": r["seed"], "detections": d}
        for r, d in zip(rows, dets)
    ]
    return EvalResult(
        str(images_dir),
        protocol,
        nudity_metrics(dets, protocol),
        clip_m,
        fid_m,
        rows[0].get("eraser"),
        rows[0].get("model"),
        rows[0].get("steps"),
        per_image,
    )
