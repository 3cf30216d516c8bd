# netguard: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv from pyproject.toml and install what they need themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo bench lint system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian packages the lab and the browser tests use (installed only when root and missing).
system-deps:
	@bash scripts/system-deps.sh

test: $(STAMP) system-deps
	$(PY) -m pytest -q

demo: $(STAMP) system-deps
	$(VENV)/bin/netguard demo

bench: $(STAMP)
	$(PY) bench/policy_scale.py

# ruff and mypy, both configured in pyproject.toml; CI fails on either.
lint: $(STAMP)
	$(VENV)/bin/ruff check netguard policygen waf visualizer tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info
