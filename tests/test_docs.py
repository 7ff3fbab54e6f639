"""The README and docs/: every relative link resolves inside the repository, every other link is a
public address, the README's first screen holds what a newcomer needs, its command list names every
subcommand, and its Python snippet runs (on the tiny pipeline, offline)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_resolves_inside_the_repository_or_is_public(page):
    links = LINK.findall(page.read_text())
    assert page.name != "README.md" or links, "the README links nothing"
    for link in links:
        if link.startswith("https://"):
            continue
        assert not re.match(r"^[a-z]+:", link), f"{page.name}: {link} is neither relative nor a public https address"
        target = (page.parent / link.split("#")[0]).resolve()
        assert target.is_relative_to(ROOT), f"{page.name}: {link} points outside the repository"
        assert target.exists(), f"{page.name}: {link} does not exist"


def test_the_readme_is_short_and_its_first_screen_has_what_a_newcomer_needs():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 11_000, f"README is {len(text.encode()):,} bytes; move detail to docs/"
    first = text[: text.index("## What we found")]
    assert first.count("colab-badge.svg") == 5  # every notebook's badge
    assert "make workbook" in first and "make test" in first
    assert re.search(r"^pip install .*snce", first, re.M)
    assert "```python" in first
    assert "docs/methods_plot.png" in text[: text.index("## The command line")]  # the findings' figure


def test_readme_and_cli_docstring_name_every_subcommand():
    import snce_lib.cli as cli

    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    names = set(sub.choices)
    readme = (ROOT / "README.md").read_text()
    assert names == set(re.findall(r"^snce (\w+)", readme, re.M))
    missing = [n for n in names if n not in cli.__doc__]
    assert not missing, f"cli/__init__.py's docstring leaves out {missing}"


def test_license_and_citation_match_the_project():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", cff, re.M).group(1) == project["version"]
    assert "arXiv:2509.21008" in cff and "cff-version: 1.2.0" in cff


def test_the_readme_python_snippet_runs(tmp_path, monkeypatch):
    """The snippet as printed, with the tiny pipeline for SD v1.4, an SAE trained on its block 1,
    a pair file the random encoder can separate, and two steps."""
    import numpy as np

    from snce_lib.models.encoders import load_encoder
    from snce_lib.models.pipelines import build_tiny_sd
    from snce_lib.sae.collect import collect
    from snce_lib.sae.train import TrainConfig, train_sae
    from tests.helpers import PROMPTS

    code = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    sd = build_tiny_sd(tmp_path / "sd")
    enc = load_encoder(str(sd))
    store = collect(enc, PROMPTS * 4, tmp_path / "store", "encoder.layers.1", progress=False)
    train_sae(np.asarray(store.load(), np.float32), TrainConfig(expansion=4, k=4, batch_size=128, tokens=6400),
              out_dir=tmp_path / "sae", encoder_id=str(sd), layer=store.info.layer,
              layer_index=store.info.layer_index, progress=False)  # fmt: skip
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "concept_prompt,deconcept_prompt\n" + "".join(f"a naked {w},a {w}\n" for w in ["woman", "man", "cat"])
    )
    for old, new in [('"sd14"', repr(str(sd))), ('"snce-runs/colab/sae"', repr(str(tmp_path / "sae"))),
                     ('load_concept("nudity")', f"load_concept({str(pairs)!r})"),
                     ("top_k=1)", "top_k=1, max_deconcept_share=1.0)"), ("num_inference_steps=50", "num_inference_steps=2")]:  # fmt: skip
        assert old in code, old
        code = code.replace(old, new)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["image"].size[0] > 0 and len(scope["selection"].neurons) == 1
