"""Every internal link and anchor in README.md and docs/**/*.md resolves.

A link is internal when it has no URL scheme: `[text](other.md#section)`, `![img](chart.png)`,
`[label]: ../deploy/k8s/` or an HTML `href`/`src`. Its path must exist inside the repository;
an anchor into a Markdown file must name one of its headings (slugged the way GitHub renders
them) or an explicit `<a id>`/`<a name>`. Links inside code blocks and code spans are not links.
External URLs are not fetched: the tests run offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); target may be <...>, may carry a "title".
_INLINE = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+[\"'(].*?[\"')])?\s*\)"
)
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_HTML = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
_HTML_ANCHOR = re.compile(r"""<a\s[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str


def prose_lines(text: str, *, blank_code_spans: bool = True) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, code spans blanked out by default."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            continue
        if blank_code_spans:
            line = _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        out.append((number, line))
    return out


def links_in(path: Path) -> list[Link]:
    links: list[Link] = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        targets = [m.group(1) for m in _INLINE.finditer(line)]
        targets += [m.group(1) for m in _REFERENCE.finditer(line)]
        targets += [m.group(1) for m in _HTML.finditer(line)]
        links += [Link(path, number, t.strip("<>")) for t in targets]
    return links


def slugify(heading: str) -> str:
    """GitHub's heading anchor: plain text, lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links/images -> their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("`", "").replace("*", "")  # code and emphasis markers render as text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors_of(path: Path) -> frozenset[str]:
    text = path.read_text(encoding="utf-8")
    anchors: set[str] = set()
    counts: dict[str, int] = {}
    previous: str | None = None
    for _, line in prose_lines(text, blank_code_spans=False):
        anchors.update(m.group(1) for m in _HTML_ANCHOR.finditer(line))
        heading: str | None = None
        atx = _ATX.match(line)
        if atx:
            heading = atx.group(2) or ""
        elif previous and previous.strip() and _SETEXT.match(line) and not _ATX.match(previous):
            heading = previous.strip()
        if heading is not None:
            slug = slugify(heading)
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
            previous = None
        else:
            previous = line
    return frozenset(anchors)


def check(link: Link, root: Path = ROOT) -> str | None:
    """Why the link is broken, or None when it resolves (external links are not checked)."""
    target = link.target
    if not target or _SCHEME.match(target) or target.startswith("//"):
        return None
    path_part, _, anchor = target.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    if not path_part:
        resolved = link.source
    elif path_part.startswith("/"):
        resolved = root / path_part.lstrip("/")
    else:
        resolved = link.source.parent / path_part
    resolved = Path(*resolved.parts).resolve()
    if not resolved.is_relative_to(root.resolve()):
        return "points outside the repository"
    if not resolved.exists():
        return "no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors_of(resolved):
        return f"no heading #{anchor} in {resolved.relative_to(root.resolve())}"
    return None


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for link in links_in(path):
        reason = check(link, root)
        if reason:
            problems.append(f"{path.relative_to(root)}:{link.line}: ({link.target}) {reason}")
    return problems


def documents() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md"))
    readme = ROOT / "README.md"
    return ([readme] if readme.exists() else []) + docs


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_internal_links_resolve(path: Path) -> None:
    assert broken_links(path) == []


def test_every_page_is_reachable_from_the_index() -> None:
    """A page no link leads to is lost: docs/index.md reaches all of docs/ (but docs/dev/)."""
    start = (ROOT / "docs" / "index.md").resolve()
    seen, todo = {start}, [start]
    while todo:
        page = todo.pop()
        for link in links_in(page):
            if check(link) is not None or _SCHEME.match(link.target) or not link.target:
                continue
            path_part = unquote(link.target.partition("#")[0].split("?", 1)[0])
            target = (page.parent / path_part).resolve() if path_part else page
            if target.suffix == ".md" and target not in seen:
                seen.add(target)
                todo.append(target)
    pages = {p.resolve() for p in (ROOT / "docs").rglob("*.md")}
    dev = (ROOT / "docs" / "dev").resolve()
    unreachable = sorted(
        str(p.relative_to(ROOT.resolve())) for p in pages - seen if not p.is_relative_to(dev)
    )
    assert unreachable == [], "link these pages from docs/index.md (or a page it links to)"


def test_docs_exist() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in documents()}
    assert {"docs/index.md", "docs/quickstart.md", "docs/kubernetes.md"} <= names


# --------------------------------------------------------------------------------------------
# The checker itself, on documents written for the purpose.


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "docs" / "other.md").write_text(
        "# Other page\n\n## Draining: step 1 (TERM)\n\n## Setup\n\n## Setup\n\n"
        'Probes `/-/readyz`\n===\n\n<a id="custom-anchor"></a>\n\n## `forkloop serve` options\n'
    )
    return tmp_path


def problems_for(site: Path, body: str) -> list[str]:
    page = site / "docs" / "page.md"
    page.write_text(body)
    anchors_of.cache_clear()
    return broken_links(page, site)


@pytest.mark.parametrize(
    "body",
    [
        "[ok](other.md)",
        "[ok](other.md#other-page)",
        "[ok](other.md#draining-step-1-term)",
        "[dup](other.md#setup-1)",
        "[setext](other.md#probes--readyz)",
        "[html](other.md#custom-anchor)",
        "[code](other.md#forkloop-serve-options)",
        "[dir](../deploy/)",
        "[file](../deploy/Dockerfile)",
        "[root](/deploy/Dockerfile)",
        "[self](#title)\n\n# Title\n",
        "[ref]\n\n[ref]: other.md#setup",
        "[external](https://example.com/missing.md)",
        "[mail](mailto:a@example.com)",
        "```\n[not a link](missing.md)\n```",
        "Use `[x](missing.md)` literally.",
        '<a href="other.md#setup">html link</a>',
        '[titled](other.md "Other page")',
        "[encoded](../deploy/Docker%66ile)",
    ],
)
def test_checker_accepts(site: Path, body: str) -> None:
    assert problems_for(site, body) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[missing](missing.md)", "no such file"),
        ("[anchor](other.md#nope)", "no heading #nope"),
        ("[dup](other.md#setup-2)", "no heading #setup-2"),
        ("[self](#nowhere)\n\n# Title\n", "no heading #nowhere"),
        ("![img](chart.png)", "no such file"),
        ("[ref]\n\n[ref]: sub/none.md", "no such file"),
        ('<img src="pic.png">', "no such file"),
        ("[escape](../../../etc/passwd)", "outside the repository"),
        ("~~~\ncode\n~~~\n[after a fence](gone.md)", "no such file"),
    ],
)
def test_checker_rejects(site: Path, body: str, reason: str) -> None:
    problems = problems_for(site, body)
    assert len(problems) == 1
    assert reason in problems[0]
    assert problems[0].startswith("docs/page.md:")
