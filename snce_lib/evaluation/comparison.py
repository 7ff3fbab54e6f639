"""Every erasure method side by side in the toy world, on the same prompts and seeds.

`world_methods` builds the methods of `concepts.methods` for one target (a colour or a shape) from
the world's SAE and its concept pairs; `method_rows` generates the target, other and attack prompts
with each and measures them with the world's exact detector (target rate, attack rate, colour and
shape accuracy on other prompts, Fréchet distance of those images to the unedited ones), a linear
probe on the pooled final features (fixed and retrained, `concepts.leakage`), and the edit's share
of generation time. Rows carry the keys of `runs/bench/methods/table.json`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.erase import Eraser
from snce_lib.concepts.leakage import POSITIONS, pooled_output, position_mask, probe_leakage
from snce_lib.concepts.methods import (
    BlockMap,
    ConceptSteerer,
    NegativePrompt,
    WordRemoval,
    latent_family,
    leace_map,
    probe_direction,
    probe_projection,
)
from snce_lib.concepts.pairs import SelectionError
from snce_lib.concepts.selection import select_neurons
from snce_lib.evaluation.metrics import frechet_distance
from snce_lib.evaluation.toy import prompt_suite, target_kind, toy_concept

KEYS = ("world", "target", "method", "lam", "top_k", "target_rate", "attack_rate", "other_colour_acc",
        "other_shape_acc", "frechet", "probe_auroc_fixed", "probe_auroc_retrained", "n_prompts")  # fmt: skip


@dataclass
class Entry:
    method: str
    lam: float | None
    top_k: int | None
    obj: object | None
    neurons: list[int] | None = None
    tolerance: float | None = None
    note: str | None = None
    """Set when there is nothing to run: the row records the reason and no measurements."""

    def record(self) -> dict:
        """What every row also records: the latents edited (None: the method edits none), the
        deconcept tolerance s^d their selection used (None: not a frequency selection), the note."""
        neurons = self.neurons if self.neurons is not None else getattr(self.obj, "neurons", None)
        return {"neurons": None if neurons is None else [int(i) for i in neurons],
                "deconcept_tolerance": self.tolerance, "note": self.note}  # fmt: skip


def select_at(enc, sae, pairs, top_k: int, share: float) -> list[int] | None:
    """SNCE's `top_k` neurons under the deconcept tolerance `share` exactly (0: the paper's strict
    filter), or None where fewer than `top_k` latents pass it. No fallback: a row labelled with a
    tolerance used that tolerance."""
    try:
        sel = select_neurons(enc, sae, pairs, top_k=top_k, max_deconcept_share=share)[0]
    except SelectionError:
        return None
    return list(sel.neurons) if len(sel.neurons) == top_k else None


def _snce_entries(sae, name: str, lams, top_k: int, share: float, neurons, mode: str = "B", tup: str = ""):
    """One entry per lambda, or one entry that says the filter left too few latents."""
    if neurons is None:
        why = f"fewer than {top_k} latent(s) pass the deconcept filter s^d <= {share:g}"
        return [Entry(name, None, top_k, None, None, share, why)]
    return [Entry(name, lam, top_k, Eraser(sae, neurons, lam, mode, tup), list(neurons), share) for lam in lams]


def _token_features(enc, sae, prompts: Sequence[str], positions: str = POSITIONS) -> torch.Tensor:
    """The block's token features at the positions the edit is applied to (after BOS; "all":
    padding included, as `BlockMap` edits and the UNet reads them). [positions, width]"""
    toks = enc.tokenize(list(prompts))
    h = enc.run_to_block(toks, sae.cfg.layer or None)
    return h[position_mask(toks.attention_mask, positions).bool()].float()


def world_methods(enc, sae, target: str, lams: dict[str, Sequence[float]] | None = None) -> list[Entry]:
    """The comparison's methods for a toy-world `target` (a colour or a shape), from its concept pairs."""
    return concept_methods(enc, sae, toy_concept(target), lams)


