# cirlib: every target creates the virtual environment first if it is missing.
#   make demo     run every notebook headless on the synthetic dataset (executed copies in build/demo, figures in figures/)
#   make test     unit tests, then nbval on every notebook in FAST mode
#   make lab      JupyterLab on notebooks/ with this project's environment as the kernel (registers it, see kernel)
#   make kernel   register this environment as the Jupyter kernel "cirlib" for any JupyterLab (user folder)
#   make results  train every method on 3 seeds with the same budget (results/)
#   make timings  time make demo and make results on fresh clones (benchmarks/results/targets.json)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cirlib-installed
export TQDM_DISABLE ?=

.PHONY: install test unit nbval demo lab kernel results timings clean student

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[notebooks,test]"
	@touch $(STAMP)

install: $(STAMP)

unit: $(STAMP)
	TQDM_DISABLE=1 $(PY) -m pytest tests -q -p no:cacheprovider

nbval: $(STAMP)
	$(PY) -m cirlib.notebooks check-stripped notebooks
	rm -rf build/nbval
	$(PY) -m cirlib.notebooks prepare-ci notebooks build/nbval
	TQDM_DISABLE=1 $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
	    -p cirlib.nbval_figures -p no:cacheprovider -q build/nbval

test: unit nbval

demo: $(STAMP)
	$(PY) -m cirlib.notebooks demo notebooks build/demo --figures figures --runs results/runs

results: $(STAMP)
	$(PY) -m cirlib.results --out results

timings: $(STAMP)
	$(PY) benchmarks/time_targets.py --targets demo results

lab: kernel
	cd notebooks && ../$(VENV)/bin/jupyter lab

kernel: $(STAMP)
	$(PY) -m cirlib.notebooks kernel

student: $(STAMP)
	$(PY) -m cirlib.notebooks student notebooks build/student

clean:
	rm -rf build .pytest_cache
