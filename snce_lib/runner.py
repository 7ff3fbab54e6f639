"""Running the notebooks headless, top to bottom, as `snce workbook` and CI do."""
from __future__ import annotations

import os
import time
from pathlib import Path

from .workbook import NOTEBOOKS, get_profile, record


def find_notebooks(folder: str | os.PathLike | None = None) -> Path:
    """The folder holding the four notebooks: `folder`, else ./notebooks (a repository checkout)."""
    path = Path(folder) if folder else Path("notebooks")
    missing = [n for n in NOTEBOOKS if not (path / f"{n}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(
            f"no notebooks {', '.join(missing)} in {path.resolve()}: run from a checkout of the repository, "
            "or pass --notebooks DIR (the repository's notebooks/ folder)")
    return path


def run_notebooks(profile: str = "offline", names: list[str] | None = None, timeout: int = 1800,
                  out_dir: str | os.PathLike | None = None, notebooks: str | os.PathLike | None = None) -> dict:
    """Execute the notebooks top to bottom (headless) and write executed copies.

    Kernels inherit this process's environment, with SNCE_PROFILE set and SNCE_HOME made
    absolute, so every notebook reads and writes the same run folder.
    Returns {"executed": [...], "seconds": {...}, "summary": path}. Raises on the first cell error.
    """
    import nbformat
    from nbclient import NotebookClient

    src_dir = find_notebooks(notebooks).resolve()
    p = get_profile(profile)
    out = Path(out_dir) if out_dir else p.run_dir / "executed"
    out.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in ("SNCE_PROFILE", "SNCE_HOME")}
    os.environ["SNCE_PROFILE"] = p.name
    os.environ["SNCE_HOME"] = str(p.run_dir.parent)
    seconds = {}
    try:
        for name in names or NOTEBOOKS:
            nb = nbformat.read(src_dir / f"{name}.ipynb", as_version=4)
            t0 = time.perf_counter()
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(src_dir)}}).execute()
            seconds[name] = round(time.perf_counter() - t0, 1)
            tmp = out / f".{name}.ipynb.tmp"
            nbformat.write(nb, tmp)
            os.replace(tmp, out / f"{name}.ipynb")
            print(f"executed {name} in {seconds[name]} s -> {out / (name + '.ipynb')}", flush=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    record(p, "notebook_seconds", seconds)
    return {"executed": [str(out / f"{n}.ipynb") for n in seconds], "seconds": seconds,
            "summary": str(p.run_dir / "summary.json")}