def concept_methods(enc, sae, pairs, lams: dict[str, Sequence[float]] | None = None,
                    positions: str = POSITIONS) -> list[Entry]:  # fmt: skip
    """The comparison's methods for a concept (`ConceptPairs`), each at its lambdas. LEACE and the probe
    are fitted on the block's token features of the concept pairs (concept prompts 1, deconcept
    prompts 0) at `positions` after BOS: by default every one, padding included, where they are
    applied. Word removal deletes the tuple's words, not held-out synonyms (it cannot know them).
    SNCE rows use exactly the tolerance their name gives; where it leaves too few latents the entry
    says so (`Entry.note`) and is not run."""
    lams = {"snce": (1.0, 4.0), "topk": (1.0, 2.0), "family": (1.0, 2.0), "steer": (1.0, 2.0), **(lams or {})}
    tup = ", ".join(pairs.tuple_words)
    out: list[Entry] = []
    strict, tol = select_at(enc, sae, pairs, 1, 0.0), select_at(enc, sae, pairs, 1, 0.01)
    for mode in ("A", "B"):
        out += _snce_entries(sae, f"snce top-1 strict, mode {mode}", lams["snce"], 1, 0.0, strict, mode, tup)
    out += _snce_entries(sae, "snce top-1 tol 1%, mode B", lams["snce"], 1, 0.01, tol)
    for k in (10, 20):
        out += _snce_entries(
            sae, f"snce top-{k} tol 1%, mode B", lams["topk"], k, 0.01, select_at(enc, sae, pairs, k, 0.01)
        )
    fam = latent_family(prompt_codes(enc, sae, pairs.concept_prompts), prompt_codes(enc, sae, pairs.deconcept_prompts))
    if fam:
        out += [Entry("latent family, mode B", lam, len(fam), Eraser(sae, fam, lam, "B")) for lam in lams["family"]]
    out += [Entry("concept steerers", lam, None, ConceptSteerer(sae, tup, lam)) for lam in lams["steer"]]
    try:
        itd = [int(i) for i in select_neurons(enc, sae, pairs, top_k=1, method="itd")[1]["ranking"].top(16)]
    except SelectionError as exc:
        out.append(Entry("interpret-then-deactivate", None, None, None, None, None, str(exc).split(";")[0]))
    else:
        out.append(Entry("interpret-then-deactivate", 1.0, len(itd), Eraser(sae, itd, 1.0, "B"), itd))
    x_c = _token_features(enc, sae, pairs.concept_prompts, positions)
    x_o = _token_features(enc, sae, pairs.deconcept_prompts, positions)
    x, y = torch.cat([x_c, x_o]), torch.cat([torch.ones(len(x_c)), torch.zeros(len(x_o))]).long()
    out.append(Entry("leace", None, None, BlockMap("leace", leace_map(x, y), sae.cfg.layer or None)))
    out.append(Entry("probe projection", None, None, BlockMap("probe", probe_projection(probe_direction(x, y)),
                                                                sae.cfg.layer or None)))  # fmt: skip
    out.append(Entry("negative prompt", None, None, NegativePrompt(tup)))
    out.append(Entry("word removal (oracle)", None, None, WordRemoval(pairs.tuple_words)))
    return out


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
        if e.note:  # nothing to run: the row says why, and measures nothing
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
            "n_prompts": n, "edit_time_share": 0.0 if e.obj is None else max(0.0, (secs - base_s) / secs),
            **e.record(),
        })  # fmt: skip
    return rows


