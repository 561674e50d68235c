# forkloop developer commands. A fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The mypyc-compiled hot path (setup.py), rebuilt in place whenever a source changes, so what
# is tested and benchmarked is what `pip install forkloop` ships. Without a C compiler the build
# falls back to pure Python.
COMPILED := build/.compiled
SOURCES := $(shell find forkloop \( -name '*.py' -o -name '*.c' \) -not -path '*/__pycache__/*') setup.py
# The fallback (FORKLOOP_NO_EXTENSIONS=1: every module from its .py) is tested on the core.
PURE_TESTS := tests/http tests/server tests/web tests/core_web tests/websocket

.PHONY: demo test lint typecheck pytest pytest-pure bench clean compiled pure

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77"
	# The editable install itself builds no extensions; $(COMPILED) does, in place.
	FORKLOOP_NO_EXTENSIONS=1 $(PY) -m pip install -q -e '.[test,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

$(COMPILED): $(STAMP) $(SOURCES)
	$(PY) setup.py -q build_ext --inplace
	mkdir -p build && touch $@

compiled: $(COMPILED)

# Back to the .py files (until the next `make test`, `make demo` or `make bench`).
pure:
	find forkloop -name '*.so' -delete
	rm -f $(COMPILED)

# The demo app under the supervisor: 2 workers on http://127.0.0.1:8080, metrics on :9100.
demo: $(COMPILED)
	$(PY) -m forkloop.demo

lint: $(STAMP)
	$(PY) -m ruff check forkloop tests bench examples
	$(PY) -m ruff format --check forkloop

typecheck: $(STAMP)
	$(PY) -m mypy --strict forkloop

# Two workers: the suite is mostly waiting on sockets and subprocesses (2 cores in CI).
pytest: $(COMPILED)
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

pytest-pure: $(STAMP)
	FORKLOOP_NO_EXTENSIONS=1 $(PY) -m pytest -q -n 2 $(PURE_TESTS)

test: lint typecheck pytest pytest-pure

bench: $(COMPILED)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find forkloop -name '*.so' -delete
