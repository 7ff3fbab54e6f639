"""Generation split over processes (`accelerate launch` / torchrun): the shards' union is the
one-process run image for image, a killed shard resumes, and evaluation reads the merged run."""

import json
import os
import subprocess
import sys

import pytest

from snce_lib.evaluation.generate import generate
from snce_lib.evaluation.manifest import load_manifest_images
from snce_lib.evaluation.protocols import get_protocol
from snce_lib.prompts import PromptSet

PROTO = get_protocol("snce-paper", steps=2, resolution=32)
CSV = "prompt,evaluation_seed,case_number\n" + "".join(f"prompt number {i},{i + 1},{i}\n" for i in range(7))


def cli(args, env_extra, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **env_extra}
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_two_processes_under_torchrun_equal_one_process(tmp_path):
    (tmp_path / "set.csv").write_text(CSV)
    gen = ["-m", "snce_lib", "generate", "--model", "tiny", "--prompts", "set.csv", "--steps", "2",
           "--resolution", "32", "--batch-size", "2"]  # fmt: skip
    env = {"SNCE_HOME": str(tmp_path / "home")}
    one = cli([*gen, "--out", "one"], env, tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    # what `accelerate launch --multi_gpu --num_processes 2` runs: torch's elastic launcher
    two = cli(
        ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *gen, "--out", "two"], env, tmp_path
    )
    assert two.returncode == 0, two.stderr[-2000:]
    shards = sorted(json.loads(line)["shard"] for line in two.stdout.splitlines() if line.startswith("{"))
    assert shards == [[0, 2], [1, 2]]
    made = sorted(p.name for p in (tmp_path / "one").glob("*.png"))
    assert len(made) == 7 and made == sorted(p.name for p in (tmp_path / "two").glob("*.png"))
    for name in made:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert len(list((tmp_path / "two").glob("manifest.part*.jsonl"))) == 2
    rows, files = load_manifest_images(tmp_path / "two")
    assert sorted(r["file"] for r in rows) == made and all(f.exists() for f in files)
    ev = cli(["-m", "snce_lib", "evaluate", "--images", "two", "--out", "r.json"], env, tmp_path)
    assert ev.returncode == 0, ev.stderr[-2000:]
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["nudenet"]["images"] == 7 and res["complete"] is True


class Crashing:
    """A pipeline that dies after `calls` batches, as a killed process would."""

    def __init__(self, pipe, calls):
        self.pipe, self.calls = pipe, calls

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __call__(self, *a, **kw):
        if self.calls == 0:
            raise KeyboardInterrupt
        self.calls -= 1
        return self.pipe(*a, **kw)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from snce_lib.models.pipelines import build_tiny_sd, load_pipeline

    return load_pipeline(str(build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny")), device="cpu")


def test_a_killed_shard_resumes_and_the_union_is_complete(tiny, tmp_path):
    import io

    import pandas as pd

    ps = PromptSet("seven", pd.read_csv(io.StringIO(CSV)))
    ref = generate(tiny, ps, PROTO, tmp_path / "ref", batch_size=2, progress=False)
    generate(tiny, ps, PROTO, tmp_path / "run", batch_size=2, progress=False, shard=(0, 2))
    with pytest.raises(KeyboardInterrupt):
        generate(Crashing(tiny, 1), ps, PROTO, tmp_path / "run", batch_size=2, progress=False, shard=(1, 2))
    assert len(list((tmp_path / "run").glob("*.png"))) == 4 + 2  # shard 0's two batches, one of shard 1's
    again = generate(tiny, ps, PROTO, tmp_path / "run", batch_size=2, progress=False, shard=(1, 2))
    assert len(again) == 3  # batches 1 and 3 of the one-process run: 2 + 1 images
    rows, _ = load_manifest_images(tmp_path / "run")
    assert sorted(r["file"] for r in rows) == sorted(r["file"] for r in ref)
    for r in ref:
        assert (tmp_path / "run" / r["file"]).read_bytes() == (tmp_path / "ref" / r["file"]).read_bytes()
    # a rerun with another process count makes nothing new: every image is already in some part
    assert generate(Crashing(tiny, 0), ps, PROTO, tmp_path / "run", batch_size=2, progress=False, shard=(0, 3))
    with pytest.raises(ValueError, match="index < count"):
        generate(tiny, ps, PROTO, tmp_path / "run", shard=(2, 2))
