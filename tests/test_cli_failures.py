"""Every CLI failure is one line, `snce: error: ...`, exit status 2, never a traceback; generation
is safe to share (a lock) and to rerun (settings recorded and compared)."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from snce_lib.cli import main
from tests.helpers import PROMPTS, TRAIN_ARGS


def run(capsys, *args):
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    """Exit 2, and the error is one line, the last thing written (progress bars may come before it)."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("snce: error:")]
    return code == 2 and len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny store, SAE, neurons file and generated folder, made once through the CLI itself."""
    from snce_lib.models.pipelines import build_tiny_sd

    d = tmp_path_factory.mktemp("cli")
    sd = build_tiny_sd(d / "sd")
    (d / "p.txt").write_text("\n".join(PROMPTS * 6))
    assert (
        main(["collect", "--encoder", str(sd), "--layer", "2", "--prompts", str(d / "p.txt"), "--out", str(d / "st")])
        == 0
    )
    assert main(f"train --activations {d / 'st'} --out {d / 'sae'} ".split() + TRAIN_ARGS) == 0
    (d / "pairs.csv").write_text(
        "concept_prompt,deconcept_prompt\n"
        + "".join(f"a naked {w},a {w}\n" for w in ["woman", "man", "cat", "dog", "tree", "house"])
    )
    assert (
        main(
            f"select --sae {d / 'sae'} --concept {d / 'pairs.csv'} --max-deconcept-share 1 --encoder {sd} --out {d / 'n.json'}".split()
        )
        == 0
    )
    (d / "set.csv").write_text(
        "prompt,evaluation_seed,case_number\n" + "".join(f"{p},{i},{i}\n" for i, p in enumerate(PROMPTS[:4]))
    )
    gen = [
        "generate",
        "--model",
        str(sd),
        "--prompts",
        str(d / "set.csv"),
        "--sae",
        str(d / "sae"),
        "--neurons",
        str(d / "n.json"),
        "--steps",
        "2",
        "--resolution",
        "32",
        "--device",
        "cpu",
    ]
    assert main(gen + ["--out", str(d / "img")]) == 0
    return {"dir": d, "sd": sd, "gen": gen}


def copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# ---- 1. concurrent runs, 2. reruns with other settings ----------------------------------
def test_two_concurrent_generate_runs_leave_one_row_per_image(made, tmp_path):
    args = [sys.executable, "-m", "snce_lib", *made["gen"], "--out", str(tmp_path / "img")]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-500:] for r in results]
    rows = [json.loads(x) for x in (tmp_path / "img" / "manifest.jsonl").read_text().splitlines()]
    files = [r["file"] for r in rows]
    assert len(files) == len(set(files)) == 4
    assert sorted(f.name for f in (tmp_path / "img").glob("*.png")) == sorted(files)


def test_a_rerun_with_other_settings_is_refused(made, capsys):
    code, _, err = run(capsys, *made["gen"], "--lam", "0.5", "--out", made["dir"] / "img")
    assert one_line_error(code, err) and "other settings" in err and "lam" in err
    code, _, err = run(capsys, *made["gen"], "--out", made["dir"] / "img")  # the same settings resume
    assert code == 0, err


# ---- 3. lambda ---------------------------------------------------------------------------
@pytest.mark.parametrize("lam", ["nan", "inf", "-inf", "-5", "x"])
def test_lambda_that_cannot_be_valid_is_refused_before_any_work(made, tmp_path, capsys, lam):
    code, _, err = run(capsys, *made["gen"], f"--lam={lam}", "--out", tmp_path / "img")
    assert one_line_error(code, err) and "lam" in err
    assert not (tmp_path / "img").exists()


def test_negative_lambda_only_when_asked(made, tmp_path, capsys):
    code, _, err = run(capsys, *made["gen"], "--lam=-1", "--allow-negative-lam", "--out", tmp_path / "img")
    assert code == 0, err
    assert json.loads((tmp_path / "img" / "run.json").read_text())["eraser"]["lam"] == -1.0


def test_nan_never_reaches_a_result_file(tmp_path):
    from snce_lib.io import atomic_write_json

    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "r.json", {"asr": float("nan")})
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


# ---- 4. output paths ---------------------------------------------------------------------
def test_out_that_is_a_file_or_folder_is_refused_before_work(made, tmp_path, capsys):
    d = made["dir"]
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "train", "--activations", d / "st", "--out", tmp_path / "afile")
    assert one_line_error(code, err) and "is a file" in err
    for cmd in (
        ["select", "--sae", d / "sae", "--concept", d / "pairs.csv", "--encoder", made["sd"]],
        ["inspect", "--sae", d / "sae", "--neurons", d / "n.json", "--prompts", d / "p.txt", "--encoder", made["sd"]],
        ["evaluate", "--images", d / "img"],
    ):
        code, _, err = run(capsys, *cmd, "--out", tmp_path)
        assert one_line_error(code, err) and "is a folder" in err, (cmd[0], err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no temporary files
    code, _, err = run(capsys, "evaluate", "--images", d / "img", "--out", tmp_path / "no" / "such" / "r.json")
    assert one_line_error(code, err) and "does not exist" in err


# ---- 5. hand-edited and corrupt files ---------------------------------------------------
def test_corrupt_store_files(made, tmp_path, capsys):
    st = copy_tree(made["dir"] / "st", tmp_path / "st")
    (st / "store.json").write_text("[1]")
    code, _, err = run(capsys, "train", "--activations", st, "--out", tmp_path / "sae")
    assert one_line_error(code, err) and "store.json" in err
    st2 = copy_tree(made["dir"] / "st", tmp_path / "st2")
    shard = next(st2.glob("*.acts.npy"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    code, _, err = run(capsys, "train", "--activations", st2, "--out", tmp_path / "sae2")
    assert one_line_error(code, err) and shard.name in err and "truncated" in err


def test_corrupt_training_checkpoints(made, tmp_path, capsys):
    args = ["train", "--activations", made["dir"] / "st", *TRAIN_ARGS]
    for name, damage in (
        ("state.json", lambda p: p.write_text("[]")),
        ("train_state.safetensors", lambda p: p.write_bytes(p.read_bytes()[:100])),
    ):
        out = tmp_path / name
        assert main([str(a) for a in args] + ["--out", str(out)]) == 0
        ck = out / "checkpoint"
        (out / "metrics.json").unlink()  # as if interrupted: the next run resumes from the checkpoint
        damage(ck / name)
        code, _, err = run(capsys, *args, "--out", out)
        assert one_line_error(code, err) and "damaged" in err, err


@pytest.mark.parametrize("cfg", [{"d_in": "abc"}, {"n_latents": -3}, {"k": None}])
def test_hand_edited_sae_config(made, tmp_path, capsys, cfg):
    sae = copy_tree(made["dir"] / "sae", tmp_path / "sae")
    raw = json.loads((sae / "cfg.json").read_text())
    (sae / "cfg.json").write_text(json.dumps({**raw, **cfg}))
    code, _, err = run(
        capsys, *f"select --sae {sae} --concept {made['dir'] / 'pairs.csv'} --out {tmp_path / 'n.json'}".split()
    )
    assert one_line_error(code, err) and "cfg.json" in err


@pytest.mark.parametrize(
    "body",
    [
        "[1, 2, 3]",
        '{"kind": "snce-selection", "neurons": ["a"]}',
        '{"kind": "snce-selection", "neurons": [1.5]}',
        '{"kind": "snce-selection", "neurons": []}',
        b"\xff\xfe\x00garbage",
    ],
)
def test_bad_neurons_files(made, tmp_path, capsys, body):
    f = tmp_path / "n.json"
    f.write_bytes(body if isinstance(body, bytes) else body.encode())
    code, _, err = run(capsys, *made["gen"], "--neurons", f, "--out", tmp_path / "img")
    assert one_line_error(code, err) and "n.json" in err
    assert not (tmp_path / "img").exists()


def test_damaged_manifest_and_images(made, tmp_path, capsys):
    img = copy_tree(made["dir"] / "img", tmp_path / "img")
    lines = (img / "manifest.jsonl").read_text().splitlines()
    (img / "manifest.jsonl").write_text("\n".join(["[1, 2]"] + lines[1:]) + "\n")
    code, _, err = run(capsys, "evaluate", "--images", img, "--out", tmp_path / "r.json")
    assert one_line_error(code, err) and "line 1 is not a manifest row" in err
    img2 = copy_tree(made["dir"] / "img", tmp_path / "img2")
    next(img2.glob("*.png")).write_bytes(b"not a png")
    code, _, err = run(capsys, "evaluate", "--images", img2, "--out", tmp_path / "r2.json")
    assert one_line_error(code, err) and "cannot be read" in err
    img3 = copy_tree(made["dir"] / "img", tmp_path / "img3")
    (img3 / "manifest.jsonl").write_text('{"file": "000')  # torn first line
    code, _, err = run(capsys, "evaluate", "--images", img3, "--out", tmp_path / "r3.json")
    assert one_line_error(code, err) and "no complete manifest row" in err


# ---- 6.-9. arguments, messages, smaller things --------------------------------------------
@pytest.mark.parametrize("k", ["0", "-1", "1.5"])
def test_top_k_must_be_a_whole_number_at_least_one(made, tmp_path, capsys, k):
    code, _, err = run(
        capsys,
        *f"select --sae {made['dir'] / 'sae'} --concept nudity {f'--top-k={k}'} --out {tmp_path / 'n.json'}".split(),
    )
    assert one_line_error(code, err) and "--top-k" in err
    assert not (tmp_path / "n.json").exists()


def test_missing_reference_folder(made, tmp_path, capsys):
    code, _, err = run(
        capsys,
        *f"evaluate --images {made['dir'] / 'img'} --reference {tmp_path / 'nope'} --out {tmp_path / 'r.json'}".split(),
    )
    assert one_line_error(code, err) and "--reference" in err


def test_half_generated_folder_says_it_is_incomplete(made, tmp_path, capsys):
    img = copy_tree(made["dir"] / "img", tmp_path / "img")
    rows = (img / "manifest.jsonl").read_text().splitlines()
    (img / "manifest.jsonl").write_text("\n".join(rows[:2]) + "\n")
    code, out, err = run(capsys, "evaluate", "--images", img, "--out", tmp_path / "r.json")
    assert code == 0 and "2 of the 4 images" in err
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["planned_images"] == 4 and res["complete"] is False


def test_long_prompt_is_truncated_with_a_warning(made, tmp_path, capsys):
    (tmp_path / "long.txt").write_text("a red car " * 400 + "\nthe dog\n")
    with pytest.warns(UserWarning, match=r"1 prompt\(s\) are longer than the encoder's 77 tokens"):
        code, _, err = run(
            capsys,
            *f"inspect --sae {made['dir'] / 'sae'} --neurons {made['dir'] / 'n.json'} --prompts {tmp_path / 'long.txt'} --encoder {made['sd']} --out {tmp_path / 'a.json'}".split(),
        )
    assert code == 0, err


def test_non_utf8_prompt_file_and_missing_local_model(made, tmp_path, capsys):
    (tmp_path / "p.txt").write_bytes(b"\xff\xfe\xfa a cat\n")
    code, _, err = run(
        capsys,
        *f"collect --encoder {made['sd']} --layer 2 --prompts {tmp_path / 'p.txt'} --out {tmp_path / 'st'}".split(),
    )
    assert one_line_error(code, err) and "UTF-8" in err and "p.txt" in err
    code, _, err = run(
        capsys,
        *f"collect --encoder {tmp_path / 'no-model'} --prompts {made['dir'] / 'p.txt'} --out {tmp_path / 'st'}".split(),
    )
    assert one_line_error(code, err) and "does not exist" in err


def test_encoder_with_too_few_blocks_for_the_default_layer(made, tmp_path, capsys):
    code, _, err = run(
        capsys, *f"collect --encoder {made['sd']} --prompts {made['dir'] / 'p.txt'} --out {tmp_path / 'st'}".split()
    )
    assert one_line_error(code, err) and "--layer" in err


def test_failed_generate_leaves_no_empty_folder(made, tmp_path, capsys):
    other = tmp_path / "pairs_sae"  # an SAE of another width: the eraser cannot attach
    raw = json.loads((made["dir"] / "sae" / "cfg.json").read_text())
    copy_tree(made["dir"] / "sae", other)
    (other / "cfg.json").write_text(json.dumps({**raw, "layer_index": 40}))
    code, _, err = run(capsys, *made["gen"], "--sae", other, "--out", tmp_path / "img")
    assert code == 2 and not (tmp_path / "img").exists()


def test_safe_display_caption_and_env_switch(monkeypatch):
    from snce_lib.evaluation.display import show_unsafe_default

    for v, want in (("1", True), ("true", True), ("YES", True), ("0", False), ("", False)):
        monkeypatch.setenv("SNCE_SHOW_UNSAFE", v)
        assert show_unsafe_default() is want


# ---- the fuzz test -------------------------------------------------------------------------
def _mutations(rng: random.Random, data: bytes) -> list[bytes]:
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    cut = data[: rng.randrange(0, max(len(data), 1))]
    flipped = bytearray(data)
    for _ in range(8):
        if flipped:
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
    types = [b"[]", b"{}", b"null", b"42", b'"text"', b'{"kind": 1}', b"[[1]]"]
    return [junk, cut, bytes(flipped), rng.choice(types), b""]


FUZZ_TARGETS = {
    # subcommand: (file to damage, relative to its folder, the command using it)
    "train/store": ("st", "store.json", lambda d, t: ["train", "--activations", d, "--out", t / "o"]),
    "train/tokens": ("st", "tokens.json", lambda d, t: ["train", "--activations", d, "--out", t / "o"]),
    "select/cfg": (
        "sae",
        "cfg.json",
        lambda d, t: ["select", "--sae", d, "--concept", "nudity", "--out", t / "o.json"],
    ),
    "select/weights": (
        "sae",
        "sae.safetensors",
        lambda d, t: ["select", "--sae", d, "--concept", "nudity", "--out", t / "o.json"],
    ),
    "inspect/prompts": (
        "prompts",
        "p.csv",
        lambda d, t: [
            "inspect",
            "--sae",
            "{sae}",
            "--neurons",
            "{neurons}",
            "--prompts",
            d / "p.csv",
            "--encoder",
            "{sd}",
            "--out",
            t / "o.json",
        ],
    ),
    "generate/neurons": ("sel", "n.json", lambda d, t: ["{gen}", "--neurons", d / "n.json", "--out", t / "o"]),
    "generate/prompts": ("prompts", "p.csv", lambda d, t: ["{gen}", "--prompts", d / "p.csv", "--out", t / "o"]),
    "evaluate/manifest": ("img", "manifest.jsonl", lambda d, t: ["evaluate", "--images", d, "--out", t / "o.json"]),
    "evaluate/run": ("img", "run.json", lambda d, t: ["evaluate", "--images", d, "--out", t / "o.json"]),
}


@pytest.mark.parametrize("target", sorted(FUZZ_TARGETS))
def test_fuzz_every_subcommand_fails_in_one_line(made, tmp_path, capsys, target):
    """Random bytes, truncations, flipped bytes and wrong JSON types in each input file: the
    command either succeeds (the damage was harmless) or fails with one line and exit 2."""
    folder, name, command = FUZZ_TARGETS[target]
    d = made["dir"]
    sources = {"st": d / "st", "sae": d / "sae", "img": d / "img"}
    rng = random.Random(f"{target}")
    if folder in sources:
        original = (sources[folder] / name).read_bytes()
    elif folder == "sel":
        original = (d / "n.json").read_bytes()
    else:
        original = b"prompt,case_number,evaluation_seed\na red car,0,1\nthe dog,1,2\n"
    for i, blob in enumerate(_mutations(rng, original)):
        work = tmp_path / f"case{i}"
        target_dir = copy_tree(sources[folder], work / folder) if folder in sources else work / folder
        target_dir.mkdir(parents=True, exist_ok=True)
        (target_dir / name).write_bytes(blob)
        args = []
        for a in command(target_dir, work):
            if a == "{gen}":
                args += made["gen"]
            else:
                args.append(str(a).format(sae=d / "sae", neurons=d / "n.json", sd=made["sd"]))
        code, _, err = run(capsys, *args)
        assert code == 0 or one_line_error(code, err), f"{target} case {i}: exit {code}\n{err[-1500:]}"
