"""The Colab path without Colab: package data, public-set schemas, block names under both
transformers majors, the hub-shaped cache, missing steps, the install cell's bookkeeping."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snce_lib.models.encoders import TextEncoder
from snce_lib.prompts import SET_NAMES, PromptFileError, load_set
from snce_lib.resources import data_path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sets"
ROOT = Path(__file__).resolve().parents[1]


def test_every_data_file_the_library_reads_is_package_data():
    """pyproject's package-data globs cover every tracked file under data/."""
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["snce_lib.data"]
    base = data_path()
    shipped = {p for g in globs for p in base.glob(g)}
    files = {p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"}
    assert files and files <= shipped, f"not shipped in the wheel: {sorted(map(str, files - shipped))}"
    assert data_path("concepts", "nudity_pairs.csv").exists() and data_path("toy", "unet.safetensors").exists()


# ---- public sets against their real headers ------------------------------------------------
@pytest.fixture()
def fixture_sets(monkeypatch, tmp_path):
    monkeypatch.setenv("SNCE_DATA_DIR", str(FIXTURES))
    monkeypatch.setenv("SNCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no ../shared/data from here


@pytest.mark.parametrize("name", SET_NAMES)
def test_each_public_set_loads_from_its_real_header(fixture_sets, name):
    ps = load_set(name)
    assert list(ps.frame.columns[:4]) == ["prompt", "case_number", "evaluation_seed", "evaluation_guidance"]
    assert len(ps) >= 1 and all(isinstance(p, str) and p for p in ps.prompts)


def test_set_specifics(fixture_sets):
    assert load_set("i2p_nudity").frame["nudity_percentage"].min() >= 50  # rows at 80 and 55, not 10
    assert len(load_set("i2p_nudity")) == 2 and len(load_set("i2p_sexual")) == 1
    assert load_set("ring_a_bell_50").prompts[0] == "bare people in the studio"  # "None" parts dropped
    assert load_set("mma").prompts[0].startswith("adversarial tokens")  # the adv_prompt column
    assert load_set("i2p").frame["evaluation_seed"].tolist() == [100, 101, 102]


def test_i2p_in_its_hub_schema_loads_with_seed_and_guidance(fixture_sets, tmp_path):
    (tmp_path / "d" / "i2p").mkdir(parents=True)
    (tmp_path / "d" / "i2p" / "i2p_4703.csv").write_text((FIXTURES / "hub" / "i2p_benchmark.csv").read_text())
    os.environ["SNCE_DATA_DIR"] = str(tmp_path / "d")
    ps = load_set("i2p")
    assert ps.frame["evaluation_seed"].tolist() == [200, 201, 202]
    assert ps.frame["evaluation_guidance"].tolist() == [7, 7, 7]


def test_a_missing_set_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("SNCE_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PromptFileError, match="not on this machine"):
        load_set("coco", fetch=False)


def test_a_file_without_the_needed_column_is_named(fixture_sets, tmp_path):
    bad = tmp_path / "d" / "attacks"
    bad.mkdir(parents=True)
    (bad / "mma_diffusion_1000.csv").write_text("target_prompt,clean_prompt\na,b\n")
    os.environ["SNCE_DATA_DIR"] = str(tmp_path / "d")
    with pytest.raises(PromptFileError, match="no column 'adv_prompt'"):
        load_set("mma")


# ---- block names under transformers 4.x and 5.x -----------------------------------------
class _V4Layout(torch.nn.Module):
    """CLIPTextModel as transformers 4.x lays it out: the blocks under `text_model.encoder.layers`."""

    def __init__(self, inner):
        super().__init__()
        self.text_model = inner
        self.config = inner.config


@pytest.mark.parametrize("layout", ["v5", "v4"])
def test_block_names_resolve_the_same_under_both_layouts(layout):
    from transformers import CLIPTextConfig, CLIPTextModel

    model = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=12, vocab_size=100
        )
    )
    inner = getattr(model, "text_model", model)  # 4.x wraps, 5.x does not
    model = _V4Layout(inner) if layout == "v4" else inner
    enc = TextEncoder(model, None, "tiny", "clip", 77, False)
    names = {enc.resolve_layer(n) for n in (9, "9", "layers.9", "encoder.layers.9", "text_model.encoder.layers.9")}
    assert len(names) == 1 and next(iter(names))[1] == 9
    assert enc.block("text_model.encoder.layers.9") is enc.block("encoder.layers.9")


# ---- the hub-shaped cache ----------------------------------------------------------------
def test_hub_cache_loads_through_the_real_hub_client(tmp_path):
    """`from_pretrained` of the real ids, offline, returns the tiny models and SD v1.4's tokenizer, in a
    fresh process (the hub client reads HF_HOME when it is imported)."""
    from snce_lib.models.hubcache import build_hub_cache

    home = build_hub_cache(tmp_path / "hf")
    code = (
        "from snce_lib.models.encoders import load_encoder; from snce_lib.models.pipelines import load_pipeline;"
        "from snce_lib.evaluation.metrics import load_clip;"
        "e = load_encoder('CompVis/stable-diffusion-v1-4'); n, i = e.resolve_layer('encoder.layers.9');"
        "p = load_pipeline('CompVis/stable-diffusion-v1-4', device='cpu');"
        "im = p('a red car', num_inference_steps=2, height=64, width=64, output_type='np').images;"
        "m, _ = load_clip();"
        "print(i, len(e.block_names), e.width, im.shape, type(m).__name__, e.tokenizer('a photo of a cat')['input_ids'])"
    )
    env = dict(os.environ, HF_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    # SD v1.4's own ids, from its tokenizer rebuilt in the cache
    assert (
        out.stdout.strip().splitlines()[-1]
        == "9 12 32 (1, 64, 64, 3) CLIPModel [49406, 320, 1125, 539, 320, 2368, 49407]"
    )
    index = json.loads(
        next((home / "hub").glob("models--CompVis--stable-diffusion-v1-4/snapshots/*/model_index.json")).read_text()
    )
    assert index["tokenizer"] == ["transformers", "CLIPTokenizer"] and "safety_checker" in index


# ---- the run folder and missing steps ----------------------------------------------------
def test_a_missing_sae_names_the_notebook_that_makes_it(monkeypatch, tmp_path):
    from snce_lib import workbook as wb

    monkeypatch.setenv("SNCE_HOME", str(tmp_path / "runs"))
    monkeypatch.delenv("SNCE_BUILD_MISSING", raising=False)
    p = wb.get_profile("offline")
    assert p.run_dir == tmp_path / "runs" / "offline"
    with pytest.raises(wb.MissingStepError, match="run notebook 01_train_sae first"):
        wb.ensure_sae(p)
    with pytest.raises(wb.MissingStepError, match="run notebook 03_neuron_selection first"):
        wb.ensure_selection(p, "nudity", sae=object())


def test_run_home_defaults_to_snce_runs_in_the_working_directory(monkeypatch, tmp_path):
    from snce_lib.resources import run_home

    monkeypatch.delenv("SNCE_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_home() == tmp_path / "snce-runs"


def test_model_is_chosen_in_one_place(monkeypatch):
    from snce_lib import workbook as wb

    monkeypatch.delenv("SNCE_MODEL", raising=False)
    assert wb.get_profile("colab").encoder_spec == "CompVis/stable-diffusion-v1-4"
    monkeypatch.setenv("SNCE_MODEL", "/models/my-sd")
    assert wb.get_profile("colab").encoder_spec == "/models/my-sd" == wb.get_profile("colab-smoke").model
    assert wb.get_profile("offline").encoder_spec == "offline"


def test_installed_since_lists_what_an_install_added(tmp_path):
    from importlib.metadata import distributions

    from snce_lib.workbook.session import installed_since

    now = sorted({f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"]})
    snap = tmp_path / "runtime.txt"
    snap.write_text("\n".join(x for x in now if not x.lower().startswith("tqdm==")))
    # a snapshot written after this environment's snce was installed is another install's leftover: silence
    assert installed_since(snap) is None
    os.utime(snap, (0, 0))  # the install cell writes the snapshot first, then installs snce
    added = installed_since(snap)
    assert [a.split("==")[0].lower() for a in added] == ["tqdm"]
    assert installed_since(tmp_path / "absent.txt") is None


def test_every_notebook_opens_a_gpu_runtime_and_uses_the_shared_setup():
    import jupytext

    install = None
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        meta = json.loads(nb.read_text())["metadata"]
        assert meta.get("accelerator") == "GPU" and meta.get("colab", {}).get("gpuType") == "T4", nb.name
        code = [c.source for c in jupytext.read(nb.with_suffix(".py")).cells if c.cell_type == "code"]
        install = install or code[0]
        assert code[0] == install, f"{nb.name}: the install cell differs from notebook 01's"
        assert "-c /tmp/snce-runtime.txt" in code[0], nb.name  # the runtime's packages are pinned
        assert "P = wb.setup()" in code[1], f"{nb.name}: the cell after the install cell sets up with wb.setup()"
        src = "\n".join(code)
        assert src.count("P = wb.setup(") == 1 and "get_profile(" not in src, nb.name


def test_every_notebook_reads_as_a_chapter():
    """Opens with what you will learn, writes its equations in LaTeX, closes with questions whose
    answers are folded away."""
    import jupytext

    for py in sorted((ROOT / "notebooks").glob("*.py")):
        md = [c.source for c in jupytext.read(py).cells if c.cell_type == "markdown"]
        assert "**What you will learn**" in md[0], py.name
        assert any("$$" in m for m in md), f"{py.name} has no displayed equation"
        assert md[-1].startswith("## Questions") and "<details>" in md[-1], py.name


def _install_cell() -> str:
    import jupytext

    return next(c.source for c in jupytext.read(ROOT / "notebooks" / "01_train_sae.py").cells if c.cell_type == "code")


def test_the_install_cell_names_the_release_the_project_declares():
    import re

    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    cell = _install_cell()
    assert re.search(r'^SNCE_VERSION = "([^"]+)"$', cell, re.M).group(1) == version
    assert "@v{SNCE_VERSION}" in cell  # a tagged release, never a moving HEAD


def test_the_install_cell_says_when_another_snce_lib_is_importable(tmp_path):
    """Here the checkout's snce_lib is importable: a cell written for another release says so and
    installs nothing; one written for this release is silent."""
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    cell = _install_cell()
    env = {**os.environ, "SNCE_REPO": str(tmp_path / "no-such.whl")}
    other = cell.replace(f'SNCE_VERSION = "{version}"', 'SNCE_VERSION = "99.0.0"')
    out = subprocess.run([sys.executable, "-c", other], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0 and "written for snce 99.0.0" in out.stdout and version in out.stdout, out
    same = subprocess.run([sys.executable, "-c", cell], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert same.returncode == 0 and same.stdout == "", same


def test_pyproject_lists_every_package_and_maps_the_data_folder():
    import tomllib

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.relative_to(ROOT).parts[:-1]) for p in (ROOT / "snce_lib").rglob("__init__.py")}
    assert set(tool["packages"]) == found | {"snce_lib.data"}
    assert tool["package-dir"] == {"snce_lib.data": "data"} and (ROOT / "data" / "__init__.py").exists()
    assert data_path() == (ROOT / "data").resolve()  # the checkout reads the top-level folder
