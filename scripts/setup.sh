#!/usr/bin/env bash
# Create .venv with the CPU build of torch (unless a GPU build is wanted) and install snce with what it
# declares; SNCE_EXTRAS=dev adds the test and lab tools (`make test`, `make lab`) and open_clip_torch's
# byte-pair file (installed without its dependencies) for SD v1.4's tokenizer in the hub-shaped cache.
# Usage: [SNCE_EXTRAS=dev] bash scripts/setup.sh [extra pip args]. Idempotent: a finished .venv is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${SNCE_EXTRAS:-}
ready=.venv/.snce-ready${EXTRAS:+-$EXTRAS}
if [ -f "$ready" ] && .venv/bin/python -c "import snce_lib" 2>/dev/null; then
  case ",$EXTRAS," in
    *,dev,*) .venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('open_clip') is None)" \
      2>/dev/null && exit 0 ;;  # a dev .venv from before open_clip_torch was added gets it below
    *) exit 0 ;;
  esac
fi
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), "snce needs Python 3.10+"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip >/dev/null 2>&1 || true
# torch first, so nothing later pulls a multi-GB CUDA build onto a CPU-only machine.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if $PIP install -q --no-index --no-deps "torch==2.13.0" 2>/dev/null; then
    $PIP install -q "torch==2.13.0"            # a local CPU wheel was found; add its dependencies
  else
    $PIP install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
      || $PIP install -q "torch==2.13.0"
  fi
fi
$PIP install -q -e ".${EXTRAS:+[$EXTRAS]}" "$@"
# The tests rebuild SD v1.4's tokenizer from CLIP's byte-pair file, which ships in open_clip_torch; only its
# files are needed, and its dependencies would pull torchvision (and with it, maybe another torch).
case ",$EXTRAS," in *,dev,*) $PIP install -q --no-deps "open_clip_torch>=2.20" ;; esac
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1 || true
touch "$ready"
echo "snce is set up in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
