"""Run a Python script with torch's GPU memory capped at a T4's 15 GB, so that a larger GPU fails
where a T4 would run out of memory.

    python benchmarks/t4_cap.py SCRIPT [ARGS ...]        (SNCE_GPU_MEMORY_CAP_GB: another cap)
"""

from __future__ import annotations

import os
import runpy
import sys

from snce_lib.workbook.cellstats import cap_gpu_memory

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python benchmarks/t4_cap.py SCRIPT [ARGS ...]")
    gb = float(os.environ.get("SNCE_GPU_MEMORY_CAP_GB", "15"))
    fraction = cap_gpu_memory(gb)
    print(f"t4_cap: {'no CUDA device' if fraction is None else f'GPU memory capped at {gb:g} GB ({fraction:.1%})'}")
    script, sys.argv = sys.argv[1], sys.argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
