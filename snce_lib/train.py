"""Training the TopK SAE: Adam, AuxK for dead latents, unit-norm decoder, metrics, checkpoint and resume.

The trainer weighs the losses the SAE returns and owns everything that lives only while
training (optimizer, dead-latent counters, data order). It checkpoints to
`OUT/checkpoint/` every `checkpoint_every` steps; running again with the same `OUT`
resumes from there. The data order is a pure function of (seed, step), so a resumed run
sees the same batches an uninterrupted run would.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .io import atomic_save_safetensors, atomic_write_json
from .sae import CheckpointError, SAEConfig, TopKSAE


class TrainError(ValueError):
    """Bad training input: non-finite data, a checkpoint from other settings."""


@dataclass
class TrainConfig:
    expansion: int = 4
    """Latents per input dimension (m = 4 d in the paper). Ignored when n_latents is set."""
    n_latents: int | None = None
    """Dictionary size; None means expansion x d_in."""
    k: int = 32
    """TopK sparsity (paper: 32)."""
    auxk_alpha: float = 1 / 32
    """Weight of the AuxK loss (paper: 1/32)."""
    k_aux: int | None = None
    """Dead latents used by AuxK; None means d_in // 2 (Gao et al.). Concept Steerers used 32."""
    lr: float = 4e-4
    """Adam learning rate, constant, no warm-up (paper)."""
    adam_eps: float = 6.25e-10
    """Adam epsilon (Concept Steerers' value; the paper is silent)."""
    batch_size: int = 4096
    """Token vectors per step (paper: 4096)."""
    tokens: int | None = None
    """Training budget in token vectors; None means one pass over the training rows."""
    dead_after_tokens: int = 10_000_000
    """A latent that has not fired for this many tokens is dead and gets AuxK gradient."""
    b_pre_init: str = "median"
    """How b_pre starts: "median" (geometric median of a sample) or "mean"."""
    eval_rows: int = 65_536
    """Held-out rows (at most a tenth of the data) for the final metrics."""
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    device: str | None = None
    precision: str = "auto"
    """"auto": bf16 autocast on a GPU that supports it, else fp16 autocast with loss scaling (the
    weights stay fp32 either way), fp32 on a CPU; or "fp32", "bf16", "fp16" to force one."""

    def __post_init__(self):
        if self.b_pre_init not in ("median", "mean"):
            raise ValueError(f"b_pre_init must be 'median' or 'mean', got {self.b_pre_init!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.batch_size <= 0 or self.k <= 0:
            raise ValueError("batch_size and k must be positive")


@dataclass
class TrainResult:
    sae: TopKSAE
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)


def geometric_median(x: torch.Tensor, iters: int = 30) -> torch.Tensor:
    """Weiszfeld's algorithm. x: [n, d] -> [d]."""
    m = x.mean(0)
    for _ in range(iters):
        w = 1.0 / (x - m).norm(dim=1).clamp_min(1e-6)
        m = (w[:, None] * x).sum(0) / w.sum()
    return m


def init_b_pre_(sae: TopKSAE, sample: torch.Tensor, how: str) -> None:
    with torch.no_grad():
        sae.b_pre.copy_(geometric_median(sample) if how == "median" else sample.mean(0))


