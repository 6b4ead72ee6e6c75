# Two set-up commands: `make demo` and `make test`. Both build .venv from scratch if needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU wheel of torch that lies on this platform's disk; an unpinned torch would pull a
# multi-GB CUDA build. GPU users: see README ("Installing on a GPU machine").
TORCH  ?= torch==2.13.0

.PHONY: demo test docs lint bench clean

$(VENV)/.base:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	touch $@

$(VENV)/.demo: $(VENV)/.base setup.cfg pyproject.toml
	$(PIP) install -q "$(TORCH)" -e ".[ml,chgnet]"
	touch $@

$(VENV)/.all: $(VENV)/.base setup.cfg pyproject.toml
	$(PIP) install -q "$(TORCH)" -e ".[all,dev]"
	touch $@ $(VENV)/.demo

demo: $(VENV)/.demo
	$(VENV)/bin/crystalgen demo --out demo-output

test: $(VENV)/.all
	$(PY) -m pytest -q

# the docs site (Sphinx + MyST: docs/*.md as pages, API reference from the docstrings);
# warnings are errors
docs: $(VENV)/.all
	rm -rf docs/_build docs/generated
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

lint: $(VENV)/.all
	$(VENV)/bin/ruff check ase_crystalgen tests examples benchmarks

bench: $(VENV)/.all
	$(PY) benchmarks/bench_ace.py

clean:
	rm -rf $(VENV) demo-output build *.egg-info docs/_build docs/generated
