"""The toy model of superposition (Elhage et al. 2022): n sparse features squeezed through m < n dimensions.

    h = W x,    x' = ReLU(W^T h + b),    loss = mean over the batch of sum_i I_i (x_i - x'_i)^2

W is [m, n]: column i is where feature i is written in the hidden layer. Each feature is on with
probability p (then uniform in [0, 1]); importance I_i = decay^i says how much the loss cares about
feature i. Dense features (p = 1) leave the model room for its m most important ones, one
orthogonal direction each; sparse features rarely meet, so it packs more than m of them in, at
the price of interference (`W^T W` off the diagonal) that the ReLU and the bias filter out.

`train_toy_models` trains one model per sparsity at once (a batch of instances), with any forward
function (chapter 00 passes the student's); `summarise` reads what each learned; `as_planted`
turns one model's hidden layer into a `Planted` data set whose answer is that model's own feature
directions, so an SAE trained on it can be checked against the truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from snce_lib.rng import torch_generator
from snce_lib.sae.planted import Planted

#: A feature counts as represented when its column of W has at least this norm (a dropped feature's goes to 0).
REPRESENTED_AT = 0.5


def toy_forward(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x [batch, n], W [m, n], b [n] -> x' [batch, n] = ReLU(W^T W x + b), row by row."""
    return torch.relu((x @ W.T) @ W + b)


def sample_features(shape: tuple[int, ...], p_active: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Sparse feature values of `shape` [..., n]: each on with probability `p_active` (broadcast against
    `shape`), then uniform in [0, 1]. One uniform draw decides both: u < p is on, and u / p is then uniform."""
    u = torch.rand(shape, generator=generator)
    return torch.where(u < p_active, u / p_active, torch.zeros(()))


@dataclass
class ToyModels:
    """One trained toy model per sparsity. W: [instances, m, n]; b: [instances, n]; importance: [n]."""

    W: torch.Tensor
    b: torch.Tensor
    p_active: list[float]
    importance: torch.Tensor
    history: list[dict] = field(default_factory=list)
    """[{step, loss: [instances]}]: the importance-weighted loss of each instance's training batch."""

    @property
    def n_features(self) -> int:
        return self.W.shape[2]

    @property
    def d_hidden(self) -> int:
        return self.W.shape[1]


def _batched(forward: Callable) -> Callable:
    """`forward` for one model, applied to every instance: vmapped, or a loop where the function
    does something vmap cannot follow (a student's `.item()`, an in-place write)."""
    vm = torch.func.vmap(forward)

    def run(x, W, b):
        try:
            return vm(x, W, b)
        except Exception:  # noqa: BLE001 (any failure under vmap: the plain loop gives the real error, if any)
            return torch.stack([forward(x[i], W[i], b[i]) for i in range(len(W))])

    return run


def train_toy_models(n_features: int = 80, d_hidden: int = 20, p_active: Sequence[float] = (1.0, 0.1, 0.01),
                     importance_decay: float = 0.98, steps: int = 3000, batch_size: int = 256, lr: float = 1e-2,
                     seed: int = 0, forward: Callable | None = None, log_every: int = 100,
                     progress: bool = False) -> ToyModels:  # fmt: skip
    """Adam on the importance-weighted loss, one instance per entry of `p_active`, all at once.
    `forward(x [batch, n], W [m, n], b [n]) -> [batch, n]` (default `toy_forward`)."""
    if not 0 < d_hidden < n_features:
        raise ValueError(f"need 0 < d_hidden < n_features, got d_hidden {d_hidden}, n_features {n_features}")
    p = torch.tensor([float(v) for v in p_active])
    if len(p) == 0 or not bool(((p > 0) & (p <= 1)).all()):
        raise ValueError(f"every p_active must be in (0, 1], got {list(p_active)}")
    g_init, g_data = torch_generator(seed, "superposition-init"), torch_generator(seed, "superposition-batches")
    n_inst = len(p)
    W = torch.nn.Parameter(torch.randn(n_inst, d_hidden, n_features, generator=g_init) * (2 / (d_hidden + n_features)) ** 0.5)  # fmt: skip
    b = torch.nn.Parameter(torch.zeros(n_inst, n_features))
    importance = importance_decay ** torch.arange(n_features, dtype=torch.float32)
    opt = torch.optim.Adam([W, b], lr=lr)
    fwd = _batched(forward or toy_forward)
    history = []
    for step in tqdm(range(1, steps + 1), desc="toy models", disable=not progress):
        x = sample_features((n_inst, batch_size, n_features), p.view(-1, 1, 1), g_data)
        per = (importance * (x - fwd(x, W, b)).pow(2)).sum(-1).mean(-1)  # [instances]
        opt.zero_grad(set_to_none=True)
        per.sum().backward()  # the instances share no parameter: summing trains each on its own loss
        opt.step()
        if step % log_every == 0 or step == steps:
            history.append({"step": step, "loss": per.detach().tolist()})
    return ToyModels(W.detach(), b.detach(), [float(v) for v in p_active], importance, history)


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """||W_i|| per feature. W: [..., m, n] -> [..., n]"""
    return W.norm(dim=-2)


def interference(W: torch.Tensor) -> torch.Tensor:
    """Elhage et al.'s measure, per feature: sum over j != i of (W_i_hat . W_j)^2, how much of the other
    features lands on feature i's direction (0: it has a dimension to itself). W: [m, n] -> [n]"""
    unit = W / feature_norms(W).clamp_min(1e-8)
    overlap = (unit.T @ W).pow(2)
    return overlap.sum(1) - overlap.diagonal()


def summarise(models: ToyModels, represented_at: float = REPRESENTED_AT) -> list[dict]:
    """Per instance: p_active, features represented (column norm >= `represented_at`) against the
    hidden dimensions, dimensions per feature (m / ||W||_F^2, Elhage's measure), how many of the
    represented features share their direction (interference >= 0.1), and the median bias of the
    represented features (negative: the ReLU cuts small inputs, interference among them, off)."""
    rows = []
    for i, p in enumerate(models.p_active):
        W = models.W[i]
        rep = feature_norms(W) >= represented_at
        inter = interference(W)
        rows.append({"p_active": p, "features on per sample": p * models.n_features, "represented": int(rep.sum()),
                     "hidden dims": models.d_hidden, "dims per feature": models.d_hidden / float(W.pow(2).sum()),
                     "in superposition": int((rep & (inter >= 0.1)).sum()),
                     "bias (median, represented)": float(models.b[i][rep].median()) if bool(rep.any()) else math.nan})  # fmt: skip
    return rows


def as_planted(models: ToyModels, instance: int, n_samples: int = 20_000, seed: int = 0,
               represented_at: float = REPRESENTED_AT) -> Planted:  # fmt: skip
    """The hidden activations h = W x of one trained model on fresh samples, as planted data: the
    answer (`dirs`) is the unit columns of W of the features it represents, and each one's true
    coefficient is x_i ||W_i||. Features it dropped stay in h as the small residue they leave."""
    W = models.W[instance]
    norms = feature_norms(W)
    rep = norms >= represented_at
    if not bool(rep.any()):
        raise ValueError(f"instance {instance} represents no feature (every column norm < {represented_at})")
    g = torch_generator(seed, "superposition-data")
    x = sample_features((n_samples, models.n_features), torch.tensor(models.p_active[instance]), g)
    return Planted(x=x @ W.T, coef=(x * norms)[:, rep], dirs=(W / norms.clamp_min(1e-8)).T[rep].contiguous())
