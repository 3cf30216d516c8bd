# netguard: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv from pyproject.toml and install what they need themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo bench lint system-deps clean native

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools>=77'
	NETGUARD_PURE=1 $(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The WAF's per-request path compiled to C by mypyc (setup.py), in place beside its sources; rebuilt
# when a source changes (an import of a stale build runs the sources: waf/_native.py).
# NETGUARD_PURE=1 make test: no build, the sources run.
ifeq ($(NETGUARD_PURE),1)
NATIVE :=
else
NATIVE := waf/_native.json
endif

waf/_native.json: $(STAMP) setup.py $(wildcard waf/*.py)
	$(PY) setup.py -q build_ext --inplace

native: $(NATIVE)

# Debian packages the lab and the browser tests use (installed only when root and missing).
system-deps:
	@bash scripts/system-deps.sh

test: $(STAMP) $(NATIVE) system-deps
	$(PY) -m pytest -q

demo: $(STAMP) $(NATIVE) system-deps
	$(VENV)/bin/netguard demo

bench: $(STAMP) $(NATIVE)
	$(PY) bench/policy_scale.py

# ruff and mypy, both configured in pyproject.toml; CI fails on either.
lint: $(STAMP)
	$(VENV)/bin/ruff check netguard policygen waf visualizer tests bench setup.py
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info waf/*.so waf/_native.json
