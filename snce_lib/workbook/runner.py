"""Running the notebooks headless, top to bottom, as `snce workbook` and CI do, saying as it goes
which notebook and which cell runs, for how long and at what peak memory (RAM, and GPU memory on
a GPU: measured inside the kernel by `workbook.cellstats`), and on failure which cell, which line
and what error. Every cell's time and peaks go to <run folder>/cells.json."""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from snce_lib.io import atomic_write_json
from snce_lib.workbook.profiles import NOTEBOOKS, get_profile
from snce_lib.workbook.steps import record

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # terminal colours in kernel tracebacks


class NotebookFailed(RuntimeError):
    """A cell raised: the message names the notebook, the cell, its failing line and the error."""


def find_notebooks(folder: str | os.PathLike | None = None) -> Path:
    """The folder holding the notebooks: `folder`, else ./notebooks (a repository checkout)."""
    path = Path(folder) if folder else Path("notebooks")
    missing = [n for n in NOTEBOOKS if not (path / f"{n}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(
            f"no notebooks {', '.join(missing)} in {path.resolve()}: run from a checkout of the repository, "
            "or pass --notebooks DIR (the repository's notebooks/ folder)"
        )
    return path


def first_line(source: str) -> str:
    """A cell's first line of code (comments and blank lines skipped), shortened for a log line."""
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()[:80]
    return "(comments only)"


def failing_line(source: str, traceback: list[str]) -> str:
    """The line of `source` the error points at (IPython's 'Cell In[n], line k'), else its first line."""
    text = _ANSI.sub("", "\n".join(traceback))
    lines = re.findall(r"Cell In\[\d+\], line (\d+)", text)
    src = source.splitlines()
    if lines and 0 < int(lines[0]) <= len(src):
        return f"line {lines[0]}: {src[int(lines[0]) - 1].strip()[:100]}"
    return f"line 1: {first_line(source)}"


def _gb(n: int | None) -> str:
    return f"{n / 1e9:.2f} GB" if n is not None else "?"


def _peaks(path: Path, execution_count) -> dict:
    """The kernel's measurement of the cell that ran as `execution_count` (empty when there is none)."""
    if execution_count is None or not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return next((r for r in reversed(rows) if r.get("execution_count") == execution_count), {})


def execute_notebook(
    path: Path,
    out: Path,
    timeout: int,
    log: Callable[[str], None] = print,
    tick: float = 30.0,
    cwd: Path | None = None,
    cells: list | None = None,
) -> float:
    """Run one notebook, log each code cell with its time and peak memory (and every `tick` seconds
    of a long one), write the executed copy to `out` atomically. Returns the seconds it took; raises
    NotebookFailed. `cells`, when given, receives one dict a code cell: its number, first line,
    seconds, and the kernel's peak RSS and GPU memory during it (bytes; GPU None without CUDA)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    number = {idx: n + 1 for n, idx in enumerate(code)}
    name = path.stem
    state = {"cell": None, "last": None, "start": 0.0}
    stop = threading.Event()
    stats_dir = tempfile.mkdtemp(prefix="snce-cells-")
    stats = Path(stats_dir) / f"{name}.jsonl"

    def ticker():
        while not stop.wait(tick):
            if state["cell"] is not None:
                i = state["cell"]
                log(
                    f"  {name}: cell {number[i]}/{len(code)} still running, {time.perf_counter() - state['start']:.0f} s so far "
                    f"({first_line(nb.cells[i].source)})"
                )

    def on_start(cell, cell_index, **_):
        if cell.cell_type != "code":  # nbclient announces markdown cells too, and never reports them executed
            return
        state["cell"] = state["last"] = cell_index
        state["start"] = time.perf_counter()

    def on_executed(cell, cell_index, execute_reply=None, **_):
        took = time.perf_counter() - state["start"]
        count = (execute_reply or {}).get("content", {}).get("execution_count", cell.get("execution_count"))
        peak = _peaks(stats, count)
        mem = f", peak RSS {_gb(peak['rss_peak'])}" if peak.get("rss_peak") else ""
        mem += f", peak GPU {_gb(peak['gpu_peak'])}" if peak.get("gpu_peak") is not None else ""
        log(f"  {name}: cell {number[cell_index]}/{len(code)} done in {took:.1f} s{mem} ({first_line(cell.source)})")
        if cells is not None:
            cells.append({"notebook": name, "cell": number[cell_index], "first_line": first_line(cell.source),
                          "source": cell.source, "seconds": round(took, 2), **peak})  # fmt: skip
        state["cell"] = None

    log(f"{name}: {len(code)} code cells")
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd or path.parent)}},
        on_cell_start=on_start,
        on_cell_executed=on_executed,
        # each cell's peak memory, measured in the kernel (a kernel without snce_lib just skips it)
        extra_arguments=["--ext=snce_lib.workbook.cellstats"],
    )
    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    saved = os.environ.get("SNCE_CELL_STATS")
    os.environ["SNCE_CELL_STATS"] = str(stats)  # the kernel inherits it
    try:
        client.execute()
    except CellExecutionError as exc:
        i = state["last"]
        cell = nb.cells[i] if i is not None else None
        err = next((o for o in (cell.outputs if cell else []) if o.get("output_type") == "error"), None)
        what = f"{err['ename']}: {' '.join(str(err['evalue']).split())[:300]}" if err else str(exc).splitlines()[-1]
        what = _ANSI.sub("", what)
        where = failing_line(cell.source, err.get("traceback", []) if err else []) if cell else "?"
        raise NotebookFailed(
            f"notebook {name} failed in cell {number.get(i, '?')}/{len(code)}, {where} -> {what}"
        ) from None
    finally:
        stop.set()
        if saved is None:
            os.environ.pop("SNCE_CELL_STATS", None)
        else:
            os.environ["SNCE_CELL_STATS"] = saved
        stats.unlink(missing_ok=True)
        os.rmdir(stats_dir)
    seconds = time.perf_counter() - t0
    tmp = out / f".{name}.ipynb.tmp"
    nbformat.write(nb, tmp)
    os.replace(tmp, out / f"{name}.ipynb")
    log(f"{name}: executed in {seconds:.1f} s -> {out / (name + '.ipynb')}")
    return seconds


def run_notebooks(
    profile: str = "offline",
    names: list[str] | None = None,
    timeout: int = 1800,
    out_dir: str | os.PathLike | None = None,
    notebooks: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Execute the notebooks top to bottom (headless) and write executed copies.

    Kernels inherit this process's environment, with SNCE_PROFILE set and SNCE_HOME made
    absolute, so every notebook reads and writes the same run folder, and SNCE_FILL_ANSWERS=1, so
    chapter 00's unwritten exercises run with their reference answers (`workbook.exercises`).
    Each cell's time and peak memory go to <run folder>/cells.json ({notebook: [cell, ...]}). A
    profile with `hub_cache="real"` (colab-rehearsal) first builds, once, random-weight models of the
    real sizes (`workbook.rehearsal`) and points the kernels at them. On a profile that runs SD, the
    log starts with each step's expected time on a T4 (`workbook.budget`).
    Returns {"executed": [...], "seconds": {...}, "summary": path, "cells": path}. Raises NotebookFailed
    on the first cell error.
    """
    log = log or (lambda line: print(line, flush=True))
    src_dir = find_notebooks(notebooks).resolve()
    p = get_profile(profile)
    out = Path(out_dir) if out_dir else p.run_dir / "executed"
    out.mkdir(parents=True, exist_ok=True)
    env = {"SNCE_PROFILE": p.name, "SNCE_HOME": str(p.run_dir.parent), "SNCE_FILL_ANSWERS": "1"}
    if p.hub_cache == "real":
        from snce_lib.workbook.rehearsal import prepare

        env |= prepare(log=log)
    if p.pipeline == "model":
        from snce_lib.workbook.budget import plan_text

        log(plan_text(p))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    todo = names or NOTEBOOKS
    seconds = {}
    cells_path = p.run_dir / "cells.json"
    try:
        for n, name in enumerate(todo, 1):
            log(f"[{n}/{len(todo)}] profile {p.name}")
            cells: list = []
            seconds[name] = round(execute_notebook(src_dir / f"{name}.ipynb", out, timeout, log, cells=cells), 1)
            # one entry a notebook, replaced when it runs again (a run with --only keeps the others)
            p.run_dir.mkdir(parents=True, exist_ok=True)
            kept = json.loads(cells_path.read_text()) if cells_path.exists() else {}
            atomic_write_json(cells_path, {**kept, name: cells})
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    record(p, "notebook_seconds", seconds)
    return {
        "executed": [str(out / f"{n}.ipynb") for n in seconds],
        "seconds": seconds,
        "summary": str(p.run_dir / "summary.json"),
        "cells": str(cells_path),
    }
