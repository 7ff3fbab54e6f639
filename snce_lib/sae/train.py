"""Training the TopK SAE: Adam, AuxK for dead latents, unit-norm decoder, metrics, checkpoint and resume.

The trainer weighs the losses the SAE returns and owns everything that lives only while
training (optimizer, dead-latent counters, data order). It checkpoints to
`OUT/checkpoint/` every `checkpoint_every` steps; running again with the same `OUT`
resumes from there. The data order is a pure function of (seed, step), so a resumed run
sees the same batches an uninterrupted run would.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from snce_lib.io import atomic_write_json
from snce_lib.models.encoders import pick_device
from snce_lib.rng import torch_generator
from snce_lib.sae import formats
from snce_lib.sae.batches import as_rows, batch_indices, buffered_batch_indices, check_finite, held_out_split
from snce_lib.sae.config import TrainConfig, TrainError
from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.resume import load_training_state, save_training_state


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


@torch.no_grad()
def init_encoder_scale_(sae: TopKSAE, sample: torch.Tensor) -> float:
    """Scale the (tied) encoder so that the first reconstruction is as good as a scale can make it:
    TopK picks the same latents at any positive scale s, and s* = <x_c, r> / <r, r>, with r the
    decoded code at s = 1 and x_c = x - b_pre, minimises ||x_c - s r||^2 on the sample. With unit
    encoder rows the first step adds k full projections and overshoots. Returns s*."""
    xc = sample - sae.b_pre
    vals, idx = sae.encode(sample)
    r = sae.decode(vals, idx) - sae.b_pre
    s = float((xc * r).sum() / r.pow(2).sum().clamp_min(1e-12))
    if 0 < s < float("inf"):
        sae.W_enc.mul_(s)
        sae.b_enc.mul_(s)
    return s


def init_from_sample_(sae: TopKSAE, sample: torch.Tensor, cfg: TrainConfig) -> None:
    """Everything a run sets from the data before its first step: b_pre, then the encoder's scale."""
    init_b_pre_(sae, sample, cfg.b_pre_init)
    if cfg.encoder_init == "fit":
        init_encoder_scale_(sae, sample)


