"""Reading a methods table (`benchmarks/methods.py` writes it; a measured copy ships with the package):
loading it, naming its rows, which latents each row edited, and the headline lines that notebook 04 and
docs/findings.md print from it, so that no sentence about the table is typed by hand."""

from __future__ import annotations

from collections.abc import Sequence


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
            ("snce cover tol 1%, mode B", 2.0), ("latent family, mode B", 2.0), ("concept steerers", 2.0), ("leace", None),
            ("word removal (oracle)", None))  # fmt: skip


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


#: The nudity table's AUROC columns, each with the key of its 95% interval and what it compares.
NUDITY_COLUMNS = {
    "probe_auroc_fixed": ("probe_ci95_fixed", "probe after the edit (fixed)"),
    "probe_auroc_retrained": ("probe_ci95_retrained", "probe after the edit (retrained)"),
    "heldout_probe_auroc_vs_lookalike": ("heldout_probe_ci95_vs_lookalike", "held-out probe vs look-alikes"),
    "heldout_probe_auroc_vs_neutral": ("heldout_probe_ci95_vs_neutral", "held-out probe vs neutral"),
    "heldout_latents_auroc_vs_lookalike": ("heldout_latents_ci95_vs_lookalike", "edited latents vs look-alikes"),
}


def with_interval(row: dict, key: str, ci_key: str | None) -> str | None:
    """ "0.52 [0.37, 0.66]": an AUROC of a table row with its 95% interval (the number alone where the row
    records none; None where it was not measured)."""
    v = row.get(key)
    if v is None:
        return None
    ci = row.get(ci_key) if ci_key else None
    return f"{v:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{v:.2f}"


def nudity_frame(rows: Sequence[dict]):
    """The offline nudity table as a reader compares it: one row a method, each AUROC with its interval."""
    import pandas as pd

    return pd.DataFrame(
        [{what: with_interval(r, key, ci) for key, (ci, what) in NUDITY_COLUMNS.items()} for r in rows],
        index=[method_label(r) for r in rows],
    )


def rate_ci(rate: float, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a share measured on `n` images."""
    import math

    if n <= 0:
        return (float("nan"), float("nan"))
    z = 1.96
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


#: The rows of the family-against-single-neuron comparison: SNCE's single neuron, the cover (the
#: smallest set of latents that fires in every concept prompt), the latent family.
FAMILY_ROWS = ("snce top-1 strict, mode B", "snce top-1 tol 1%, mode B", "snce cover tol 1%, mode B",
               "latent family, mode B")  # fmt: skip


def family_vs_single(rows: Sequence[dict]):
    """Images: per world, target and SNCE/family row, the target rate, the attack rate (held-out synonyms
    and paraphrases) and preservation (the other prompts' accuracy of the attribute the edit could
    break), each with its Wilson 95% interval over the row's n prompts, and the latents edited."""
    import pandas as pd

    out = []
    for r in rows:
        if r["method"] not in ("none", *FAMILY_ROWS) or r.get("target_rate") is None:
            continue
        n = r["n_prompts"]
        keep = r["other_colour_acc"] if r["target"] == "red" else r["other_shape_acc"]
        cell = {}
        for what, v in (("target rate", r["target_rate"]), ("attack rate", r["attack_rate"]), ("preservation", keep)):
            lo, hi = rate_ci(v, n)
            cell[what] = f"{v:.2f} [{lo:.2f}, {hi:.2f}]"
        out.append({"world": r["world"], "target": r["target"], "row": method_label(r), "n": n,
                    "latents": len(r["neurons"]) if r.get("neurons") else 0, **cell})  # fmt: skip
    return pd.DataFrame(out).set_index(["world", "target", "row"]) if out else pd.DataFrame()


def family_verdict(rows: Sequence[dict]) -> list[str]:
    """One line per world and target, read off the image rows of `family_vs_single`: the lowest target
    rate each kind of row reaches (one latent: SNCE top-1; several: the cover, the latent family), with
    its λ, attack rate and n, whether the cover is only the top-1 latent again, and which rows are missing."""
    out = []
    keys = sorted({(r["world"], r["target"]) for r in rows if r.get("target_rate") is not None})
    for world, target in keys:
        mine = [r for r in rows if (r["world"], r["target"]) == (world, target) and r.get("target_rate") is not None]
        parts = []
        for what, names in (
            ("one latent", FAMILY_ROWS[:2]),
            ("cover", FAMILY_ROWS[2:3]),
            ("latent family", FAMILY_ROWS[3:]),
        ):
            got = [r for r in mine if r["method"] in names]
            if not got:
                parts.append(f"{what}: no row (no latent passed its rule)")
                continue
            best = min(got, key=lambda r: (r["target_rate"], r["lam"]))
            parts.append(f"{what} ({len(best['neurons'] or [])} latent(s)) at best {best['target_rate']:.2f} at λ "
                         f"{best['lam']:g}, attack {best['attack_rate']:.2f}")  # fmt: skip
        singles = {tuple(r["neurons"] or ()) for r in mine if r["method"] in FAMILY_ROWS[:2]}
        covers = {tuple(r["neurons"] or ()) for r in mine if r["method"] in FAMILY_ROWS[2:3]}
        same = bool(covers) and covers <= singles
        n = mine[0]["n_prompts"]
        out.append(f"{world} {target} (n = {n} a set): " + "; ".join(parts)
                   + ("; the cover is a top-1 latent again" if same else ""))  # fmt: skip
    return out
