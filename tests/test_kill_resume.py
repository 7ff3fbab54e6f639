"""A Colab session that dies mid-run: collection and generation, each in a real process killed with SIGKILL
partway through, then run again; what the two runs leave equals one uninterrupted run, bit for bit. The run
folder is either on this disk or on a separate filesystem (/dev/shm, a tmpfs), as Google Drive's folder is
a separate mount beside Colab's disk."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

CHILD = r"""
import sys, time
import torch

torch.set_num_threads(1)
mode, model_dir, out, slow = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if mode == "collect":
    from snce_lib.models.encoders import load_sd
    from snce_lib.sae.collect import collect

    enc = load_sd(model_dir, device="cpu")
    run = enc.run_to_block

    def slowed(toks, layer):  # slow enough that the parent's signal lands mid-run
        time.sleep(slow)
        return run(toks, layer)

    enc.run_to_block = slowed
    prompts = [f"prompt {i}: a red cat on the beach at night" for i in range(48)]
    collect(enc, prompts, out, layer=1, batch_size=4, shard_prompts=8, progress=False)
else:
    import pandas as pd

    from snce_lib.evaluation.generate import generate
    from snce_lib.evaluation.protocols import get_protocol
    from snce_lib.models.pipelines import load_pipeline
    from snce_lib.prompts import PromptSet

    class Slow:
        def __init__(self, pipe):
            self.pipe = pipe

        def __getattr__(self, name):
            return getattr(self.pipe, name)

        def __call__(self, *a, **kw):
            time.sleep(slow)
            return self.pipe(*a, **kw)

    rows = [{"prompt": f"prompt number {i}", "evaluation_seed": i + 1, "case_number": i} for i in range(10)]
    ps = PromptSet("ten", pd.DataFrame(rows))
    pipe = load_pipeline(model_dir, device="cpu")
    generate(Slow(pipe), ps, get_protocol("snce-paper", steps=2, resolution=32), out, batch_size=2, progress=False)
print("finished", flush=True)
"""


def child(mode, model_dir, out, slow):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(model_dir), str(out), str(slow)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(mode, model_dir, out):
    proc = child(mode, model_dir, out, 0)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "finished" in stdout, stderr[-2000:]


def kill_when(mode, model_dir, out, ready):
    """Start a slowed run, SIGKILL it once `ready(out)` holds, and check it died before finishing."""
    proc = child(mode, model_dir, out, 0.5)
    deadline = time.monotonic() + 240
    while proc.poll() is None and not ready(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()[1][-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def stamps(paths) -> dict:
    """Each file's (inode, modification time): a file rewritten by the second run changes both."""
    return {Path(p): (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in paths}


def shards_written(out: Path) -> int:
    try:
        return len(json.loads((out / "store.json").read_text())["shards"])
    except (OSError, ValueError, KeyError):
        return 0


def images_written(out: Path) -> int:
    return len(list(out.glob("[0-9]*.png")))


@pytest.fixture(params=["disk", "separate-filesystem"])
def run_root(request, tmp_path):
    if request.param == "disk":
        yield tmp_path / "runs"
        return
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm here to stand for a separately mounted folder")
    root = Path(tempfile.mkdtemp(prefix="snce-drive-", dir="/dev/shm"))
    assert os.stat(root).st_dev != os.stat(tmp_path).st_dev  # truly another filesystem
    yield root / "MyDrive" / "snce-runs"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def references(tiny_clip_dir, tmp_path_factory):
    """One uninterrupted run of each, in a process of its own like the interrupted ones."""
    base = tmp_path_factory.mktemp("reference")
    for mode in ("collect", "generate"):
        finish(mode, tiny_clip_dir, base / mode)
    return base


def test_killed_collection_resumes_to_the_uninterrupted_store(tiny_clip_dir, references, run_root):
    from snce_lib.sae.store import ActivationStore, StoreError

    out = run_root / "activations"
    kill_when("collect", tiny_clip_dir, out, lambda o: shards_written(o) >= 2)
    with pytest.raises(StoreError, match="incomplete"):
        ActivationStore(out)
    partial = ActivationStore(out, allow_incomplete=True)
    assert 2 <= len(partial.info.shards) < 6  # 48 prompts, 8 a shard
    before = stamps(out / s["file"] for s in partial.info.shards)
    finish("collect", tiny_clip_dir, out)
    assert stamps(before) == before  # resumed: the shards written before the kill were kept, not remade
    got, ref = ActivationStore(out), ActivationStore(references / "collect")
    assert got.info.complete and len(got.info.shards) == len(ref.info.shards) == 6
    assert np.array_equal(got.load(), ref.load())
    for key, values in ref.meta().items():
        assert np.array_equal(got.meta()[key], values), key
    assert (out / "tokens.json").read_text() == (references / "collect" / "tokens.json").read_text()
    assert not list(out.glob(".*tmp*"))  # no temporary file left behind by the kill


def test_killed_generation_resumes_to_the_uninterrupted_images(tiny_clip_dir, references, run_root):
    from snce_lib.evaluation.manifest import load_manifest_images

    out = run_root / "images"
    kill_when("generate", tiny_clip_dir, out, lambda o: images_written(o) >= 2)
    made = images_written(out)
    assert 2 <= made < 10
    before = stamps(out.glob("[0-9]*.png"))
    finish("generate", tiny_clip_dir, out)
    assert stamps(before) == before  # resumed: the images made before the kill were kept, not remade
    ref = references / "generate"
    rows, files = load_manifest_images(out)
    ref_rows, _ = load_manifest_images(ref)
    assert sorted(r["file"] for r in rows) == sorted(r["file"] for r in ref_rows) and len(rows) == 10
    assert len({r["file"] for r in rows}) == 10  # no image has two manifest rows
    for f in files:
        assert f.read_bytes() == (ref / f.name).read_bytes(), f.name
    key = {"file", "prompt", "seed", "guidance", "steps", "height", "width"}
    assert sorted(({k: r[k] for k in key} for r in rows), key=lambda r: r["file"]) == sorted(
        ({k: r[k] for k in key} for r in ref_rows), key=lambda r: r["file"]
    )
