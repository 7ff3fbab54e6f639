"""Each cell's peak memory, measured inside the notebook's kernel: an IPython extension that the headless
runner loads (`--ext snce_lib.workbook.cellstats`), so the notebooks themselves carry no measuring code.

Before a cell it resets the kernel's peak resident memory (Linux: writing 5 to /proc/self/clear_refs
resets VmHWM) and, when the kernel has already started CUDA, torch's peak-memory counters; after the cell
it appends one JSON line to $SNCE_CELL_STATS: the cell's execution count, its peak and final RSS and its
peak GPU memory (allocated and reserved by torch). Where the peak cannot be reset (no /proc), the value
is the kernel's peak so far and `rss_peak_is_cell` says so.

With $SNCE_GPU_MEMORY_CAP_GB set (say 15, a T4's memory), the kernel caps what torch may allocate on its
GPU at that much (`torch.cuda.set_per_process_memory_fraction`), so a rehearsal on a larger GPU fails
where a T4 would run out.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

_STATE = {"reset": False, "t0": 0.0}


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            m = re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def _cuda():
    torch = sys.modules.get("torch")  # never import torch (or start CUDA) for the measurement's sake
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch
    return None


def reset_peaks() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _STATE["reset"] = True
    except OSError:
        _STATE["reset"] = False
    torch = _cuda()
    if torch is not None:
        torch.cuda.reset_peak_memory_stats()
    _STATE["t0"] = time.perf_counter()


def read_peaks() -> dict:
    """{"rss_peak", "rss_now", "gpu_peak", "gpu_reserved_peak"} in bytes (GPU: None without CUDA)."""
    hwm, rss = _status_kb("VmHWM"), _status_kb("VmRSS")
    if hwm is None:  # no /proc: the process's peak so far (kB on Linux, bytes on macOS)
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hwm = peak // 1024 if sys.platform == "darwin" else peak
    torch = _cuda()
    return {
        "rss_peak": hwm * 1024,
        "rss_now": rss * 1024 if rss is not None else None,
        "rss_peak_is_cell": _STATE["reset"],
        "gpu_peak": int(torch.cuda.max_memory_allocated()) if torch else None,
        "gpu_reserved_peak": int(torch.cuda.max_memory_reserved()) if torch else None,
        "gpu_name": torch.cuda.get_device_name(0) if torch else None,
    }


def cap_gpu_memory(gigabytes: float) -> float | None:
    """Let torch allocate at most `gigabytes` on GPU 0; returns the fraction set (None without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return None
    total = torch.cuda.get_device_properties(0).total_memory
    fraction = min(1.0, gigabytes * 1e9 / total)
    torch.cuda.set_per_process_memory_fraction(fraction, 0)
    return fraction


def load_ipython_extension(ip) -> None:
    if os.environ.get("SNCE_GPU_MEMORY_CAP_GB"):
        cap_gpu_memory(float(os.environ["SNCE_GPU_MEMORY_CAP_GB"]))
    path = os.environ.get("SNCE_CELL_STATS")
    if not path:
        return

    def pre(*_):
        reset_peaks()

    def post(result=None, *_):
        row = {"execution_count": getattr(result, "execution_count", None), **read_peaks()}
        row["kernel_seconds"] = round(time.perf_counter() - _STATE["t0"], 3)
        with open(path, "a") as fh:
            fh.write(json.dumps(row) + "\n")

    ip.events.register("pre_run_cell", pre)
    ip.events.register("post_run_cell", post)
