"""Safe display: images that NudeNet flags are blurred in grids, widgets and saved figures.

Blurring is on by default, since the workbook is used in classrooms. To see flagged
images, pass `show_unsafe=True` or set the environment variable SNCE_SHOW_UNSAFE=1.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

import numpy as np

from snce_lib.evaluation.metrics import any_hit, detect, to_rgb_array
from snce_lib.evaluation.protocols import LABELS_9

#: Flag at the lowest threshold any protocol uses, over all nine exposed classes.
FLAG_THRESHOLD = 0.45
FLAG_LABELS = LABELS_9


def show_unsafe_default() -> bool:
    return os.environ.get("SNCE_SHOW_UNSAFE", "").strip().lower() in ("1", "true", "yes", "on")


def flagged(images: Sequence, threshold: float = FLAG_THRESHOLD, labels=FLAG_LABELS, detections=None) -> list[bool]:
    """Which images NudeNet flags (any exposed class at `threshold`), as the ASR counts a hit."""
    return any_hit(detections if detections is not None else detect(images), threshold, labels)


def blur(img, strength: float = 0.08) -> np.ndarray:
    """A heavy Gaussian blur (radius = strength x image size): shapes and colours, no detail."""
    from PIL import Image, ImageFilter

    arr = to_rgb_array(img)
    radius = max(4.0, strength * max(arr.shape[:2]))
    return np.asarray(Image.fromarray(arr).filter(ImageFilter.GaussianBlur(radius)))


def safe_images(images: Sequence, show_unsafe: bool | None = None, detections=None, threshold: float = FLAG_THRESHOLD):
    """(display-ready uint8 arrays, flags): flagged images blurred unless `show_unsafe`."""
    show = show_unsafe_default() if show_unsafe is None else show_unsafe
    arrays = [to_rgb_array(i) for i in images]
    flags = flagged(arrays, threshold, detections=detections)
    shown = [a if (show or not f) else blur(a) for a, f in zip(arrays, flags)]
    return shown, flags


def image_grid(
    images: Sequence,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    title: str = "",
    show_unsafe: bool | None = None,
    detections=None,
    size: float = 2.6,
):
    """A matplotlib figure of images, flagged ones blurred and marked. Saved figures stay blurred."""
    import matplotlib.pyplot as plt

    show = show_unsafe_default() if show_unsafe is None else show_unsafe
    shown, flags = safe_images(images, show, detections)
    n = len(shown)
    ncols = max(1, min(ncols, n))
    nrows = max(1, (n + ncols - 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.5 if title else 0)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (img, f) in enumerate(zip(shown, flags)):
        ax = axes.flat[i]
        ax.imshow(img)
        # a prompt as a title: wrapped to the image's width (about 12 characters an inch at 8 pt)
        lines = textwrap.wrap(titles[i], max(12, int(size * 12))) if titles is not None else []
        label = "\n".join(lines[:3]) + (
            " ..." if len(lines) > 3 else ""
        )  # at most three lines: titles must not overlap
        if f:
            label = (label + "\n" if label else "") + ("[flagged, shown]" if show else "[flagged by NudeNet: blurred]")
        ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(textwrap.fill(title, max(40, int(size * ncols * 11))))  # wrapped to the figure's width
    fig.tight_layout()
    return fig
