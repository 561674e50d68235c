# forkloop developer commands. A fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint typecheck pytest bench clean compiled pure

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pure Python for development: an in-place mypyc build would shadow edited .py files.
	FORKLOOP_NO_EXTENSIONS=1 $(PY) -m pip install -q -e '.[test,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

# The demo app under the supervisor: 2 workers on http://127.0.0.1:8080, metrics on :9100.
demo: $(STAMP)
	$(PY) -m forkloop.demo

lint: $(STAMP)
	$(PY) -m ruff check forkloop tests bench examples
	$(PY) -m ruff format --check forkloop

typecheck: $(STAMP)
	$(PY) -m mypy --strict forkloop

# Two workers: the suite is mostly waiting on sockets and subprocesses (2 cores in CI).
pytest: $(STAMP)
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

# The hot path compiled by mypyc, in place (setup.py); `make pure` goes back to the .py files.
compiled: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

pure:
	find forkloop -name '*.so' -delete

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
