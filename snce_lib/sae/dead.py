"""Dead latents on purpose: a run that starts with part of the dictionary dead, with or without AuxK.

A latent is dead when it has not fired for `dead_after_tokens` tokens. Under TopK a latent whose
pre-activations never reach a top-k place gets no gradient from the reconstruction loss, so it
cannot come back by itself. AuxK (Gao et al. 2024) lets the `k_aux` dead latents with the largest
pre-activations reconstruct the live latents' residual, which gives them gradient.
`dead_start_run` shrinks the encoder rows of a share of the latents (so they lose every top-k
contest from the first step), counts them dead from the start, and trains with the project's own
training step, logging the dead share and the planted features' recovery as it goes.
"""

from __future__ import annotations

import torch

from snce_lib.rng import torch_generator
from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.planted import Planted, recovery
from snce_lib.sae.train import TrainConfig, init_from_sample_, make_optimizer, make_scaler, training_step


def dead_start_run(planted: Planted, n_latents: int, k: int, auxk_alpha: float, dead_share: float = 0.5,
                   steps: int = 600, batch_size: int = 256, k_aux: int | None = None, dead_after_tokens: int = 2048,
                   log_every: int = 25, seed: int = 0, sparse: bool = False) -> dict:  # fmt: skip
    """Returns {"history": [{step, dead_share, ever_fired_share (of the latents started dead), ...recovery}],
    "revived": latents started dead that fired at least once, "still_dead": those dead at the end,
    "n_started_dead", "sae"}."""
    x = planted.x.float()
    d = x.shape[1]
    k_aux = d // 2 if k_aux is None else k_aux
    cfg = TrainConfig(n_latents=n_latents, k=k, lr=3e-3, batch_size=batch_size, dead_after_tokens=dead_after_tokens,
                      auxk_alpha=auxk_alpha, seed=seed)  # fmt: skip
    sae = TopKSAE(SAEConfig(d, n_latents, k))
    sae.reset_parameters(torch_generator(seed, "sae-init"))
    init_from_sample_(sae, x[: min(len(x), 4096)], cfg)
    n_dead = int(round(dead_share * n_latents))
    started_dead = torch.zeros(n_latents, dtype=torch.bool)
    started_dead[n_latents - n_dead :] = True
    with torch.no_grad():
        sae.W_enc[started_dead] *= 0.05  # too weak to win a top-k place
    opt, scaler = make_optimizer(sae, cfg), make_scaler(None, torch.device("cpu"))
    since = torch.zeros(n_latents, dtype=torch.long)
    since[started_dead] = 10**9  # dead from the first step
    fired = torch.zeros(n_latents, dtype=torch.bool)
    g = torch_generator(seed, "dead-batches")
    history = []
    for step in range(1, steps + 1):
        batch = x[torch.randint(len(x), (batch_size,), generator=g)]
        out = training_step(sae, opt, scaler, batch, since, cfg, k_aux, None, sparse)
        fired[out.latent_indices[out.latent_acts > 0].unique()] = True
        if step % log_every == 0 or step == steps:
            history.append({"step": step, "tokens": step * batch_size,
                            "dead_share": float((since >= dead_after_tokens).float().mean()),
                            "ever_fired_share": float(fired[started_dead].float().mean()) if n_dead else 1.0,
                            "fvu": float(out.fvu.detach()), **recovery(sae.W_dec, planted.dirs)})  # fmt: skip
    return {"history": history, "revived": int(fired[started_dead].sum()),
            "still_dead": int((since[started_dead] >= dead_after_tokens).sum()), "n_started_dead": n_dead,
            "sae": sae.requires_grad_(False)}  # fmt: skip
