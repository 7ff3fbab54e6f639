#!/usr/bin/env bash
# The Colab path without Colab: a "runtime" venv with torch and the leg's transformers/diffusers/widgets
# preinstalled (as Colab ships them), the workbook installed into it by notebook 01's own install cell
# from a wheel built from this checkout (not editable), then all five notebooks run under the
# colab-smoke profile from a working directory outside the repository, against a hub-shaped cache.
# With a third argument `sdxl`, notebooks 01-04 run a second time with SNCE_MODEL set to SDXL base's id
# (its hub-shaped stand-in: two text encoders, pooled embeddings), in the same runtime, with SD-Turbo as
# the look model (whose encoder is not SDXL's: the notebooks must say so and draw with SDXL); with `models`,
# only notebooks 01-04 run (chapter 00 uses neither transformers nor diffusers: one leg runs it).
# Usage: bash .ci/colab_smoke.sh PINS_FILE WORK_DIR [sdxl|models]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
pins=$repo/$1
work=$2
rm -rf "$work" && mkdir -p "$work/wheel" "$work/cwd"
start=$(date +%s)
"$repo/.venv/bin/python" -m pip wheel -q --no-deps -w "$work/wheel" "$repo"
wheel=$(ls "$work"/wheel/snce-*.whl)
python3 -m venv "$work/venv"
py=$work/venv/bin/python
$py -m pip install -q --upgrade pip >/dev/null 2>&1 || true
$py -m pip install -q --no-index --no-deps "torch==2.13.0" 2>/dev/null && $py -m pip install -q "torch==2.13.0" \
  || $py -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
$py -m pip install -q -r "$pins"
before=$($py -m pip freeze | grep -iE '^(torch|transformers|diffusers|ipywidgets)==' | sort)
# Notebook 01's first code cell, verbatim: the install cell users run on Colab.
$py - "$repo/notebooks/01_train_sae.ipynb" > "$work/install_cell.py" <<'PY'
import json, sys
cells = [c for c in json.load(open(sys.argv[1]))["cells"] if c["cell_type"] == "code"]
print("".join(cells[0]["source"]))
PY
(cd "$work/cwd" && SNCE_REPO=$wheel SNCE_RUNTIME_FILE=/tmp/snce-runtime.txt $py "$work/install_cell.py")
after=$($py -m pip freeze | grep -iE '^(torch|transformers|diffusers|ipywidgets)==' | sort)
if [ "$before" != "$after" ]; then
  echo "colab-smoke: the install cell changed the runtime's packages:"; diff <(echo "$before") <(echo "$after"); exit 1
fi
echo "colab-smoke: installed $(basename "$wheel"); runtime kept: $(echo $after)"
$py -m ipykernel install --sys-prefix --name python3 >/dev/null
# SD v1.4's tokenizer in the cache is rebuilt from the byte-pair file open_clip_torch ships: its files only
$py -m pip install -q --no-deps "open_clip_torch>=2.20"
families=$([ "${3:-}" = sdxl ] && echo "--families sdxl,sd-turbo" || true)
$py -m snce_lib.models.hubcache "$work/hf" $families >"$work/hubcache.log" 2>&1 || { cat "$work/hubcache.log"; exit 1; }
installed=$(cd "$work/cwd" && $py -c 'import snce_lib, os; print(os.path.dirname(snce_lib.__file__))')
case "$installed" in "$repo"*) echo "colab-smoke: imported the checkout, not the wheel"; exit 1;; esac
cd "$work/cwd"
HF_HOME=$work/hf HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SNCE_HOME=$work/runs SNCE_DATA_DIR=$repo/../shared/data \
  "$work/venv/bin/snce" workbook --profile colab-smoke --notebooks "$repo/notebooks" \
  $([ "${3:-}" = models ] && echo "--only 01_train_sae 02_feature_atlas 03_neuron_selection 04_erasure_eval" || true)
echo "colab-smoke ($1): passed in $(( $(date +%s) - start )) s"
if [ "${3:-}" = sdxl ]; then
  t=$(date +%s)
  HF_HOME=$work/hf HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SNCE_HOME=$work/runs-sdxl SNCE_DATA_DIR=$repo/../shared/data \
    SNCE_MODEL=stabilityai/stable-diffusion-xl-base-1.0 SNCE_LOOK_MODEL=stabilityai/sd-turbo "$work/venv/bin/snce" workbook --profile colab-smoke \
    --notebooks "$repo/notebooks" --only 01_train_sae 02_feature_atlas 03_neuron_selection 04_erasure_eval
  echo "colab-smoke ($1, SDXL, notebooks 01-04): passed in $(( $(date +%s) - t )) s"
fi
