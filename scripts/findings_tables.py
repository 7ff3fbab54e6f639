"""The markdown tables of docs/findings.md, printed from the benchmark outputs so that no number in the
doc is typed by hand:

    python scripts/findings_tables.py [--bench runs/bench]

Reads whichever of these exist: methods/table.json, methods/table_full_clip.json, methods/nudity.json,
discovery_generalisation.json, training_options/results.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from snce_lib.atlas.explore import DEFAULT_DISCOVERY
from snce_lib.evaluation.methods_table import FAMILY_ROWS, method_label, rate_ci


def cell(r: dict) -> str:
    acc = min(r["other_colour_acc"], r["other_shape_acc"])
    fr = r["frechet"]
    frs = f"{fr:.2f}" if fr < 10 else f"{fr:.0f}"
    return f"{r['target_rate']:.2f}, {r['attack_rate']:.2f} ({frs}; {acc:.2f})"


def methods_markdown(rows: list[dict]) -> str:
    cols = list(dict.fromkeys((r["world"], r["target"]) for r in rows))
    keys = list(dict.fromkeys((r["method"], r["lam"]) for r in rows))
    by = {(r["world"], r["target"], r["method"], r["lam"]): r for r in rows}
    head = "| method, λ | " + " | ".join(f"{'MiniLM' if w == 'minilm' else w.upper()} {t}" for w, t in cols) + " |"
    out = [head, "|---" * (len(cols) + 1) + "|"]
    for m, lam in keys:
        cells = []
        for w, t in cols:
            r = by.get((w, t, m, lam))
            cells.append("" if r is None else (r.get("note") or "not run") if r.get("target_rate") is None else cell(r))
        out.append(f"| {method_label({'method': m, 'lam': lam})} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def family_markdown(rows: list[dict]) -> str:
    out = ["| world, target | row | latents | target rate | attack rate | preservation |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r["method"] not in ("none", *FAMILY_ROWS) or r.get("target_rate") is None:
            continue
        n = r["n_prompts"]
        keep = r["other_colour_acc"] if r["target"] == "red" else r["other_shape_acc"]
        cells = []
        for v in (r["target_rate"], r["attack_rate"], keep):
            lo, hi = rate_ci(v, n)
            cells.append(f"{v:.2f} [{lo:.2f}, {hi:.2f}]")
        lat = len(r["neurons"]) if r.get("neurons") else 0
        out.append(f"| {r['world']} {r['target']} (n = {n}) | {method_label(r)} | {lat} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def auroc(r: dict, key: str, ci: str) -> str:
    v = r.get(key)
    if v is None:
        return ""
    c = r.get(ci)
    return f"{v:.2f} [{c[0]:.2f}, {c[1]:.2f}]" if c else f"{v:.2f}"


def nudity_markdown(rows: list[dict]) -> str:
    out = ["| method, λ | latents | probe after (fixed) | probe after (retrained) | held-out probe vs look-alikes | "
           "edited latents vs look-alikes | edited latents vs neutral |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r.get("probe_auroc_fixed") is None:
            out.append(f"| {method_label(r)} | | {r.get('note') or 'not run'} | | | | |")
            continue
        lat = len(r["neurons"]) if r.get("neurons") else ""
        out.append(f"| {method_label(r)} | {lat} | {auroc(r, 'probe_auroc_fixed', 'probe_ci95_fixed')} | "
                   f"{auroc(r, 'probe_auroc_retrained', 'probe_ci95_retrained')} | "
                   f"{auroc(r, 'heldout_probe_auroc_vs_lookalike', 'heldout_probe_ci95_vs_lookalike')} | "
                   f"{auroc(r, 'heldout_latents_auroc_vs_lookalike', 'heldout_latents_ci95_vs_lookalike')} | "
                   f"{auroc(r, 'heldout_latents_auroc_vs_neutral', 'heldout_latents_ci95_vs_neutral')} |")  # fmt: skip
    return "\n".join(out)


def generalisation_markdown(res: dict) -> str:
    out = ["| concept | top-1 latent | family (size) | dense probe | best single latent, cross-fitted (shuffled labels) |",
           "|---|---|---|---|---|"]  # fmt: skip

    def a(x):
        return f"{x['auroc']:.2f} [{x['ci95'][0]:.2f}, {x['ci95'][1]:.2f}]"

    for r in res["rows"]:
        out.append(f"| {r['concept']} | {a(r['top1'])} | {a(r['family'])} ({len(r['family_latents'])}) | "
                   f"{a(r['probe'])} | {r['ceiling']:.2f} ({r['ceiling_shuffled']:.2f}) |")  # fmt: skip
    s = res["summary"]
    out.append(f"| **mean** (at 0.8 or above, of {s['top1']['of']}) | {s['top1']['mean']:.3f} ({s['top1']['at_least_0.8']}) | "
               f"{s['family']['mean']:.3f} ({s['family']['at_least_0.8']}) | {s['probe']['mean']:.3f} "
               f"({s['probe']['at_least_0.8']}) | {s['ceiling']['mean']:.3f} ({s['ceiling_shuffled']['mean']:.3f}) |")  # fmt: skip
    return "\n".join(out)


def options_markdown(res: dict) -> str:
    out = ["| SAE | FVU, content words | FVU, every position | content features (of live) | discovery, default lens | "
           "chosen on validation (latent) | its test AUROC | paper's strict latent: test AUROC |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in res["rows"]:
        o = r["options"]
        rows = {x["option"]: x for x in o["rows"]}
        ch = rows.get(o["chosen"], {})
        paper = rows.get("SNCE strict (paper)", {})

        def t(x):
            return (
                f"{x['test']['auroc']:.3f} [{x['test']['ci95'][0]:.2f}, {x['test']['ci95'][1]:.2f}]"
                if x.get("test")
                else x.get("note", "")
            )

        live = r["set_aside"]["live"]
        disc = r["discovery_hit_rate"].get(DEFAULT_DISCOVERY, 0)
        out.append(f"| {r['variant']} ({r['latents']:,} latents, {r['tokens'] / 1e6:.1f}M tokens) | {r['fvu_content']:.4f} | "
                   f"{r['fvu_all']:.4f} | {r['content_share']:.1%} of {live:,} | {disc:.0%} | {o['chosen']} ({ch.get('label', '')}) | "
                   f"{t(ch)} | {paper.get('label', '')}: {t(paper)} |")  # fmt: skip
    return "\n".join(out)


def options_detail_markdown(res: dict) -> str:
    """Every selection option on the first SAE of the training-options run (the profile's)."""
    r = res["rows"][0]
    o = r["options"]
    out = [f"| option ({r['variant']}) | latent | validation (chooses) | test | held out vs look-alikes | held out vs neutral |",
           "|---|---|---|---|---|---|"]  # fmt: skip

    def a(x):
        return f"{x['auroc']:.3f} [{x['ci95'][0]:.2f}, {x['ci95'][1]:.2f}]" if x else ""

    for x in o["rows"]:
        mark = " (chosen)" if x["option"] == o["chosen"] else ""
        if x.get("validation") is None:
            out.append(f"| {x['option']} | {x.get('note', '')} | | | | |")
            continue
        out.append(f"| {x['option']}{mark} | {x.get('label', '')} | {a(x['validation'])} | {a(x.get('test'))} | "
                   f"{a(x.get('vs_lookalike'))} | {a(x.get('vs_neutral'))} |")  # fmt: skip
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", default="runs/bench")
    a = ap.parse_args()
    b = Path(a.bench)
    for name, path, fn in (("methods (n = 16)", b / "methods/table.json", methods_markdown),
                           ("family against one neuron (n = 16)", b / "methods/table.json", family_markdown),
                           ("CLIP world, full (n = 48)", b / "methods/table_full_clip.json", methods_markdown),
                           ("family against one neuron, CLIP full (n = 48)", b / "methods/table_full_clip.json", family_markdown),
                           ("nudity, offline encoder", b / "methods/nudity.json", nudity_markdown),
                           ("discovery on fresh prompts", b / "discovery_generalisation.json", generalisation_markdown),
                           ("training options", b / "training_options/results.json", options_markdown),
                           ("every option, first SAE", b / "training_options/results.json", options_detail_markdown)):  # fmt: skip
        if path.exists():
            print(f"\n### {name} ({path})\n")
            print(fn(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
