"""An exact-enough detector for the toy world: colour from pixel statistics, shape from a tiny CNN.

Colour: the background is the median of the border pixels; foreground pixels are those
far from it; the colour is the palette entry nearest their median. Shape: a small CNN
reads the foreground mask (so it is blind to colour and background), trained on rendered
images with jitter and noise. Its features, with the foreground colour, are the space in
which the Fréchet distance between image sets is measured.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from snce_lib.models.toy.world import BACKGROUNDS, PALETTE, SHAPES, SIZE, Spec, shape_mask
from snce_lib.resources import data_path

_PAL = np.array(list(PALETTE.values()), dtype=np.float32)
_PAL_NAMES = list(PALETTE)
FG_DISTANCE = 60.0


def foreground(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(soft mask [H, W] in [0, 1], background colour [3]) of a uint8 image."""
    x = img.astype(np.float32)
    border = np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])
    bg = np.median(border, axis=0)
    dist = np.linalg.norm(x - bg, axis=-1)
    return np.clip(dist / 150.0, 0, 1), bg


def colour_of(img: np.ndarray) -> str:
    x = img.astype(np.float32)
    mask, bg = foreground(img)
    fg = x[mask * 150.0 > FG_DISTANCE]
    if len(fg) < 3:
        return "none"
    med = np.median(fg, axis=0)
    return _PAL_NAMES[int(np.argmin(np.linalg.norm(_PAL - med, axis=1)))]


class ShapeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1, stride=2),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1, stride=2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
        )
        self.head = nn.Linear(64, len(SHAPES))

    def features(self, masks: torch.Tensor) -> torch.Tensor:
        return self.body(masks)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(masks))


def jittered_render(rng: random.Random, spec: Spec | None = None) -> tuple[np.ndarray, str, str]:
    """A render with continuous size and position, for training and testing the detector."""
    colour = spec.colour if spec else rng.choice(list(PALETTE))
    shape = spec.shape if spec else rng.choice(SHAPES)
    bg = spec.bg if spec else rng.choice(list(BACKGROUNDS))
    r = rng.uniform(3.8, 7.0)
    cx, cy = SIZE / 2 + rng.uniform(-3, 3), SIZE / 2 + rng.uniform(-3, 3)
    cov = shape_mask(shape, r, cx, cy)[..., None]
    img = (1 - cov) * np.array(BACKGROUNDS[bg]) + cov * np.array(PALETTE[colour])
    return img.round().clip(0, 255).astype(np.uint8), colour, shape


def foreground_batch(images) -> np.ndarray:
    """Soft foreground masks of a batch, vectorised. [N, H, W]"""
    x = np.stack([np.asarray(i) for i in images]).astype(np.float32)
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    bg = np.median(border, axis=1)[:, None, None, :]
    return np.clip(np.linalg.norm(x - bg, axis=-1) / 150.0, 0, 1)


def _masks(images) -> torch.Tensor:
    return torch.from_numpy(foreground_batch(images)).float().unsqueeze(1)


class ToyDetector:
    def __init__(self, net: ShapeNet):
        self.net = net.eval()

    @torch.no_grad()
    def shapes(self, images) -> list[str]:
        return [SHAPES[i] for i in self.net(_masks(images)).argmax(1).tolist()]

    def colours(self, images) -> list[str]:
        return [colour_of(np.asarray(i)) for i in images]

    @torch.no_grad()
    def features(self, images) -> np.ndarray:
        """[N, 67]: the shape net's features and the foreground's mean colour."""
        f = self.net.features(_masks(images)).numpy()
        cols = []
        for img in images:
            m, _ = foreground(np.asarray(img))
            w = m[..., None]
            cols.append((np.asarray(img, np.float32) * w).sum((0, 1)) / max(w.sum(), 1e-6) / 255.0)
        return np.concatenate([f, np.array(cols)], 1)

    def save(self, folder: Path | None = None) -> None:
        from snce_lib.io import atomic_save_safetensors, atomic_write_json

        folder = Path(folder) if folder is not None else data_path("toy")
        folder.mkdir(parents=True, exist_ok=True)
        atomic_save_safetensors(folder / "detector.safetensors", self.net.state_dict())
        atomic_write_json(folder / "detector.json", {"kind": "snce-toy-detector", "shapes": list(SHAPES)})

    @classmethod
    def load(cls, folder: Path | None = None) -> ToyDetector:
        from safetensors.torch import load_file

        folder = Path(folder) if folder is not None else data_path("toy")
        meta = json.loads((folder / "detector.json").read_text())
        if meta.get("kind") != "snce-toy-detector" or meta.get("shapes") != list(SHAPES):
            raise ValueError(f"{folder} does not hold a toy detector for shapes {SHAPES}")
        net = ShapeNet()
        net.load_state_dict(load_file(str(folder / "detector.safetensors")))
        return cls(net)


def train_detector(
    steps: int = 800, batch: int = 128, seed: int = 0, noise: float = 12.0, pool: int = 6000
) -> ToyDetector:
    """Train the shape net on a pool of jittered renders, with fresh pixel noise each step
    (generated images are noisy)."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    renders = [jittered_render(rng) for _ in range(pool)]
    imgs_all = np.stack([r[0] for r in renders]).astype(np.float32)
    labels_all = torch.tensor([SHAPES.index(r[2]) for r in renders])
    net = ShapeNet()
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    for _ in range(steps):
        idx = nprng.integers(0, pool, batch)
        scale = nprng.random((batch, 1, 1, 1)) * noise
        imgs = np.clip(imgs_all[idx] + nprng.normal(0, 1, (batch, SIZE, SIZE, 3)) * scale, 0, 255).astype(np.uint8)
        loss = nn.functional.cross_entropy(net(_masks(imgs)), labels_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ToyDetector(net)


def accuracy(det: ToyDetector, n: int = 1000, seed: int = 123) -> dict:
    """Colour and shape accuracy on fresh jittered renders (a seed the training never used)."""
    rng = random.Random(seed)
    imgs, cols, shs = zip(*(jittered_render(rng) for _ in range(n)))
    c = np.mean([a == b for a, b in zip(det.colours(imgs), cols)])
    s = np.mean([a == b for a, b in zip(det.shapes(imgs), shs)])
    return {"colour": float(c), "shape": float(s), "n": n}
