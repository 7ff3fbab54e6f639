"""argparse types that refuse bad values at the edge, with a message that says what to give."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


SAE_HELP = "an SAE: a folder (snce, SAELens or sparsify layout) or a hub repository id (owner/name)"


def add_sae_arguments(p, required: bool = True) -> None:
    """--sae and --sae-id, read by `load_sae`: the one way every subcommand loads an SAE."""
    p.add_argument("--sae", required=required, default=None, help=SAE_HELP)
    p.add_argument(
        "--sae-id", default=None, help="the SAE's folder inside --sae (SAELens and sparsify keep one per block)"
    )


def load_sae(a):
    """The SAE that --sae/--sae-id name, through `sae.formats.from_pretrained`, frozen."""
    from snce_lib.sae.formats import from_pretrained

    return from_pretrained(a.sae, subfolder=a.sae_id).requires_grad_(False)
