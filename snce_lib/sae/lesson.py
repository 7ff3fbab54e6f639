"""Chapter 00's training loop: small TopK SAEs on planted data, with any training step, watched from step 0.

`train_watched` starts an SAE exactly as `train_sae` does (decoder rows from the "sae-init" stream,
b_pre and the encoder's scale from the data) but takes the training step as an argument, so the
chapter trains with the step the student wrote, and with the library's (`library_step`, the
trainer's own `training_step`) beside it. It logs, at step 0 (before any update) and every
`log_every` steps, the planted features' recovery counted over the latents that fire on held-out
probe rows, the probe's FVU, the dead share, and, once, the chance line (a random dictionary's
recovery). The loop owns the dead-latent counters, so every step function gets the same ones.

A step function is `step(sae, opt, x, dead, k_aux, alpha) -> (fvu, auxk, z)`: one optimiser step on
FVU + alpha * AuxK for batch x [batch, d], with `dead` [n_latents] marking the dead latents;
it returns the two loss terms as floats and the batch's dense code z [batch, n_latents].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from snce_lib.rng import torch_generator
from snce_lib.sae.config import TrainConfig
from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.planted import Planted, chance_recovery, firing, recovery
from snce_lib.sae.train import init_from_sample_, make_optimizer, make_scaler, training_step

StepFn = Callable[[TopKSAE, torch.optim.Optimizer, torch.Tensor, torch.Tensor, int, float], tuple]


def start_sae(x: torch.Tensor, n_latents: int, k: int, seed: int = 0) -> TopKSAE:
    """A TopK SAE as `train_sae` starts one on rows `x` [rows, d]: random unit decoder rows from the
    "sae-init" stream (never the data's), a tied encoder, b_pre and the encoder's scale from the data."""
    sae = TopKSAE(SAEConfig(x.shape[1], n_latents, k))
    sae.reset_parameters(torch_generator(seed, "sae-init"))
    init_from_sample_(sae, x[: min(len(x), 32768)].float(), TrainConfig(n_latents=n_latents, k=k, seed=seed))
    return sae


def library_step(sae: TopKSAE, opt, x: torch.Tensor, dead: torch.Tensor, k_aux: int, alpha: float,
                 sparse: bool = False) -> tuple[float, float, torch.Tensor]:  # fmt: skip
    """The trainer's own `training_step` (what `train_sae` runs), in the step signature above."""
    cfg = TrainConfig(n_latents=sae.cfg.n_latents, k=sae.cfg.k, auxk_alpha=alpha, dead_after_tokens=1)
    since = dead.long()  # dead_after_tokens = 1: exactly the latents marked dead count as dead
    out = training_step(sae, opt, make_scaler(None, x.device), x, since, cfg, k_aux, None, sparse)
    return float(out.fvu.detach()), float(out.auxk_loss.detach()), sae.to_dense(out.latent_acts, out.latent_indices)


@dataclass
class WatchedRun:
    sae: TopKSAE
    history: list[dict] = field(default_factory=list)
    """From step 0: step, tokens, fvu (probe rows), l0 (probe rows), dead_share, live_share (latents
    firing on the probe), ever_fired_share (of the latents started dead), mean_max_cosine, share_found."""
    chance: dict = field(default_factory=dict)
    """`chance_recovery` for a dictionary of this size: the line recovery starts on."""
    n_started_dead: int = 0
    revived: int = 0
    """Latents started dead that fired at least once in training."""
    still_dead: int = 0
    """Latents started dead that were dead (silent for the dead window) at the end."""


@torch.no_grad()
def _probe(sae: TopKSAE, probe: torch.Tensor, planted: Planted, threshold: float, found: Callable | None) -> dict:
    z = sae.encode_dense(probe)
    err = (probe - sae.decode_dense(z)).pow(2).sum() / (probe - probe.mean(0)).pow(2).sum()
    live = firing(z)
    row = {"fvu": float(err), "l0": float((z > 0).sum(1).float().mean()), "live_share": float(live.float().mean()),
           **recovery(sae.W_dec, planted.dirs, threshold, live)}  # fmt: skip
    if found is not None:
        row["share_found"] = float(found(sae.W_dec[live], planted.dirs, threshold)) if bool(live.any()) else 0.0
    return row


def train_watched(planted: Planted, n_latents: int, k: int, steps: int = 2500, step: StepFn | None = None,
                  lr: float = 3e-3, batch_size: int = 256, auxk_alpha: float = 1 / 32, k_aux: int | None = None,
                  dead_after_tokens: int = 50_000, dead_start: float = 0.0, log_every: int = 25,
                  probe_rows: int = 2048, threshold: float = 0.9, seed: int = 0, found: Callable | None = None,
                  progress: bool = False) -> WatchedRun:  # fmt: skip
    """Train on `planted.x` with `step` (default `library_step`); the last `probe_rows` rows are held out
    to measure. `dead_start` > 0 starts that share of the latents dead: their encoder rows shrunk so
    they lose every top-k contest, and their counters at the dead window from the first step.
    `found(W_dec_live, dirs, threshold) -> share` (chapter 00's `share_found` exercise) replaces the
    library's count of the features found, if given."""
    x = planted.x.float()
    if len(x) <= probe_rows + batch_size:
        raise ValueError(f"need more than {probe_rows + batch_size} rows (probe + one batch), got {len(x)}")
    train, probe = x[:-probe_rows], x[-probe_rows:]
    step = step or library_step
    k_aux = x.shape[1] // 2 if k_aux is None else k_aux
    sae = start_sae(train, n_latents, k, seed)
    n_dead = int(round(dead_start * n_latents))
    started_dead = torch.zeros(n_latents, dtype=torch.bool)
    started_dead[n_latents - n_dead :] = True
    since = torch.zeros(n_latents, dtype=torch.long)
    with torch.no_grad():
        sae.W_enc[started_dead] *= 0.05  # too weak to win a top-k place
    since[started_dead] = dead_after_tokens
    opt = make_optimizer(sae, TrainConfig(lr=lr))
    fired = torch.zeros(n_latents, dtype=torch.bool)
    g = torch_generator(seed, "lesson-batches")
    run = WatchedRun(sae, chance=chance_recovery(n_latents, planted.dirs, threshold, seed), n_started_dead=n_dead)

    def log(at: int) -> None:
        run.history.append({"step": at, "tokens": at * batch_size,
                            "dead_share": float((since >= dead_after_tokens).float().mean()),
                            "ever_fired_share": float(fired[started_dead].float().mean()) if n_dead else 1.0,
                            **_probe(sae, probe, planted, threshold, found)})  # fmt: skip

    log(0)
    for at in tqdm(range(1, steps + 1), desc="train SAE", disable=not progress):
        batch = train[torch.randint(len(train), (batch_size,), generator=g)]
        _, _, z = step(sae, opt, batch, since >= dead_after_tokens, k_aux, auxk_alpha)
        hit = (z.detach() > 0).any(0)
        since.add_(batch_size).masked_fill_(hit, 0)
        fired |= hit
        if at % log_every == 0 or at == steps:
            log(at)
    run.revived = int(fired[started_dead].sum())
    run.still_dead = int((since[started_dead] >= dead_after_tokens).sum())
    sae.requires_grad_(False)
    return run