def make_optimizer(sae: TopKSAE, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam, as the paper trains; its fused kernel (one pass over all four tensors) where this torch
    has it for the device (half the optimiser's time here), else the standard one. Same arithmetic."""
    try:
        return torch.optim.Adam(sae.parameters(), lr=cfg.lr, eps=cfg.adam_eps, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(sae.parameters(), lr=cfg.lr, eps=cfg.adam_eps)


def cpu_has_fast_bf16() -> bool:
    """A CPU with AMX tiles multiplies bf16 matrices in hardware: measured here, the encoder's
    [4,096, 384] x [384, 1,536] product took 2.4 ms in bf16 against 17 ms in fp32, and training to
    the same held-out FVU (offline store, 1.5M tokens, two seeds: 0.04333 / 0.04358 bf16, 0.04340 /
    0.04354 fp32). Without AMX, fp32 stays."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


def cuda_has_fast_bf16(device: torch.device) -> bool:
    """bf16 tensor cores arrived with compute capability 8.0 (A100, L4, H100). Colab's T4 is 7.5:
    `torch.cuda.is_bf16_supported()` still says True there (its default counts emulation, i.e. that
    a bf16 tensor can be made), and bf16 matmuls then run emulated, far slower than fp16's."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device` (None: plain fp32)."""
    if precision == "auto":
        if device.type == "cpu":
            return torch.bfloat16 if cpu_has_fast_bf16() else None
        if device.type != "cuda":
            return None
        return torch.bfloat16 if cuda_has_fast_bf16(device) else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def make_scaler(amp: torch.dtype | None, device: torch.device) -> torch.amp.GradScaler:
    """fp16 needs loss scaling (its range is narrow); bf16 has fp32's range and needs none."""
    return torch.amp.GradScaler(device.type, enabled=amp == torch.float16)


def train_sae(
    data,
    cfg: TrainConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    encoder_id: str = "",
    layer: str = "",
    layer_index: int = -1,
    encoder_index: int = 0,
    progress: bool = True,
    stop_after_steps: int | None = None,
    on_log: Callable[[dict], None] | None = None,
    data_info: dict | None = None,
    watch: Callable[[TopKSAE], dict] | None = None,
    groups=None,
) -> TrainResult:
    """Train on `data` ([rows, d_in], any float dtype, numpy or torch).

    With `out_dir`, checkpoints as it goes and resumes from `out_dir/checkpoint`;
    at the end writes the SAE (`sae.safetensors`, `cfg.json`), `metrics.json` and
    `history.json` there. `stop_after_steps` ends the run early without finishing
    (it is how tests and notebooks simulate an interruption). `data_info` (what the rows are, e.g.
    `ActivationStore.describe()`) is kept in metrics.json for the model card. `watch(sae)`, if given,
    adds its measurements to every logged history row (e.g. recovery of planted features).
    `groups` [rows] (a store's prompt id per row, `ActivationStore.meta()["prompt_id"]`) holds out
    whole prompts for the final metrics, so the held-out FVU reads prompts training never saw;
    without it rows are held out one by one.
    """
    cfg = cfg or TrainConfig()
    data = as_rows(data)
    check_finite(data)
    n, d = data.shape
    if n < 20:
        raise TrainError(f"need at least 20 activation rows to train, got {n}")
    device = pick_device(cfg.device)
    m = cfg.n_latents or cfg.expansion * d
    k_aux = cfg.k_aux if cfg.k_aux is not None else d // 2
    train_idx, eval_idx = held_out_split(n, cfg.seed, cfg.eval_rows, groups)
    ordered_idx = np.sort(train_idx) if cfg.shuffle_buffer else None
    budget = cfg.tokens if cfg.tokens is not None else len(train_idx)
    total_steps = max(1, math.ceil(budget / cfg.batch_size))

    torch.manual_seed(cfg.seed)
    sae = TopKSAE(SAEConfig(d, m, cfg.k, encoder_id, layer, layer_index, encoder_index)).to(device)
    sae.reset_parameters(torch_generator(cfg.seed, "sae-init"))
    sae.to(device)
    opt = make_optimizer(sae, cfg)
    since_fired = torch.zeros(m, dtype=torch.long, device=device)
    step, history, seconds = 0, [], 0.0

    ckpt = Path(out_dir) / "checkpoint" if out_dir is not None else None
    fingerprint = {
        "rows": n,
        "d_in": d,
        "n_latents": m,
        **{k: v for k, v in asdict(cfg).items() if k not in ("device", "log_every", "checkpoint_every")},
    }
    if ckpt is not None and (ckpt / "state.json").exists():
        step, history, seconds = load_training_state(ckpt, sae, opt, since_fired, fingerprint, device)
    else:
        sample = data[torch.as_tensor(train_idx[: min(len(train_idx), 32768)])].float().to(device)
        init_from_sample_(sae, sample, cfg)

    amp = autocast_dtype(cfg.precision, device)
    sparse = cfg.path == "sparse" or (cfg.path == "auto" and device.type == "cpu")
    scaler = make_scaler(amp, device)
    bar = tqdm(total=total_steps, initial=step, desc="train SAE", unit="step", disable=not progress)
    t0 = time.perf_counter()
    last = {}
    while step < total_steps:
        if stop_after_steps is not None and step >= stop_after_steps:
            break
        if ordered_idx is not None:
            rows = buffered_batch_indices(ordered_idx, step, cfg.batch_size, cfg.seed, cfg.shuffle_buffer)
        else:
            rows = batch_indices(train_idx, step, cfg.batch_size, cfg.seed)
        x = data[torch.as_tensor(rows)].to(device, non_blocking=True).float()
        out = training_step(sae, opt, scaler, x, since_fired, cfg, k_aux, amp, sparse)
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
            if watch is not None:
                with torch.no_grad():
                    last.update(watch(sae))
            history.append(last)
            bar.set_postfix(fvu=f"{last['fvu']:.3f}", dead=f"{last['dead_fraction']:.2f}")
            if on_log:
                on_log(last)
        if ckpt is not None and (step % cfg.checkpoint_every == 0 or step == total_steps):
            save_training_state(
                ckpt, sae, opt, since_fired, fingerprint, step, history, seconds + time.perf_counter() - t0
            )
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
            eval_split="prompts" if groups is not None else "rows",
            autocast={None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp],
            backward_path="sparse" if sparse else "dense",
            train_config=asdict(cfg),
        )
        if data_info:
            metrics["data"] = data_info
        sae.metrics = metrics
        if out_dir is not None:
            formats.save(sae, out_dir)  # with metrics.json, the mark of a finished run
            atomic_write_json(Path(out_dir) / "history.json", history)
    return TrainResult(sae, history, metrics)


def training_step(sae: TopKSAE, opt, scaler, x: torch.Tensor, since_fired: torch.Tensor, cfg: TrainConfig, k_aux: int,
                  amp: torch.dtype | None, sparse: bool):  # fmt: skip
    """One optimiser step on batch `x`: loss (FVU + alpha AuxK), backward, gradient projection, Adam,
    decoder renormalisation, dead-latent counters (updated in place, with no host sync). Returns the
    SAE's output for logging. The benchmarks time this same function."""
    dead = since_fired >= cfg.dead_after_tokens
    with torch.autocast(x.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        out = sae(x, dead_mask=dead, k_aux=k_aux, sparse=sparse)
        loss = out.fvu.float() + cfg.auxk_alpha * out.auxk_loss.float()
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    sae.remove_parallel_grad_()
    scaler.step(opt)
    scaler.update()
    sae.set_decoder_norm_()
    with torch.no_grad():
        # a latent fired if it is among a token's top k with a positive value: scatter, no boolean indexing
        hits = torch.zeros_like(since_fired).scatter_add_(
            0, out.latent_indices.reshape(-1), (out.latent_acts > 0).reshape(-1).to(since_fired.dtype)
        )
        since_fired.add_(len(x)).masked_fill_(hits > 0, 0)
    return out


@torch.no_grad()
def evaluate_sae(sae: TopKSAE, data, batch: int = 8192) -> dict:
    """FVU, L0, and the share of latents that never fire on `data` ([rows, d_in])."""
    data = as_rows(data)
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
    return {
        "fvu": err / max(tot, 1e-12),
        "l0": l0 / max(len(data), 1),
        "never_fired_fraction_eval": float((~fired).float().mean()),
    }


@torch.no_grad()
def firing_frequencies(sae: TopKSAE, data, batch: int = 8192) -> np.ndarray:
    """Per latent, the share of `data`'s rows ([rows, d_in]) on which it fires. [n_latents] float64"""
    data = as_rows(data)
    count = torch.zeros(sae.cfg.n_latents, dtype=torch.float64, device=sae.device)
    for s in range(0, len(data), batch):
        vals, idx = sae.encode(data[s : s + batch].to(sae.device).float())
        count.index_add_(
            0, idx[vals > 0].long(), torch.ones(int((vals > 0).sum()), dtype=torch.float64, device=sae.device)
        )
    return (count / max(len(data), 1)).cpu().numpy()
