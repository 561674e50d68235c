"""forkloop.workers resolves the gunicorn classes lazily; option mapping and format checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("gunicorn")

from gunicorn.config import Config

from forkloop.core.http.limits import Limits
from forkloop.workers import gunicorn as gworkers


def test_importing_forkloop_workers_does_not_import_gunicorn() -> None:
    code = (
        "import sys, forkloop.workers as w\n"
        "assert 'gunicorn' not in sys.modules, 'gunicorn imported eagerly'\n"
        "assert w.GunicornWebWorker.__name__ == 'GunicornWebWorker'\n"
        "assert w.GunicornUVLoopWebWorker.__name__ == 'GunicornUVLoopWebWorker'\n"
        "assert 'gunicorn' in sys.modules\n"
        "try:\n    w.Nope\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_http2_is_a_configuration_error() -> None:
    # gunicorn itself refuses h2 unless the h2 package is installed; with it, the worker must.
    cfg = Config()
    log = SimpleNamespace(access_log_enabled=False)
    worker = gworkers.GunicornWebWorker(1, os.getpid(), [], None, 30, cfg, log)
    try:
        assert worker._config_problem() is None
        cfg.set("http_protocols", "h2,h1")
        problem = worker._config_problem()
        assert problem is not None
        assert "speaks HTTP/1.1 only" in problem
        log.access_log_enabled = True
        cfg.set("access_log_format", "%(nope)s")
        assert "%(nope)s is not one of gunicorn's atoms" in (worker._config_problem() or "")
    finally:
        worker.tmp.close()


def test_limits_follow_gunicorn_semantics() -> None:
    cfg = Config()
    limits = gworkers.limits_from_config(cfg)
    assert (limits.max_request_line_bytes, limits.max_header_count) == (4094, 100)
    assert (limits.max_header_field_bytes, limits.keepalive_timeout_s) == (8190, 2.0)
    assert limits.max_header_bytes == Limits().max_header_bytes
    for name, value in [
        ("limit_request_line", "0"),
        ("limit_request_fields", "0"),
        ("limit_request_field_size", "0"),
        ("keepalive", "7"),
    ]:
        cfg.set(name, value)
    limits = gworkers.limits_from_config(cfg)
    assert limits.max_request_line_bytes == 1024 * 1024  # gunicorn's "unlimited"
    assert limits.max_header_count == 32768
    assert limits.max_header_field_bytes == 8190
    assert limits.keepalive_timeout_s == 7.0
    cfg.set("limit_request_line", "9000")
    assert gworkers.limits_from_config(cfg).max_request_line_bytes == 8190


@pytest.mark.parametrize(
    "fmt",
    [
        Config().access_log_format,
        '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(B)s %(L)s %(D)s %(M)s %(T)s %(p)s %(m)s %(U)s %(q)s',
        "%({X-Forwarded-For}i)s %({Content-Length}o)s %({HTTP_USER_AGENT}e)s %({raw_uri}e)s",
        "%(T)d %(D)08d 100%%",
    ],
)
def test_gunicorn_formats_compile(fmt: str) -> None:
    gworkers.compile_access_log_format(fmt)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("%(x)s", "%(x)s is not one of gunicorn's atoms"),
        ("%({}i)s", "is not one of gunicorn's atoms"),
        ("%({wsgi.errors}e)s", "'WSGI.ERRORS' has no forkloop equivalent"),
        ("%(h)s %", "is malformed"),
        ("%(h)d", "is malformed"),
    ],
)
def test_bad_formats_are_rejected(fmt: str, message: str) -> None:
    with pytest.raises(gworkers.AccessLogFormatError, match=re.escape(message)):
        gworkers.compile_access_log_format(fmt)
