"""Each notebook cell's time and peak memory from a workbook run, as a markdown table.

    python benchmarks/cell_table.py RUN_DIR/PROFILE/cells.json [--min-seconds 1] [--compare OTHER/cells.json]

`snce workbook` writes cells.json (every code cell: seconds, the kernel's peak RSS during it, and its peak
GPU memory on a GPU). Cells under --min-seconds are summed into one line per notebook. With --compare,
a second run's seconds stand beside the first's, cell by cell (matched by notebook and first line).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def gb(n) -> str:
    return f"{n / 1e9:.2f}" if n is not None else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cells")
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--compare", default=None)
    a = ap.parse_args()
    runs = json.loads(Path(a.cells).read_text())
    other = json.loads(Path(a.compare).read_text()) if a.compare else {}
    head = "| notebook | cell | first line | seconds | peak RSS GB | peak GPU GB |"
    if other:
        head = "| notebook | cell | first line | seconds | other run s | peak RSS GB |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for nb, cells in runs.items():
        theirs = {c["first_line"]: c["seconds"] for c in other.get(nb, [])}
        small = [c for c in cells if c["seconds"] < a.min_seconds]
        for c in cells:
            if c["seconds"] < a.min_seconds:
                continue
            line = c["first_line"].replace("|", "\\|")[:70]
            last = f"{theirs.get(c['first_line'], '-')} | {gb(c.get('rss_peak'))}" if other else (
                f"{gb(c.get('rss_peak'))} | {gb(c.get('gpu_peak'))}")  # fmt: skip
            print(f"| {nb} | {c['cell']} | `{line}` | {c['seconds']:.1f} | {last} |")
        if small:
            peak = max((c.get("rss_peak") or 0) for c in small)
            print(f"| {nb} | {len(small)} others | (each under {a.min_seconds:g} s) | {sum(c['seconds'] for c in small):.1f} | "
                  f"{'- | ' if other else ''}{gb(peak)}{'' if other else ' | -'} |")  # fmt: skip
        total = sum(c["seconds"] for c in cells)
        print(f"| {nb} | all | | **{total:.1f}** | {'**' + format(sum(theirs.values()), '.1f') + '** | ' if other else ''}"
              f"{gb(max((c.get('rss_peak') or 0) for c in cells))}{'' if other else ' | -'} |")  # fmt: skip


if __name__ == "__main__":
    main()
