"""Independent random streams: one per purpose, all derived from one user-facing seed.

A seed says which run to repeat; it must not tie two unrelated draws together. When planted data
and an SAE's initial decoder both drew their Gaussian rows from a generator seeded 0, the first
decoder rows *were* the planted features before any training, and every recovery figure measured
that coincidence. Here each purpose has a name, and `seed_for(seed, name)` mixes the two through
NumPy's SeedSequence (a hash designed for exactly this), so the same seed gives unrelated streams
for different names and the same stream for the same name on every machine.

Names in use (a new purpose gets a new name, never a reused one):
- data: "planted", "toy-prompts", "concept-split", "heldout-split", "eval-rows", "superposition-data"
  (a toy model's hidden layer as planted data), "pca-cases";
- models: "sae-init", "l1-init", "superposition-init";
- training: "sae-batches", "l1-batches", "lesson-batches", "superposition-batches";
- chance levels: "chance-dictionary" (a random dictionary's recovery), "chance-basis", "readability-chance";
- samples: "dead-windows" (rows grouped into dead windows), "bridge-units" (units shown in notebook 01).
"""

from __future__ import annotations

import random
import zlib

import numpy as np
import torch


def seed_for(seed: int, name: str) -> int:
    """A 63-bit seed for stream `name` of run `seed`: unrelated across names, the same on every call."""
    if not name:
        raise ValueError("a random stream needs a name")
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())]).generate_state(2, np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def torch_generator(seed: int, name: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for stream `name` of run `seed`."""
    return torch.Generator(device=device).manual_seed(seed_for(seed, name))


def numpy_rng(seed: int, name: str) -> np.random.Generator:
    """A NumPy generator for stream `name` of run `seed`."""
    return np.random.default_rng(seed_for(seed, name))


def python_rng(seed: int, name: str) -> random.Random:
    """A `random.Random` for stream `name` of run `seed` (caption templates and word choices)."""
    return random.Random(seed_for(seed, name))
