"""The notebooks: every percent-format .py has its .ipynb, and each pair holds the same cells."""

from pathlib import Path

import pytest

NB = Path(__file__).resolve().parents[1] / "notebooks"
PYS = sorted(NB.glob("*.py"))


def test_five_notebooks_each_paired():
    names = [p.stem for p in PYS]
    assert names == [
        "00_sparse_dictionaries",
        "01_train_sae",
        "02_feature_atlas",
        "03_neuron_selection",
        "04_erasure_eval",
    ]
    for p in PYS:
        assert p.with_suffix(".ipynb").exists(), f"{p.name} has no .ipynb pair (run: jupytext --sync {p})"
    for p in NB.glob("*.ipynb"):
        assert p.with_suffix(".py").exists(), f"{p.name} has no .py source"


@pytest.mark.parametrize("py", PYS, ids=[p.stem for p in PYS])
def test_pair_in_sync(py):
    import jupytext

    a = jupytext.read(py)
    b = jupytext.read(py.with_suffix(".ipynb"))

    def cells(nb):
        return [(c.cell_type, c.source.strip()) for c in nb.cells]

    assert cells(a) == cells(b), f"{py.name} and its .ipynb differ: run `jupytext --sync {py}`"


@pytest.mark.parametrize("py", PYS, ids=[p.stem for p in PYS])
def test_notebook_has_profile_switch_and_no_outside_paths(py):
    text = py.read_text()
    assert "P = wb.setup()" in text  # the profile comes from SNCE_PROFILE (or the GPU) inside setup
    assert "/work/" not in text and "/home/" not in text and "C:\\" not in text
