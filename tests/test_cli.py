"""The `snce` command end to end on tiny inputs, and its one-line errors."""

import json

import pytest

from snce_lib.cli import main
from tests.helpers import PROMPTS


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    from snce_lib.models.pipelines import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny")


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_collect_train_select_inspect_generate_evaluate(tiny_sd, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    words = PROMPTS
    prompts.write_text("\n".join(words * 6))
    code, out, err = run(
        capsys, *f"collect --encoder {tiny_sd} --layer 2 --prompts {prompts} --out {tmp_path / 'st'}".split()
    )
    assert code == 0, err
    assert json.loads(out)["rows"] > 0
    code, out, err = run(
        capsys,
        *f"train --activations {tmp_path / 'st'} --out {tmp_path / 'sae'} --latents 64 --k 4 --batch-size 128 --tokens 12800 --lr 0.003".split(),
    )
    assert code == 0, err
    m = json.loads((tmp_path / "sae" / "metrics.json").read_text())
    assert {"fvu", "l0", "dead_fraction", "tokens_seen", "seconds"} <= set(m)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "concept_prompt,deconcept_prompt\n"
        + "".join(f"a naked {w},a {w}\n" for w in ["woman", "man", "cat", "dog", "tree", "house"])
    )
    code, out, err = run(
        capsys,
        *f"select --sae {tmp_path / 'sae'} --concept {pairs} --top-k 2 --max-deconcept-share 0.5 --encoder {tiny_sd} --out {tmp_path / 'n.json'}".split(),
    )
    assert code == 0, err
    sel = json.loads((tmp_path / "n.json").read_text())
    assert (
        len(sel["neurons"]) == 2
        and sel["method"] == "modulated_frequency"
        and sel["options"]["max_deconcept_share"] == 0.5
    )
    # the same SAE in SAELens' layout: every subcommand takes it (one loader), and exports are whole folders
    code, out, err = run(capsys, *f"export --sae {tmp_path / 'sae'} --format saelens --out {tmp_path / 'sl'}".split())
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "sl").iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    code, out, err = run(capsys, *f"export --sae {tmp_path / 'sl'} --format sparsify --out {tmp_path / 'sp'}".split())
    assert code == 0 and json.loads(out)["format"] == "sparsify", err
    code, out, err = run(capsys, *f"export --sae {tmp_path / 'sl'} --format snce --out {tmp_path / 'sp'}".split())
    assert code == 2 and "is not empty" in err
    code, out, err = run(
        capsys,
        *f"inspect --sae {tmp_path / 'sl'} --neurons {tmp_path / 'n.json'} --prompts {prompts} --encoder {tiny_sd} --out {tmp_path / 'acts.json'}".split(),
    )
    assert code == 0, err
    acts = json.loads((tmp_path / "acts.json").read_text())
    assert len(acts["prompts"]) == len(words) * 6 and all("token" in r for r in acts["prompts"])
    ps = tmp_path / "set.csv"
    ps.write_text("prompt,evaluation_seed,case_number\na naked woman,1,0\na red car,2,1\n")
    code, out, err = run(
        capsys,
        *f"generate --model {tiny_sd} --prompts {ps} --sae {tmp_path / 'sae'} --neurons {tmp_path / 'n.json'} --lam 1.0 --steps 2 --resolution 32 --device cpu --out {tmp_path / 'img'}".split(),
    )
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "img" / "manifest.jsonl").read_text().splitlines()]
    assert [r["file"] for r in rows] == ["00000_1.png", "00001_2.png"] and rows[0]["eraser"]["lam"] == 1.0
    code, out, err = run(
        capsys, *f"evaluate --images {tmp_path / 'img'} --protocol rece --out {tmp_path / 'r.json'}".split()
    )
    assert code == 0, err
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["protocol"]["name"] == "rece" and res["nudenet"]["images"] == 2
    assert "not_measured" in res["clip_score"]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["collect", "--encoder", "{sd}", "--layer", "encoder.layers.40", "--prompts", "{txt}", "--out", "{tmp}/x"],
            "valid layers: encoder.layers.0",
        ),
        (["collect", "--encoder", "{sd}", "--prompts", "{badcsv}", "--out", "{tmp}/x"], "expected one of prompt"),
        (["collect", "--encoder", "{sd}", "--prompts", "{empty}", "--out", "{tmp}/x"], "holds no prompts"),
        (["train", "--activations", "{tmp}/nothing", "--out", "{tmp}/y"], "not an activation store"),
        (
            ["select", "--sae", "{tmp}", "--concept", "nudity", "--out", "{tmp}/n.json"],
            "holds no SAE: it has no cfg.json",
        ),
        (["generate", "--model", "tiny", "--prompts", "nope", "--out", "{tmp}/i"], "unknown prompt set"),
    ],
)
def test_errors_are_one_clear_line(tiny_sd, tmp_path, capsys, args, message):
    (tmp_path / "p.txt").write_text("a cat\n")
    (tmp_path / "bad.csv").write_text("words,seed\nhello,1\n")
    (tmp_path / "empty.txt").write_text("\n")
    fill = {
        "{sd}": str(tiny_sd),
        "{txt}": str(tmp_path / "p.txt"),
        "{badcsv}": str(tmp_path / "bad.csv"),
        "{empty}": str(tmp_path / "empty.txt"),
        "{tmp}": str(tmp_path),
    }
    argv = []
    for a in args:
        for k, v in fill.items():
            a = a.replace(k, v)
        argv.append(a)
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("snce: error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "x" / "store.json").exists()


@pytest.fixture(scope="module")
def cli_sae(tiny_sd, tmp_path_factory):
    """A store and an SAE made through the CLI, and a concept with a word tuple."""
    tmp = tmp_path_factory.mktemp("cli_sae")
    (tmp / "p.txt").write_text("\n".join(PROMPTS * 6))
    assert main(f"collect --encoder {tiny_sd} --layer 2 --prompts {tmp / 'p.txt'} --out {tmp / 'st'}".split()) == 0
    assert (
        main(
            f"train --activations {tmp / 'st'} --out {tmp / 'sae'} --latents 64 --k 4 --batch-size 128 --tokens 12800 --lr 0.003".split()
        )
        == 0
    )
    words = ["woman", "man", "cat", "dog", "tree", "house"]
    (tmp / "toy_pairs.csv").write_text(
        "concept_prompt,deconcept_prompt\n" + "".join(f"a naked {w},a {w}\n" for w in words)
    )
    (tmp / "toy_tuple.txt").write_text("naked, nude")
    return tmp


@pytest.mark.parametrize("method", ["modulated_frequency", "mean_difference", "max_contrast", "itd", "cover"])
def test_every_select_method_runs_through_the_cli(cli_sae, tiny_sd, capsys, method):
    """Each --method the CLI offers writes a selection (itd once failed on an include_padding it does not take)."""
    out_file = cli_sae / f"{method}.json"
    extra = {"modulated_frequency": "--fallback", "itd": "--top-features 8"}.get(method, "")
    code, out, err = run(
        capsys,
        *f"select --sae {cli_sae / 'sae'} --concept {cli_sae / 'toy_pairs.csv'} --method {method} --top-k 1 {extra} "
        f"--encoder {tiny_sd} --out {out_file}".split(),
    )
    assert code == 0, err
    sel = json.loads(out_file.read_text())
    assert sel["method"] == method and len(sel["neurons"]) == 1 and sel["asked_k"] == 1


def test_select_never_returns_fewer_than_asked(cli_sae, tiny_sd, capsys):
    """Asking for more neurons than the strict filter leaves is one clear error (it once wrote fewer and
    said nothing); with --fallback the tolerance rises until k pass, and the file says which one chose."""
    common = f"--sae {cli_sae / 'sae'} --concept {cli_sae / 'toy_pairs.csv'} --encoder {tiny_sd}"
    code, out, err = run(capsys, *f"select {common} --top-k 60 --out {cli_sae / 'many.json'}".split())
    assert code == 2 and "asked for 60 neuron(s)" in err and "pass the filter" in err, err
    assert not (cli_sae / "many.json").exists()
    code, out, err = run(capsys, *f"select {common} --top-k 8 --fallback --out {cli_sae / 'fb.json'}".split())
    assert code == 0, err
    sel = json.loads((cli_sae / "fb.json").read_text())
    assert len(sel["neurons"]) == 8 and sel["asked_k"] == 8
    tried = sel["stats"]["fallback"]
    assert tried[-1]["max_deconcept_share"] == sel["options"]["max_deconcept_share"] and tried[-1]["passed"] >= 8
    assert all(t["passed"] < 8 for t in tried[:-1])
