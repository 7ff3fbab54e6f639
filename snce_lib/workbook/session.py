"""A notebook's first step after the install cell: `setup()` picks the profile, mounts Drive when
asked, and says what it runs on and what the install changed."""

from __future__ import annotations

import os
from pathlib import Path

from snce_lib.workbook.profiles import Profile, get_profile


def setup(profile: str | None = None, use_drive: bool = False) -> Profile:
    """The notebooks' first step after the install cell: the profile, the run folder (on Google
    Drive when asked, on Colab), the GPU, and what the install cell added to the runtime."""
    import sys

    import torch

    if use_drive and "google.colab" in sys.modules:
        from google.colab import drive

        drive.mount("/content/drive")
        os.environ["SNCE_HOME"] = "/content/drive/MyDrive/snce-runs"
    p = get_profile(profile)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)"
    model = p.model if p.pipeline == "model" else "the toy pipeline (offline; SD is not downloaded)"
    print(f"profile {p.name}: {p.notes}\nGPU: {gpu} | model: {model} | run folder: {p.run_dir}")
    added = installed_since(os.environ.get("SNCE_RUNTIME_FILE", "/tmp/snce-runtime.txt"))
    if added is not None:
        print("the install cell added or changed:", ", ".join(added) or "nothing")
    return p


def installed_since(snapshot: str | os.PathLike) -> list[str] | None:
    """Distributions added or changed since `snapshot` (name==version lines); None if there is none."""
    from importlib.metadata import distributions

    path = Path(snapshot)
    if not path.exists() or not _installed_after(path):
        return None
    # pip and importlib.metadata may spell a name differently (case, - or _): compare normalised
    before = {_norm(line) for line in path.read_text().split()}
    now = {_norm(f"{d.metadata['Name']}=={d.version}") for d in distributions() if d.metadata["Name"]}
    return sorted(now - before, key=str.lower)


def _installed_after(snapshot: Path) -> bool:
    """Whether this environment's snce was installed after `snapshot` was taken: the install cell writes
    the snapshot, then installs snce. A snapshot older than the snce here (a checkout set up later, or
    another environment's file left in /tmp) says nothing about what this kernel's install cell did."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        info = getattr(distribution("snce"), "_path", None)  # its .dist-info folder, written by the install
    except PackageNotFoundError:
        return False
    return info is not None and Path(info).exists() and Path(info).stat().st_mtime >= snapshot.stat().st_mtime


def _norm(pin: str) -> str:
    return pin.lower().replace("_", "-")