def concept_rows(enc, sae, pairs, entries: Sequence[Entry], positives: Sequence[str], negatives: Sequence[str],
                 held, world: str = "offline") -> list[dict]:  # fmt: skip
    """Where no images exist (the offline encoder's nudity prompts): per method, the probe leakage on
    the pooled final output (`positives` vs `negatives`, fixed and retrained probe), and the held-out
    check (`concepts.heldout`) after the edit: a probe fitted on the unedited pairs scored on the
    held-out concept prompts against the look-alikes and the neutral prompts, and, for methods that
    edit SAE latents, those latents as a detector on the same sets."""
    from tqdm.auto import tqdm

    from snce_lib.concepts.heldout import fit_output_probe, neuron_detectors, probe_detector

    probe = fit_output_probe(enc, pairs.concept_prompts, pairs.deconcept_prompts)
    # every latent-editing method as a detector, in one pass over the held-out sets' codes
    with_latents = {i: list(e.obj.neurons) for i, e in enumerate(entries) if getattr(e.obj, "neurons", None)}
    measured = ("probe_auroc_before", "probe_auroc_fixed", "probe_auroc_retrained", "heldout_probe_auroc_vs_lookalike",
                "heldout_probe_auroc_vs_neutral", "heldout_latents_auroc_vs_lookalike",
                "heldout_latents_auroc_vs_neutral")  # fmt: skip
    latent_rows = dict(zip(with_latents, neuron_detectors(enc, sae, with_latents, held)))
    before = [pooled_output(enc, list(positives)), pooled_output(enc, list(negatives))]
    rows = []
    for i, e in enumerate(tqdm([Entry("none", None, None, None), *entries], desc=f"{world}/{pairs.name}")):
        if e.note:  # the strict filter left no latent: recorded, not measured
            rows.append({"world": world, "target": pairs.name, "method": e.method, "lam": None, "top_k": e.top_k,
                         **dict.fromkeys(measured), "n_positives": len(positives), "n_negatives": len(negatives),
                         "n_heldout": held.sizes, **e.record()})  # fmt: skip
            continue
        after = before if e.obj is None else [pooled_output(enc, list(p), e.obj) for p in (positives, negatives)]
        leak = probe_leakage(before[0], before[1], after[0], after[1])
        hp = probe_detector(enc, probe, held, e.obj)
        hn = latent_rows.get(i - 1, {})  # entry i - 1: row 0 is the unedited model
        rows.append({
            "world": world, "target": pairs.name, "method": e.method, "lam": e.lam, "top_k": e.top_k,
            "probe_auroc_before": leak.auroc_before, "probe_auroc_fixed": leak.auroc_fixed_probe,
            "probe_auroc_retrained": leak.auroc_retrained,
            "heldout_probe_auroc_vs_lookalike": hp["auroc_vs_lookalike"],
            "heldout_probe_auroc_vs_neutral": hp["auroc_vs_neutral"],
            "heldout_latents_auroc_vs_lookalike": hn.get("auroc_vs_lookalike"),
            "heldout_latents_auroc_vs_neutral": hn.get("auroc_vs_neutral"),
            "n_positives": len(positives), "n_negatives": len(negatives), "n_heldout": held.sizes,
            **e.record(),
        })  # fmt: skip
    return rows


def load_table(name: str = "table", path=None) -> tuple[list[dict], str]:
    """A methods table (`name`: "table" for the toy worlds, "nudity" for the offline encoder) and where
    it came from: `path`, else this machine's benchmark output (runs/bench/methods/<name>.json), else
    the copy shipped with the package (measured by `benchmarks/methods.py`, see docs/findings.md)."""
    import json
    from pathlib import Path

    from snce_lib.resources import data_path

    shipped = data_path("results", f"methods_{name}.json")
    for p in [Path(path)] if path else [Path("runs/bench/methods") / f"{name}.json", shipped]:
        if p.exists():
            return json.loads(p.read_text()), ("the copy shipped with the package" if p == shipped else str(p))
    raise FileNotFoundError(
        f"no methods table: run `python benchmarks/methods.py` (it writes runs/bench/methods/{name}.json)"
    )


def method_label(row: dict) -> str:
    lam = "" if row.get("lam") is None else f", λ {row['lam']:g}"
    return f"{row['method']}{lam}"


#: The rows the summary reads, as (method, lambda) pairs: the paper's setting first.
HEADLINE = (("snce top-1 strict, mode B", 1.0), ("snce top-1 strict, mode B", 4.0), ("snce top-20 tol 1%, mode B", 2.0),
            ("latent family, mode B", 2.0), ("concept steerers", 2.0), ("leace", None), ("word removal (oracle)", None))  # fmt: skip


