"""The headless runner says which notebook and cell run, and where a failure is."""

import nbformat
import pytest

from snce_lib.workbook.runner import NotebookFailed, execute_notebook


def write_notebook(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a title")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_progress_per_cell_and_failure_names_cell_line_and_error(tmp_path):
    lines = []
    ok = write_notebook(tmp_path / "ok.ipynb", ["x = 1", "# wait a little\nimport time\ntime.sleep(0.6)"])
    execute_notebook(ok, tmp_path, timeout=60, log=lines.append, tick=0.2)
    assert "ok: 2 code cells" in lines
    assert any(line.startswith("  ok: cell 1/2 done in") and "(x = 1)" in line for line in lines)
    assert any("cell 2/2 still running" in line and "(import time)" in line for line in lines)
    assert (tmp_path / "ok.ipynb").exists()

    bad = write_notebook(tmp_path / "bad.ipynb", ["x = 1", "y = 2\nz = x / 0\nw = 3"])
    with pytest.raises(NotebookFailed) as info:
        execute_notebook(bad, tmp_path / "out", timeout=60, log=lines.append)
    msg = str(info.value)
    assert "notebook bad failed in cell 2/2" in msg
    assert "line 2: z = x / 0" in msg and "ZeroDivisionError: division by zero" in msg
    assert not (tmp_path / "out" / "bad.ipynb").exists()  # no executed copy of a failed run


def test_progress_never_names_a_markdown_cell(tmp_path, monkeypatch):
    """nbclient announces markdown cells as they pass and never reports them executed: the progress
    ticker, firing while the kernel shuts down after a last markdown cell, must not look one up."""
    import threading

    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("## the end")]
    nbformat.write(nb, tmp_path / "md.ipynb")
    lines = []
    execute_notebook(tmp_path / "md.ipynb", tmp_path, timeout=60, log=lines.append, tick=0.05)
    assert not errors, errors
    assert not [line for line in lines if "still running" in line and "the end" in line]


def test_each_cell_reports_its_own_peak_memory(tmp_path):
    """The kernel resets its peak RSS before every cell: a cell that holds 400 MB reports it, and the
    small cell after it does not inherit that peak (it would without the reset)."""
    nb = write_notebook(
        tmp_path / "mem.ipynb",
        [
            "import numpy as np\nbig = np.ones(50_000_000)  # 400 MB\ntotal = big.sum()\ndel big",
            "small = np.ones(1000)",
        ],
    )
    lines, cells = [], []
    execute_notebook(nb, tmp_path, timeout=120, log=lines.append, cells=cells)
    assert [c["cell"] for c in cells] == [1, 2] and cells[0]["first_line"] == "import numpy as np"
    big, small = cells[0]["rss_peak"], cells[1]["rss_peak"]
    assert cells[0]["rss_peak_is_cell"] and big - small > 350e6, (big, small)
    assert cells[0]["gpu_peak"] is None or cells[0]["gpu_peak"] >= 0
    assert any("cell 1/2 done in" in line and "peak RSS" in line for line in lines)
