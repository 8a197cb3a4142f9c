PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck clean stress bench
STRESS_SECONDS ?= 180

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,dask]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py
	$(PY) examples/quickstart.py

test: $(STAMP)
	$(PY) -m pytest

BENCH_VENV := bench/.venv
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV) || python3 -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet -e . -r bench/requirements.txt
	touch $(BENCH_STAMP)

# The peers and the harness live in their own environment; not part of `make test`.
bench: $(BENCH_STAMP)
	$(BENCH_PY) bench/run.py $(BENCH_ARGS)
	$(BENCH_PY) bench/parallel_speedup.py --out docs/parallel.md
	$(BENCH_PY) bench/code_modes.py --write-docs

stress: $(STAMP)
	$(PY) tests/stress.py --seconds $(STRESS_SECONDS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples bench
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) $(BENCH_VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
