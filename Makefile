# The README's two commands: `make workbook` (the main job, offline) and `make test`; `make lab`
# opens the notebooks in JupyterLab with the workbook's kernel.
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Runs of `make workbook` and `make lab` go to ./runs (elsewhere the default is ./snce-runs).
export SNCE_HOME ?= $(CURDIR)/runs

.PHONY: setup setup-dev workbook test lint lab lab-check data clean

# the workbook needs only what the project declares; tests and the lab add the dev extra
setup:
	bash scripts/setup.sh

setup-dev:
	SNCE_EXTRAS=dev bash scripts/setup.sh

workbook: setup
	$(PY) -m snce_lib workbook --profile offline

test: lint
	$(PY) -m pytest -q tests

# ruff: lint and format, over the library, tests, scripts, benchmarks and the .py notebooks
lint: setup-dev
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

lab: setup-dev
	.venv/bin/jupyter lab notebooks

# notebook 02 in JupyterLab in headless Chromium (after `make workbook`); screenshots in runs/lab_check
lab-check: setup-dev
	$(PY) scripts/lab_check.py --out runs/lab_check

data: setup
	$(PY) scripts/make_data.py

clean:
	rm -rf runs

