"""Procedural images with exact labels, and captions in varied natural language.

Nothing is stored: every image is rendered on the fly from a spec, every spec comes from
a seed. Images are 16x16 RGB: a deliberately small world, large enough that colour and
the four shapes stay readable (objects span 8-14 pixels), small enough to train on a CPU.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass

import numpy as np

from snce_lib.rng import python_rng

SIZE = 16

PALETTE = {  # object colours, far from each other and from the backgrounds
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 70, 225),
    "yellow": (240, 220, 30),
    "purple": (150, 40, 190),
    "orange": (250, 140, 20),
}
BACKGROUNDS = {"black": (15, 15, 15), "white": (240, 240, 240), "gray": (128, 128, 128)}
SHAPES = ("circle", "square", "triangle", "star")
SIZES = {"small": 4.2, "large": 6.3}  # radius in pixels
POSITIONS = {"center": (0, 0), "left": (-2.5, 0), "right": (2.5, 0), "top": (0, -2.5), "bottom": (0, 2.5)}

# Words used in training captions. Held-out words (ATTACK_*) never appear in training.
COLOUR_WORDS = {
    "red": ["red", "crimson", "scarlet"],
    "green": ["green", "emerald"],
    "blue": ["blue", "azure"],
    "yellow": ["yellow", "golden"],
    "purple": ["purple", "violet"],
    "orange": ["orange", "amber"],
}
SHAPE_WORDS = {
    "circle": ["circle", "disc", "round dot"],
    "square": ["square", "box"],
    "triangle": ["triangle", "triangular shape"],
    "star": ["star", "five-pointed star"],
}
ATTACK_WORDS = {
    "red": [
        "ruby",
        "vermilion",
        "cherry-red",
        "the colour of blood",
        "the colour of a fire truck",
        "the colour of a ripe tomato",
    ],
    "triangle": [
        "three-sided polygon",
        "pyramid outline",
        "trigon",
        "shape with three corners",
        "shape like a slice of pizza",
        "delta sign",
    ],
}
TEMPLATES = [
    "a {colour} {shape}",
    "a {size} {colour} {shape} on a {bg} background",
    "{colour} {shape}, {bg} background",
    "a {colour} {shape} in the {pos}",
    "a {size} {shape} coloured {colour} on {bg}",
    "a picture of a {colour} {shape}",
    "an image of a {size} {colour} {shape} at the {pos}",
    "{bg} background with a {colour} {shape}",
]


@dataclass(frozen=True)
class Spec:
    colour: str
    shape: str
    bg: str = "white"
    size: str = "large"
    pos: str = "center"

    def as_dict(self) -> dict:
        return asdict(self)


def random_spec(rng: random.Random, colour: str | None = None, shape: str | None = None) -> Spec:
    return Spec(
        colour or rng.choice(list(PALETTE)),
        shape or rng.choice(SHAPES),
        rng.choice(list(BACKGROUNDS)),
        rng.choice(list(SIZES)),
        rng.choice(list(POSITIONS)),
    )


def _polygon_mask(xx, yy, pts) -> np.ndarray:
    """Inside test for a convex polygon (points counter-clockwise in image coordinates)."""
    inside = np.ones_like(xx, dtype=bool)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
        inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
    return inside


def shape_mask(shape: str, radius: float, cx: float, cy: float, size: int = SIZE, ss: int = 4) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a shape, rendered at `ss` x supersampling."""
    n = size * ss
    c = (np.arange(n) + 0.5) / ss
    xx, yy = np.meshgrid(c, c)
    if shape == "circle":
        m = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
    elif shape == "square":
        r = radius * 0.85
        m = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
    elif shape == "triangle":
        pts = [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in np.deg2rad([-90, 30, 150])]
        m = _polygon_mask(xx, yy, pts)
    elif shape == "star":
        m = np.zeros_like(xx, dtype=bool)
        outer = [np.deg2rad(-90 + 72 * i) for i in range(5)]
        inner_r = radius * 0.45
        for a in outer:  # a star = five triangles (tip, two inner corners) plus the inner pentagon
            tip = (cx + radius * np.cos(a), cy + radius * np.sin(a))
            left = (cx + inner_r * np.cos(a - np.deg2rad(36)), cy + inner_r * np.sin(a - np.deg2rad(36)))
            r = (cx + inner_r * np.cos(a + np.deg2rad(36)), cy + inner_r * np.sin(a + np.deg2rad(36)))
            m |= _polygon_mask(xx, yy, [left, tip, r]) | _polygon_mask(xx, yy, [r, tip, left])
        pent = [(cx + inner_r * np.cos(a + np.deg2rad(36)), cy + inner_r * np.sin(a + np.deg2rad(36))) for a in outer]
        m |= _polygon_mask(xx, yy, pent)
    else:
        raise ValueError(f"unknown shape {shape!r}; shapes: {', '.join(SHAPES)}")
    return m.reshape(size, ss, size, ss).mean((1, 3))


def render(spec: Spec, size: int = SIZE) -> np.ndarray:
    """uint8 [size, size, 3] image of one object."""
    dx, dy = POSITIONS[spec.pos]
    cov = shape_mask(spec.shape, SIZES[spec.size], size / 2 + dx, size / 2 + dy, size)[..., None]
    img = (1 - cov) * np.array(BACKGROUNDS[spec.bg]) + cov * np.array(PALETTE[spec.colour])
    return img.round().clip(0, 255).astype(np.uint8)


def caption(
    spec: Spec,
    rng: random.Random,
    colour_word: str | None = None,
    shape_word: str | None = None,
    template: str | None = None,
) -> str:
    text = (template or rng.choice(TEMPLATES)).format(
        colour=rng.choice(COLOUR_WORDS[spec.colour]) if colour_word is None else colour_word,
        shape=rng.choice(SHAPE_WORDS[spec.shape]) if shape_word is None else shape_word,
        size=spec.size,
        bg=spec.bg,
        pos=spec.pos,
    )
    text = " ".join(text.split())
    return re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)


def dataset(n: int, seed: int = 0) -> tuple[list[Spec], list[str]]:
    """`n` random scenes and their captions: the toy models' training data. Drawn from `random.Random(seed)`
    as when the shipped models were trained (scripts/train_toy.py), so their recipe stays reproducible;
    every later draw (pairs, evaluation prompts, SAE init) has a stream of its own (`snce_lib.rng`)."""
    rng = random.Random(seed)
    specs = [random_spec(rng) for _ in range(n)]
    return specs, [caption(s, rng) for s in specs]


def concept_pairs(target: str, n: int = 100, seed: int = 1) -> list[tuple[str, str]]:
    """Concept/deconcept caption pairs: the mention of `target` (a colour or a shape) removed."""
    rng = python_rng(seed, "toy-pairs")
    pairs = []
    colour_target = target in PALETTE
    for _ in range(n):
        spec = random_spec(rng, colour=target if colour_target else None, shape=None if colour_target else target)
        tpl = rng.choice([t for t in TEMPLATES if "{colour} {shape}" in t])
        cw = rng.choice(COLOUR_WORDS[spec.colour])
        sw = rng.choice(SHAPE_WORDS[spec.shape])
        concept = caption(spec, rng, cw, sw, tpl)
        if colour_target:
            deconcept = caption(spec, rng, "", sw, tpl)
        else:
            deconcept = caption(spec, rng, cw, "object", tpl)  # a shape mention becomes the neutral "object"
        pairs.append((concept, deconcept))
    return pairs


def tuple_words(target: str) -> list[str]:
    return COLOUR_WORDS.get(target) or SHAPE_WORDS[target]
