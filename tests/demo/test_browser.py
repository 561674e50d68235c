"""The demo in a real browser: Debian's headless Chromium driven by Playwright.

The demo runs as ``python -m forkloop.demo`` (two workers, metrics on) on free loopback ports;
the browser loads the page, sends a chat message and sees it come back, uploads 5 MB and
checks the SHA-256 the server reports, and waits for the metrics panel to show a non-zero
request rate and the open chat socket. A full-page screenshot is saved under the test's tmp
dir (``demo.png``).

Skipped, with the reason, where ``/usr/bin/chromium`` or the ``playwright`` package is absent.
Playwright never downloads a browser here: it launches Debian's binary (``executable_path``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from demo_helpers import Demo

CHROMIUM = Path(os.environ.get("FORKLOOP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_demo_page_in_chromium(demo: Demo, tmp_path: Path) -> None:
    upload = tmp_path / "five-megabytes.bin"
    upload.write_bytes(os.urandom(5 * 1024 * 1024))
    expected = hashlib.sha256(upload.read_bytes()).hexdigest()
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    shot = tmp_path / "demo.png"
    console_errors: list[str] = []

    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))

            # The page loads, from a worker of this demo, with versioned assets.
            response = page.goto(demo.url + "/")
            assert response is not None
            assert response.status == 200
            assert page.title() == "forkloop demo"
            served = page.locator("#served-by")
            assert served.get_attribute("data-slot") in ("0", "1")
            assert int(served.get_attribute("data-pid") or 0) in demo.workers
            stylesheet = page.locator("link[rel=stylesheet]").get_attribute("href") or ""
            assert stylesheet.startswith("/static/demo.css?v=")
            # The stylesheet applied: the header got its colour from demo.css.
            header_bg = page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor")
            assert header_bg == "rgb(29, 53, 87)"

            # Chat: the socket says which worker slot holds it; a message round-trips.
            status = page.locator("#chat-status")
            sync_api.expect(status).to_contain_text("on worker slot", timeout=20_000)
            assert status.get_attribute("data-slot") in ("0", "1")
            assert int(status.get_attribute("data-pid") or 0) in demo.workers
            page.fill("#chat-input", "hello from chromium")
            page.click("#chat-send")
            echoed = page.locator('#chat-log li.message[data-text="hello from chromium"]')
            sync_api.expect(echoed).to_have_count(1, timeout=20_000)
            sync_api.expect(echoed).to_contain_text("via slot")

            # Upload: 5 MB through XHR with progress; the server's SHA-256 is the file's.
            page.set_input_files("#upload-file", str(upload))
            page.click("#upload-button")
            result = page.locator("#upload-result[data-sha256]")
            sync_api.expect(result).to_have_count(1, timeout=60_000)
            assert result.get_attribute("data-sha256") == expected
            assert result.get_attribute("data-size") == str(5 * 1024 * 1024)
            assert page.locator("#upload-progress").get_attribute("value") == "100"
            sync_api.expect(page.locator("#upload-check")).to_have_text(
                "matches the browser's own SHA-256"
            )

            # Metrics panel: a non-zero request rate computed from this server's /metrics.
            page.wait_for_function(
                "() => Number(document.getElementById('stats-rate').dataset.value || 0) > 0",
                timeout=45_000,
            )
            rate = float(page.locator("#stats-rate").get_attribute("data-value") or 0)
            assert rate > 0
            assert page.locator("#stats-p50").inner_text() != "-"
            sync_api.expect(page.locator("#stats-status")).not_to_have_class("status error")
            # The chat socket is open: the panel's WebSocket gauge (from /metrics) sees it.
            page.wait_for_function(
                "() => Number(document.getElementById('stats-ws').textContent) >= 1",
                timeout=30_000,
            )

            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()

    assert shot.stat().st_size > 10_000
    assert console_errors == []
