# The README's two commands: `make workbook` (the main job, offline) and `make test`.
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup workbook test data clean

setup:
	bash scripts/setup.sh

workbook: setup
	$(PY) -m snce_lib workbook --profile offline

test: setup
	$(PY) -m pytest -q tests

data: setup
	$(PY) scripts/make_data.py

clean:
	rm -rf runs
