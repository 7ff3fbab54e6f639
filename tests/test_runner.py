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
