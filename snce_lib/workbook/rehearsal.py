"""The colab rehearsal's stand-ins: random-weight models of the real sizes, where the colab path loads them.

`snce workbook --profile colab-rehearsal` runs every notebook on the colab code path against a folder this
module builds once (about 5 GB, a few minutes on a CPU; never inside the repository):

- `hf/`: a hub-shaped cache (`models.hubcache`, size `real`): SD v1.4's text encoder (CLIP ViT-L/14's
  text tower), UNet and VAE, CLIP ViT-B/32 for the CLIP score, and SD v1.4's own tokenizer;
- `cache/inception-2015-12-05.pt`: a TorchScript Inception-v3 of the FID network's shapes
  (`evaluation.metrics.InceptionStandIn`), where `inception_extractor` looks for the real file.

NudeNet is the real one: its detector ships inside its package. The kernels get `HF_HOME` and
`SNCE_CACHE` pointed at this folder, so nothing of the user's own caches is read or overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

#: What a finished folder records; a folder built by another layout version is rebuilt.
LAYOUT = {"layout": 1, "hub_cache": "real", "inception": "InceptionStandIn"}


def rehearsal_folder() -> Path:
    """$SNCE_REHEARSAL_CACHE, else `rehearsal/` under $SNCE_CACHE (default ~/.cache/snce)."""
    if os.environ.get("SNCE_REHEARSAL_CACHE"):
        return Path(os.environ["SNCE_REHEARSAL_CACHE"])
    return Path(os.environ.get("SNCE_CACHE", Path.home() / ".cache" / "snce")) / "rehearsal"


def prepare(folder: str | os.PathLike | None = None, log: Callable[[str], None] = print) -> dict[str, str]:
    """Build the stand-ins in `folder` unless a finished build is there; return the environment the
    notebooks' kernels need (HF_HOME, SNCE_CACHE, and the hub's offline switches)."""
    import time

    from snce_lib.evaluation.metrics import write_inception_standin
    from snce_lib.io import atomic_write_json
    from snce_lib.models.hubcache import build_hub_cache

    folder = Path(folder) if folder else rehearsal_folder()
    marker = folder / "rehearsal.json"
    done = json.loads(marker.read_text()) if marker.exists() else {}
    if {k: done.get(k) for k in LAYOUT} != LAYOUT:
        log(f"rehearsal: building random-weight models of the real sizes in {folder} (about 5 GB, once)")
        t0 = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        build_hub_cache(folder / "hf", size="real")
        write_inception_standin(folder / "cache" / "inception-2015-12-05.pt")
        seconds = round(time.perf_counter() - t0, 1)
        atomic_write_json(marker, {**LAYOUT, "build_seconds": seconds, "bytes": folder_bytes(folder)})
        log(f"rehearsal: built in {seconds:.0f} s")
    return {
        "HF_HOME": str(folder / "hf"),
        "SNCE_CACHE": str(folder / "cache"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def folder_bytes(folder: str | os.PathLike) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
