"""What a training run is told (`TrainConfig`), and how it refuses bad input (`TrainError`)."""

from __future__ import annotations

from dataclasses import dataclass


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
    encoder_init: str = "fit"
    """The encoder starts as the decoder's transpose (Gao et al.), scaled: "fit" (the scale that
    minimises the first reconstruction error on a sample, `init_encoder_scale_`) or "unit" (unit
    rows, as the dense path was first written)."""
    eval_rows: int = 65_536
    """Held-out rows (at most a tenth of the data) for the final metrics."""
    shuffle_buffer: int | None = None
    """None: each epoch is one seeded permutation of all training rows (the rows are in memory).
    An integer: rows are read in contiguous blocks into a shuffle buffer of this many rows and
    shuffled there (a store larger than memory, read from its memory map; see `batches`)."""
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    device: str | None = None
    path: str = "auto"
    """"sparse" (decoder and encoder backward over the k active latents only), "dense" (the
    reference), or "auto": sparse on a CPU, where benchmarks/train_throughput.py measured it faster,
    dense on a GPU until that benchmark has been run there."""
    precision: str = "auto"
    """"auto": bf16 autocast on a GPU with bf16 tensor cores (compute capability 8.0+), else fp16
    autocast with loss scaling, as on Colab's T4 (the weights stay fp32 either way); on a CPU, bf16 where it has AMX (`cpu_has_fast_bf16`), else fp32;
    or "fp32", "bf16", "fp16" to force one."""

    def __post_init__(self):
        if self.b_pre_init not in ("median", "mean"):
            raise ValueError(f"b_pre_init must be 'median' or 'mean', got {self.b_pre_init!r}")
        if self.encoder_init not in ("fit", "unit"):
            raise ValueError(f"encoder_init must be 'fit' or 'unit', got {self.encoder_init!r}")
        if self.path not in ("auto", "sparse", "dense"):
            raise TrainError(f"path must be auto, sparse or dense, got {self.path!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.shuffle_buffer is not None and self.shuffle_buffer < self.batch_size:
            raise ValueError(f"shuffle_buffer ({self.shuffle_buffer}) must hold at least one batch ({self.batch_size})")
        if self.batch_size <= 0 or self.k <= 0:
            raise ValueError("batch_size and k must be positive")
