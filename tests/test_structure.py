"""One home per idea, held-out sets that are never fitted, and one default across the workbook."""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_the_sae_model_holds_no_file_format_and_the_formats_no_circle():
    """sae/model.py once wrote safetensors and JSON and imported sae/hub.py lazily, which imported the
    model back; now every loader and writer lives in sae/formats.py, which the model never imports."""
    model = imports_of(ROOT / "snce_lib/sae/model.py")
    assert not {m for m in model if re.search(r"safetensors|json|huggingface|formats|hub|interop|snce_lib\.io", m)}
    assert not (ROOT / "snce_lib/sae/hub.py").exists() and not (ROOT / "snce_lib/sae/interop.py").exists()
    from snce_lib.sae import formats
    from snce_lib.sae.model import TopKSAE

    assert not any(hasattr(TopKSAE, n) for n in ("save", "load", "from_pretrained", "push_to_hub", "from_tensors"))
    for name in ("save", "load", "from_pretrained", "push_to_hub", "to_saelens", "from_saelens", "to_sparsify",
                 "from_sparsify", "read_checkpoint"):  # fmt: skip
        assert callable(getattr(formats, name)), name


def test_the_methods_comparison_is_split_by_job():
    """comparison.py once built the methods, ran them with and without images, loaded the tables, wrote
    the headline and drew the figure; each job now has its module."""
    from snce_lib.evaluation import comparison, figures, image_rows, methods_table, offline_rows

    assert {n for n in dir(comparison) if not n.startswith("_")} >= {"concept_methods", "world_methods", "Entry"}
    for job, mod in (("method_rows", image_rows), ("concept_rows", offline_rows), ("load_table", methods_table),
                     ("headline", methods_table), ("plot_comparison", figures)):  # fmt: skip
        assert hasattr(mod, job) and not hasattr(comparison, job), job


def test_the_leakage_probe_without_public_sets_never_reads_a_held_out_set(monkeypatch):
    """Without the public sets, notebook 04's leakage probe and the methods benchmark once fitted their
    probe on the held-out sets; the stand-in is the training corpus's own prompts."""
    import snce_lib.evaluation.sets as sets
    from snce_lib.concepts.heldout import load_heldout
    from snce_lib.prompts import PromptFileError

    def missing(name, n=None):
        raise PromptFileError(f"no {name} here")

    monkeypatch.setattr(sets, "load_set", missing)
    ps = sets.probe_sets(100)
    held = load_heldout("nudity")
    assert ps.stand_in and "STAND-IN" in ps.description and len(ps.concept) == len(ps.other) == 100
    assert not set(ps.concept + ps.other) & set(held.concept + held.lookalike + held.neutral)
    assert all(re.search(r"naked|nude|topless|bare|breast|undress|strip|cloth|nothing|expos", p) for p in ps.concept)
    for name in ("notebooks/04_erasure_eval.py", "benchmarks/methods.py"):
        text = (ROOT / name).read_text()
        assert "probe_sets(" in text and "concept_leakage(encoder, eraser, probe[" not in text, name


def test_what_notebook_03_erases_is_what_notebook_04_erases():
    """One default: notebook 03 names the neuron notebook 04 erases (SNCE's selection, saved to the run
    folder) beside the detector chosen on validation, and notebook 04 erases exactly that file.
    Read off the executed notebooks of this checkout's offline run (CI runs the workbook first)."""
    run = ROOT / "runs" / "offline"
    ex3, ex4 = run / "executed" / "03_neuron_selection.ipynb", run / "executed" / "04_erasure_eval.ipynb"
    if not (ex3.exists() and ex4.exists() and (run / "neurons_nudity.json").exists()):
        pytest.skip("no executed offline workbook in runs/offline (run `make workbook` first)")

    def text(path):
        nb = json.loads(path.read_text())
        parts = [o["text"] for c in nb["cells"] for o in c.get("outputs", []) if "text" in o]
        return "".join("".join(p) if isinstance(p, list) else p for p in parts)

    saved = json.loads((run / "neurons_nudity.json").read_text())["neurons"]
    said3 = re.search(r"erased in notebook 04: #(\d+)", text(ex3))
    said4 = re.search(r"erasing notebook 03's selection: neuron\(s\) \[([\d, ]+)\]", text(ex4))
    assert said3 and said4, "notebooks 03 and 04 say which neuron is erased"
    assert [int(said3.group(1))] == saved[:1] and [int(x) for x in said4.group(1).split(",")] == saved