def headline(rows: Sequence[dict]) -> list[str]:
    """One line per world and target from a methods table: target rate, attack rate and the other
    prompts' lower accuracy for the `HEADLINE` rows, beside the unedited model's. For notebook 04
    and docs/findings.md, so that no sentence about the table is typed by hand."""
    out = []
    for world, target in dict.fromkeys((r["world"], r["target"]) for r in rows):
        part = {(r["method"], r["lam"]): r for r in rows if r["world"] == world and r["target"] == target}
        base = part.get(("none", None))
        cells = []
        for key in (("none", None), *HEADLINE):
            r = part.get(key)
            if r is None or r.get("target_rate") is None:
                continue
            name = "unedited" if key[0] == "none" else method_label(r)
            acc = min(r["other_colour_acc"], r["other_shape_acc"])
            cells.append(f"{name}: {r['target_rate']:.2f} / {r['attack_rate']:.2f} / {acc:.2f}")
        n = base["n_prompts"] if base else "?"
        out.append(f"{world} {target} ({n} prompts a set; target / attack rate / other prompts' lower accuracy): "
                   + "; ".join(cells))  # fmt: skip
    return out


def latents_used(rows: Sequence[dict]) -> list[dict]:
    """Per world, target and SNCE/latent method: the latents edited and the tolerance their selection
    used, or why none were (one line each, whatever the lambda)."""
    out: dict[tuple, dict] = {}
    for r in rows:
        if r.get("neurons") is None and not r.get("note"):
            continue
        key = (r["world"], r["target"], r["method"])
        n = r.get("neurons")
        out.setdefault(key, {"world": key[0], "target": key[1], "method": key[2],
                             "deconcept_tolerance": r.get("deconcept_tolerance"),
                             "latents": r.get("note") if n is None else ", ".join(map(str, n[:12])) + (" ..." if len(n) > 12 else "")})  # fmt: skip
    return list(out.values())


def plot_comparison(rows: Sequence[dict], title: str = "Erasure methods in the toy worlds"):
    """One panel per world: target rate (share of target prompts whose image shows the target)
    against non-target accuracy (mean of colour and shape accuracy on prompts without it), a point
    per method and lambda; colour = method, marker = target. The ideal corner is bottom right."""
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("target_rate") is not None]  # rows that say why nothing ran
    worlds = list(dict.fromkeys(r["world"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    targets = list(dict.fromkeys(r["target"] for r in rows))
    cmap = plt.get_cmap("tab20")
    markers = dict(zip(targets, "o^sDv"))
    lo = min(0.5, min((r["other_colour_acc"] + r["other_shape_acc"]) / 2 for r in rows) - 0.05)
    fig, axes = plt.subplots(1, len(worlds), figsize=(6 * len(worlds), 5), sharey=True, squeeze=False)
    for ax, world in zip(axes[0], worlds):
        for r in (r for r in rows if r["world"] == world):
            x = (r["other_colour_acc"] + r["other_shape_acc"]) / 2
            ax.scatter(x, r["target_rate"], color=cmap(methods.index(r["method"]) % 20), marker=markers[r["target"]],
                       s=30 + 12 * (r.get("lam") or 1), alpha=0.8, edgecolors="k", linewidths=0.4)  # fmt: skip
        n = next(r["n_prompts"] for r in rows if r["world"] == world)
        ax.set(title=f"{world} world ({n} prompts a set)", xlabel="non-target accuracy (colour and shape, share)",
               xlim=(lo, 1.02), ylim=(-0.02, 1.02))  # fmt: skip
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("target rate (share of target prompts drawn with the target)")
    handles = [plt.Line2D([], [], ls="", marker="o", color=cmap(i % 20), label=m) for i, m in enumerate(methods)]
    handles += [plt.Line2D([], [], ls="", marker=markers[t], color="gray", label=f"target: {t}") for t in targets]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, title="marker size: λ")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
