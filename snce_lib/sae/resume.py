"""Training checkpoints: the SAE, Adam's state, the dead-latent counters and the history, written
atomically every few steps and read back to resume. Safetensors and JSON only."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from snce_lib.io import atomic_save_safetensors, atomic_write_json
from snce_lib.sae.config import TrainError
from snce_lib.sae.formats import CheckpointError, save


def save_training_state(path: Path, sae, opt, since_fired, fingerprint, step, history, seconds) -> None:
    # Write a whole new folder, then swap it in: a crash mid-write leaves the old one intact.
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save(sae, tmp)
    tensors = {"since_fired": since_fired}
    for i, p in enumerate(sae.parameters()):
        st = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in st:
                tensors[f"{i}.{key}"] = st[key]
        if "step" in st:
            tensors[f"{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float64).reshape(1)
    atomic_save_safetensors(tmp / "train_state.safetensors", tensors)
    atomic_write_json(
        tmp / "state.json", {"step": step, "seconds": seconds, "fingerprint": fingerprint, "history": history}
    )
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def load_training_state(path: Path, sae, opt, since_fired, fingerprint, device):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from snce_lib.io import read_json
    from snce_lib.sae.formats import read_checkpoint

    try:
        state = read_json(path / "state.json", "training state")
        cfg, tensors = read_checkpoint(path)
        extra = load_file(str(path / "train_state.safetensors"))
        step, history, seconds = int(state["step"]), list(state["history"]), float(state["seconds"])
        since = extra["since_fired"]
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise CheckpointError(
            f"cannot resume from {path}: it is damaged ({str(exc).splitlines()[0]}); delete it to start over"
        ) from None
    want = json.loads(json.dumps(fingerprint))
    if state.get("fingerprint") != want:
        diff = sorted(k for k in want if (state.get("fingerprint") or {}).get(k) != want[k])
        raise TrainError(f"{path} was made with other settings ({', '.join(diff)}); choose a new --out or delete it")
    try:
        sae.load_state_dict({k: v.to(device) for k, v in tensors.items()})
        since_fired.copy_(since.to(device))
    except RuntimeError as exc:
        raise CheckpointError(
            f"cannot resume from {path}: its tensors do not fit ({str(exc).splitlines()[0]}); delete it to start over"
        ) from None
    params = list(sae.parameters())
    for i, p in enumerate(params):
        if f"{i}.exp_avg" in extra:
            opt.state[p] = {
                "step": torch.tensor(float(extra[f"{i}.step"][0])),
                "exp_avg": extra[f"{i}.exp_avg"].to(device),
                "exp_avg_sq": extra[f"{i}.exp_avg_sq"].to(device),
            }
    return step, history, seconds
