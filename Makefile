# cirlib: every target creates the virtual environment first if it is missing.
#   make demo     run every notebook headless on the synthetic dataset (executed copies in build/demo, figures in figures/)
#   make test     unit tests, nbval on every notebook in FAST mode, then the browser tests
#   make lab      JupyterLab on notebooks/ with this project's environment as the kernel (registers it, see kernel)
#   make kernel   register this environment as the Jupyter kernel "cirlib" for any JupyterLab (user folder)
#   make site     static HTML site of the executed demo notebooks for reading groups (build/site)
#   make slides   one offline reveal.js deck per executed demo notebook (build/slides; needs npm for reveal.js)
#   make handouts regenerate the teaching handouts (docs/teaching) and docs/reconstruction.md's tables from their sources
#   make browser  the browser tests alone: every notebook in JupyterLab in headless Chromium, the site
#   make results  train every method on 3 seeds with the same budget (results/)
#   make timings  time make demo and make results on fresh clones (benchmarks/results/targets.json)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cirlib-installed
# Debian's Chromium, driven by Playwright (Playwright's own browser downloads cannot work offline).
CHROMIUM ?= /usr/bin/chromium
export TQDM_DISABLE ?=

.PHONY: install test unit nbval browser demo lab kernel site site-check slides handouts results timings clean student

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[notebooks,test,site]"
	@touch $(STAMP)

install: $(STAMP)

unit: $(STAMP)
	TQDM_DISABLE=1 $(PY) -m pytest tests -q -p no:cacheprovider --ignore=tests/browser

nbval: $(STAMP)
	$(PY) -m cirlib.tools.notebooks check-stripped notebooks
	rm -rf build/nbval
	$(PY) -m cirlib.tools.notebooks prepare-ci notebooks build/nbval
	TQDM_DISABLE=1 $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
	    -p cirlib.tools.nbval_figures -p no:cacheprovider -q build/nbval

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	    echo "error: $(CHROMIUM) not found; install it (sudo apt-get install -y chromium) or pass CHROMIUM=/path/to/chromium" >&2; \
	    exit 1; \
	fi

# npm fetches reveal.js (pinned in slides/package-lock.json) for the slide decks, from the registry.
NPM ?= $(shell command -v npm || echo /usr/bin/npm)
$(NPM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's npm for the slide decks"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	else \
	    echo "error: npm not found; install it (sudo apt-get install -y npm): the slides need reveal.js from npm" >&2; \
	    exit 1; \
	fi

# The JupyterLab test reuses the FAST runs nbval trained in build/nbval/artifacts when they exist;
# the site test then builds the site from the notebooks the JupyterLab test saved.
browser: $(STAMP) $(CHROMIUM) $(NPM)
	CIRLIB_CHROMIUM=$(CHROMIUM) CIRLIB_BROWSER_REUSE_RUNS=build/nbval/artifacts TQDM_DISABLE=1 \
	    $(PY) -m pytest tests/browser -q -p no:cacheprovider --durations=0

test: unit nbval browser

demo: $(STAMP)
	$(PY) -m cirlib.tools.notebooks demo notebooks build/demo --figures figures --runs results/runs

results: $(STAMP)
	$(PY) -m cirlib.runs.results --out results

timings: $(STAMP)
	$(PY) benchmarks/time_targets.py --targets demo results

site: $(STAMP) $(NPM)
	@for nb in notebooks/[0-9][0-9]_*.ipynb; do \
	    test -f build/demo/$$(basename $$nb) || { echo "build/demo lacks $$(basename $$nb): running make demo first"; \
	                                            $(MAKE) demo || exit 1; break; }; \
	done
	$(PY) -m cirlib.tools.site build --notebooks build/demo --out build/site

slides: $(STAMP) $(NPM)
	@for nb in notebooks/[0-9][0-9]_*.ipynb; do \
	    test -f build/demo/$$(basename $$nb) || { echo "build/demo lacks $$(basename $$nb): running make demo first"; \
	                                            $(MAKE) demo || exit 1; break; }; \
	done
	$(PY) -m cirlib.tools.slides build --notebooks build/demo --out build/slides

# The browser checks of the site, on the one make site built (the teaching pages printed to PDF too).
site-check: site $(CHROMIUM)
	CIRLIB_CHROMIUM=$(CHROMIUM) CIRLIB_SITE_DIR=build/site $(PY) -m pytest tests/browser/test_site.py \
	    tests/browser/test_teaching.py -q -p no:cacheprovider

# After a make demo, record its notebook times for the session plan first:
#   .venv/bin/python -m cirlib.tools.handouts write --demo-timings build/demo/timings.json
handouts: $(STAMP)
	$(PY) -m cirlib.tools.handouts write

lab: kernel
	cd notebooks && ../$(VENV)/bin/jupyter lab

kernel: $(STAMP)
	$(PY) -m cirlib.tools.notebooks kernel

student: $(STAMP)
	$(PY) -m cirlib.tools.notebooks student notebooks build/student

clean:
	rm -rf build .pytest_cache
