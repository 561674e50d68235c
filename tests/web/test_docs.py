"""Every runnable snippet of docs/web/ runs and answers what its ``# test:`` lines say.

A snippet is a ```python block whose first line is ``# docs-snippet``. Lines
``# test: METHOD PATH [body=TEXT] -> STATUS [BODY]`` are requests made in order against the
snippet's ``app`` (or ``init_func(args)`` given by ``# init: init_func ARGS``), served on a real
socket. A ``# docs-snippet: pytest`` block is a test module, run by pytest in a subprocess.
"""

from __future__ import annotations

import re
import shlex
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from forkloop import web
from forkloop.test_utils import TestClient, TestServer

DOCS = Path(__file__).resolve().parents[2] / "docs" / "web"
BLOCK_RE = re.compile(r"```python\n(# docs-snippet.*?)```", re.S)
TEST_RE = re.compile(r"# test: (\w+) (\S+)(?: body=(\S+))? -> (\d{3})(?: (.*))?")


@dataclass
class Snippet:
    page: str
    index: int
    source: str
    kind: str = ""
    tests: list[tuple[str, str, str | None, int, str | None]] = field(default_factory=list)
    init: list[str] | None = None

    @property
    def id(self) -> str:
        return f"{self.page}#{self.index}"


def collect() -> list[Snippet]:
    snippets: list[Snippet] = []
    for page in sorted(DOCS.glob("*.md")):
        for i, match in enumerate(BLOCK_RE.finditer(page.read_text())):
            source = match.group(1)
            first = source.splitlines()[0]
            snippet = Snippet(page.name, i, source, kind=first.partition(":")[2].strip())
            for line in source.splitlines():
                test = TEST_RE.fullmatch(line.strip())
                if test:
                    method, path, body, status, text = test.groups()
                    snippet.tests.append((method, path, body, int(status), text))
                elif line.startswith("# init: "):
                    snippet.init = shlex.split(line.removeprefix("# init: "))
            snippets.append(snippet)
    return snippets


SNIPPETS = collect()
PAGES = {"routing", "handlers", "views", "middlewares", "signals", "data-sharing"}
PAGES |= {"exceptions", "cli", "testing"}


def test_every_guide_page_has_a_runnable_snippet() -> None:
    assert {s.page.removesuffix(".md") for s in SNIPPETS} >= PAGES
    for snippet in SNIPPETS:
        assert snippet.tests or snippet.kind == "pytest", f"{snippet.id} has no # test: line"


def load_app(snippet: Snippet) -> web.Application:
    module = types.ModuleType(f"docs_snippet_{snippet.index}")
    exec(compile(snippet.source, snippet.id, "exec"), module.__dict__)
    if snippet.init is not None:
        func_name, *args = snippet.init
        app = getattr(module, func_name)(args)
    else:
        app = module.__dict__["app"]
    assert isinstance(app, web.Application)
    return app


@pytest.mark.parametrize("snippet", [s for s in SNIPPETS if s.kind != "pytest"], ids=lambda s: s.id)
async def test_snippet_answers_as_documented(snippet: Snippet) -> None:
    async with TestClient(TestServer(load_app(snippet))) as client:
        for method, path, body, status, text in snippet.tests:
            resp = await client.request(method, path, data=body, allow_redirects=True)
            got = await resp.text()
            assert resp.status == status, (snippet.id, method, path, got)
            if text is not None:
                assert got == text, (snippet.id, method, path)


@pytest.mark.slow
@pytest.mark.parametrize("snippet", [s for s in SNIPPETS if s.kind == "pytest"], ids=lambda s: s.id)
def test_pytest_snippet_passes(snippet: Snippet, tmp_path: Path, run_pytest: Any) -> None:
    (tmp_path / "test_snippet.py").write_text(snippet.source)
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