def _split(n: int, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(cfg.seed).permutation(n)
    n_eval = min(cfg.eval_rows, n // 10)
    return perm[n_eval:], perm[:n_eval]


@lru_cache(maxsize=2)
def _epoch_perm(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(train_idx: np.ndarray, step: int, batch: int, seed: int) -> np.ndarray:
    """Rows of step `step`: a stream of seeded per-epoch permutations, cut into batches."""
    n, start, need, parts = len(train_idx), step * batch, batch, []
    while need > 0:
        epoch, off = divmod(start, n)
        take = _epoch_perm(n, seed, epoch)[off : off + need]
        parts.append(take)
        need -= len(take)
        start += len(take)
    return train_idx[np.concatenate(parts)]


def _as_tensor(data) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(data)) if not torch.is_tensor(data) else data
    if t.ndim != 2:
        raise TrainError(f"activations must be [rows, width], got shape {tuple(t.shape)}")
    return t


def check_finite(data: torch.Tensor, chunk: int = 1 << 16) -> None:
    for s in range(0, len(data), chunk):
        if not torch.isfinite(data[s : s + chunk].float()).all():
            raise TrainError(f"activations contain NaN or inf (rows from {s}); recollect them with fp16=False")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device` (None: plain fp32)."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def train_sae(
    data,
    cfg: TrainConfig = TrainConfig(),
    out_dir: str | os.PathLike | None = None,
    encoder_id: str = "",
    layer: str = "",
    layer_index: int = -1,
    progress: bool = True,
    stop_after_steps: int | None = None,
    on_log: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train on `data` ([rows, d_in], any float dtype, numpy or torch).

    With `out_dir`, checkpoints as it goes and resumes from `out_dir/checkpoint`;
    at the end writes the SAE (`sae.safetensors`, `cfg.json`), `metrics.json` and
    `history.json` there. `stop_after_steps` ends the run early without finishing
    (it is how tests and notebooks simulate an interruption).
    """
    data = _as_tensor(data)
    check_finite(data)
    n, d = data.shape
    if n < 20:
        raise TrainError(f"need at least 20 activation rows to train, got {n}")
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    m = cfg.n_latents or cfg.expansion * d
    k_aux = cfg.k_aux if cfg.k_aux is not None else d // 2
    train_idx, eval_idx = _split(n, cfg)
    budget = cfg.tokens if cfg.tokens is not None else len(train_idx)
    total_steps = max(1, math.ceil(budget / cfg.batch_size))

    torch.manual_seed(cfg.seed)
    sae = TopKSAE(SAEConfig(d, m, cfg.k, encoder_id, layer, layer_index)).to(device)
    sae.reset_parameters(torch.Generator().manual_seed(cfg.seed))
    sae.to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    since_fired = torch.zeros(m, dtype=torch.long, device=device)
    step, history, seconds = 0, [], 0.0

    ckpt = Path(out_dir) / "checkpoint" if out_dir is not None else None
    fingerprint = {"rows": n, "d_in": d, "n_latents": m, **{k: v for k, v in asdict(cfg).items() if k not in ("device", "log_every", "checkpoint_every")}}
    if ckpt is not None and (ckpt / "state.json").exists():
        step, history, seconds = _load_checkpoint(ckpt, sae, opt, since_fired, fingerprint, device)
    else:
        sample = data[torch.as_tensor(train_idx[: min(len(train_idx), 32768)])].float().to(device)
        init_b_pre_(sae, sample, cfg.b_pre_init)

    amp = autocast_dtype(cfg.precision, device)
    # fp16 needs loss scaling (its range is narrow); bf16 has fp32's range and needs none.
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    bar = tqdm(total=total_steps, initial=step, desc="train SAE", unit="step", disable=not progress)
    t0 = time.perf_counter()
    last = {}
    while step < total_steps:
        if stop_after_steps is not None and step >= stop_after_steps:
            break
        rows = batch_indices(train_idx, step, cfg.batch_size, cfg.seed)
        x = data[torch.as_tensor(rows)].to(device).float()
        dead = since_fired >= cfg.dead_after_tokens
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            out = sae(x, dead_mask=dead, k_aux=k_aux)
            loss = out.fvu.float() + cfg.auxk_alpha * out.auxk_loss.float()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        sae.remove_parallel_grad_()
        scaler.step(opt)
        scaler.update()
        sae.set_decoder_norm_()
        with torch.no_grad():
            fired = torch.zeros(m, dtype=torch.bool, device=device)
            fired[out.latent_indices[out.latent_acts > 0]] = True
            since_fired += len(x)
            since_fired[fired] = 0
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == total_steps:
            window = min(cfg.dead_after_tokens, step * cfg.batch_size)
            last = {
                "step": step,
                "tokens": step * cfg.batch_size,
                "fvu": float(out.fvu.detach()),
                "l0": float((out.latent_acts > 0).sum(-1).float().mean()),
                "dead_fraction": float((since_fired >= window).float().mean()),
                "auxk_loss": float(out.auxk_loss.detach()),
            }
            history.append(last)
            bar.set_postfix(fvu=f"{last['fvu']:.3f}", dead=f"{last['dead_fraction']:.2f}")
            if on_log:
                on_log(last)
        if ckpt is not None and (step % cfg.checkpoint_every == 0 or step == total_steps):
            _save_checkpoint(ckpt, sae, opt, since_fired, fingerprint, step, history, seconds + time.perf_counter() - t0)
    bar.close()
    seconds += time.perf_counter() - t0

    metrics = {}
    if step >= total_steps:
        metrics = evaluate_sae(sae, data[torch.as_tensor(eval_idx)] if len(eval_idx) else data[:4096])
        window = min(cfg.dead_after_tokens, step * cfg.batch_size)
        metrics.update(
            dead_fraction=float((since_fired >= window).float().mean()),
            dead_window_tokens=int(window),
            tokens_seen=int(step * cfg.batch_size),
            steps=step,
            seconds=round(seconds, 2),
            tokens_per_second=round(step * cfg.batch_size / max(seconds, 1e-9), 1),
            eval_rows=int(len(eval_idx)),
            train_config=asdict(cfg),
        )
        sae.cfg.metrics = {k: v for k, v in metrics.items() if k != "train_config"}
        if out_dir is not None:
            sae.save(out_dir)
            atomic_write_json(Path(out_dir) / "metrics.json", metrics)
            atomic_write_json(Path(out_dir) / "history.json", history)
    return TrainResult(sae, history, metrics)


@torch.no_grad()
def evaluate_sae(sae: TopKSAE, data, batch: int = 8192) -> dict:
    """FVU, L0, and the share of latents that never fire on `data` ([rows, d_in])."""
    data = _as_tensor(data)
    err = tot = l0 = 0.0
    fired = torch.zeros(sae.cfg.n_latents, dtype=torch.bool, device=sae.device)
    mean = data.float().mean(0).to(sae.device)
    for s in range(0, len(data), batch):
        x = data[s : s + batch].to(sae.device).float()
        vals, idx = sae.encode(x)
        err += float((x - sae.decode(vals, idx)).pow(2).sum())
        tot += float((x - mean).pow(2).sum())
        l0 += float((vals > 0).sum())
        fired[idx[vals > 0]] = True
    return {"fvu": err / max(tot, 1e-12), "l0": l0 / max(len(data), 1), "never_fired_fraction_eval": float((~fired).float().mean())}


def _save_checkpoint(path: Path, sae, opt, since_fired, fingerprint, step, history, seconds) -> None:
    # Write a whole new folder, then swap it in: a crash mid-write leaves the old one intact.
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sae.save(tmp)
    tensors = {"since_fired": since_fired}
    for i, p in enumerate(sae.parameters()):
        st = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in st:
                tensors[f"{i}.{key}"] = st[key]
        if "step" in st:
            tensors[f"{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float64).reshape(1)
    atomic_save_safetensors(tmp / "train_state.safetensors", tensors)
    atomic_write_json(tmp / "state.json", {"step": step, "seconds": seconds, "fingerprint": fingerprint, "history": history})
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(path: Path, sae, opt, since_fired, fingerprint, device):
    from safetensors.torch import load_file

    from .sae import read_checkpoint

    from safetensors import SafetensorError

    from .io import read_json

    try:
        state = read_json(path / "state.json", "training state")
        cfg, tensors = read_checkpoint(path)
        extra = load_file(str(path / "train_state.safetensors"))
        step, history, seconds = int(state["step"]), list(state["history"]), float(state["seconds"])
        since = extra["since_fired"]
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise CheckpointError(f"cannot resume from {path}: it is damaged ({str(exc).splitlines()[0]}); "
                              "delete it to start over") from None
    want = json.loads(json.dumps(fingerprint))
    if state.get("fingerprint") != want:
        diff = sorted(k for k in want if (state.get("fingerprint") or {}).get(k) != want[k])
        raise TrainError(f"{path} was made with other settings ({', '.join(diff)}); choose a new --out or delete it")
    try:
        sae.load_state_dict({k: v.to(device) for k, v in tensors.items()})
        since_fired.copy_(since.to(device))
    except RuntimeError as exc:
        raise CheckpointError(f"cannot resume from {path}: its tensors do not fit ({str(exc).splitlines()[0]}); "
                              "delete it to start over") from None
    params = list(sae.parameters())
    for i, p in enumerate(params):
        if f"{i}.exp_avg" in extra:
            opt.state[p] = {
                "step": torch.tensor(float(extra[f"{i}.step"][0])),
                "exp_avg": extra[f"{i}.exp_avg"].to(device),
                "exp_avg_sq": extra[f"{i}.exp_avg_sq"].to(device),
            }
    return step, history, seconds
