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
