"""The evaluation grid: every method x every prompt set on one pipeline, generated and evaluated
under one protocol, same prompts and seeds for every method. Returns a `Grid` of typed results
that renders the per-folder summary and the paper-style table."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from snce_lib.evaluation.generate import generate
from snce_lib.evaluation.protocols import Protocol
from snce_lib.evaluation.results import EvalResult, evaluate_folder
from snce_lib.evaluation.tables import MethodRow, results_table
from snce_lib.prompts import PromptSet


@dataclass
class Grid:
    results: dict[tuple[str, str], EvalResult]
    """(method label, prompt set name) -> result."""
    protocol: Protocol
    sets: str = ""
    """Which prompt sets were used (stand-ins named)."""
    params: dict = field(default_factory=dict)
    """method label -> {"name": ..., "lam": ..., "top_k": ...} for the table."""
    out_dir: Path | None = None

    def folder(self, method: str, prompt_set: str) -> Path:
        """Where the images of (method, prompt set) are."""
        return Path(self.results[(method, prompt_set)].images_dir)

    def summary(self) -> pd.DataFrame:
        """One row a folder: images, NudeNet total and ASR, CLIP, FID against the baseline."""
        return pd.DataFrame(
            [
                {
                    "images": f"{m} / {s}",
                    "n": r.images,
                    f"NudeNet total ({len(self.protocol.count_labels)} classes, "
                    f"{self.protocol.count_threshold})": r.nudenet.total,
                    f"ASR (any hit, {self.protocol.asr_threshold})": r.nudenet.asr,
                    "CLIP": r.clip.value if r.clip.measured else "not measured",
                    "FID vs baseline": r.fid.value if r.fid.measured else "-",
                }
                for (m, s), r in self.results.items()
            ]
        )

    def rows(
        self, i2p: str = "i2p_nudity", attacks: tuple[str, ...] = ("ring_a_bell_79",), coco: str = "coco"
    ) -> list[MethodRow]:
        methods = list(dict.fromkeys(m for m, _ in self.results))
        return [
            MethodRow(
                self.params.get(m, {}).get("name", m),
                self.params.get(m, {}).get("lam"),
                self.params.get(m, {}).get("top_k"),
                self.results.get((m, i2p)),
                {a: self.results[(m, a)] for a in attacks if (m, a) in self.results},
                self.results.get((m, coco)),
                self.sets,
            )
            for m in methods
        ]

    def table(self, include_paper: bool = True, **kw) -> pd.DataFrame:
        return results_table(self.rows(**kw), include_paper)

    def record(self) -> dict:
        """The grid's numbers as plain data (for the run summary)."""
        return {
            f"{m}/{s}": {
                "n": r.images,
                "total": r.nudenet.total,
                "asr": r.nudenet.asr,
                "clip": r.clip.value,
                "fid": r.fid.value,
            }
            for (m, s), r in self.results.items()
        } | {"protocol": self.protocol.as_dict(), "prompt_sets": self.sets}


def run_grid(
    pipe,
    sets: dict[str, PromptSet],
    methods: dict,
    protocol: Protocol,
    out_dir: str | os.PathLike,
    *,
    reference_set: str = "coco",
    clip=None,
    extractor=None,
    fid_size: int = 299,
    model_id: str = "",
    batch_size: int = 8,
    sets_note: str = "",
    params: dict | None = None,
    progress: bool = False,
) -> Grid:
    """Generate and evaluate every (method, set) into `out_dir/{method}_{set}` (resumable).

    `methods` maps a label to a method (anything `generate` takes as `eraser`) or None; the first
    entry is the baseline, against whose `reference_set` images every other method's FID is measured.
    """
    if not methods:
        raise ValueError("run_grid needs at least one method (None for the unedited pipeline)")
    out = Path(out_dir)
    baseline = next(iter(methods))
    results = {}
    for label, method in methods.items():
        for name, ps in sets.items():
            folder = out / f"{_slug(label)}_{name}"
            generate(
                pipe, ps, protocol, folder, eraser=method, batch_size=batch_size, model_id=model_id, progress=progress
            )
            ref = out / f"{_slug(baseline)}_{name}" if (label != baseline and name == reference_set) else None
            results[(label, name)] = evaluate_folder(
                folder,
                protocol,
                reference_dir=ref,
                clip=clip,
                extractor=extractor,
                progress=progress,
                fid_size=fid_size,
            )
    return Grid(results, protocol, sets_note, params or {}, out)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in label).strip("_").lower() or "method"
