"""The demo's one HTML page, rendered per request so that asset URLs carry their version.

Owns: the page's markup (a ``string.Template``; every substituted value is HTML-escaped) and
the ``GET /`` handler. The stylesheet, script and logo are package files under ``static/``,
linked with ``url_for(filename=..., append_version=True)``: the URL changes whenever a file's
content does, so a browser never runs a stale script against a newer server.

Imports: ``forkloop.web`` and the demo's state.
"""

from __future__ import annotations

import html
from string import Template

from forkloop import web

from .state import STATE

__all__ = ["index_handler", "render"]

_PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>forkloop demo</title>
<link rel="icon" href="$logo">
<link rel="stylesheet" href="$css">
</head>
<body data-chat-path="$chat" data-upload-url="$upload" data-stats-url="$stats">
<header>
  <img src="$logo" alt="" width="40" height="40">
  <h1>forkloop demo</h1>
  <p id="served-by" data-slot="$slot" data-pid="$pid">page served by worker $worker</p>
</header>
<main>
<section id="chat">
  <h2>WebSocket chat</h2>
  <p class="hint">A room lives inside one worker process: only connections that landed on the
  same worker meet in it.</p>
  <form id="chat-join">
    <label>room <input id="chat-room" value="lobby" pattern="[A-Za-z0-9_\\-]{1,32}"
      required></label>
    <label>name <input id="chat-name" value="guest" maxlength="32"></label>
    <button id="chat-connect" type="submit">join</button>
  </form>
  <p id="chat-status" class="status">connecting...</p>
  <ol id="chat-log" aria-live="polite"></ol>
  <form id="chat-form">
    <input id="chat-input" placeholder="say something" maxlength="2000" autocomplete="off">
    <button id="chat-send" type="submit" disabled>send</button>
  </form>
</section>
<section id="upload">
  <h2>Streaming upload</h2>
  <p class="hint">Streams through <code>request.multipart()</code> and is hashed as it arrives;
  nothing is kept.</p>
  <form id="upload-form">
    <input id="upload-file" type="file" required>
    <button id="upload-button" type="submit">upload</button>
  </form>
  <progress id="upload-progress" max="100" value="0"></progress>
  <span id="upload-percent">0%</span>
  <dl id="upload-result"></dl>
</section>
<section id="stats">
  <h2>This server, from its own metrics</h2>
  <p class="hint">Read from <code>$metrics_url</code> by the worker serving each poll; rates
  over the last few seconds.</p>
  <dl class="numbers">
    <dt>requests/s</dt><dd id="stats-rate">-</dd>
    <dt>p50 latency</dt><dd id="stats-p50">-</dd>
    <dt>p99 latency</dt><dd id="stats-p99">-</dd>
    <dt>mean latency</dt><dd id="stats-mean">-</dd>
    <dt>open WebSockets</dt><dd id="stats-ws">-</dd>
    <dt>requests served</dt><dd id="stats-total">-</dd>
  </dl>
  <svg id="stats-spark" viewBox="0 0 300 60" preserveAspectRatio="none" role="img"
    aria-label="requests per second, last minute"><polyline points=""/></svg>
  <table id="stats-workers"><thead><tr><th>worker slot</th><th>requests/s</th></tr></thead>
  <tbody></tbody></table>
  <p id="stats-status" class="status">waiting for the first scrape...</p>
</section>
</main>
<footer>forkloop $version &middot; no external resources: everything here ships in the
package</footer>
<script src="$js"></script>
</body>
</html>
""")


def render(request: web.Request) -> str:
    app = request.app
    state = app[STATE]
    identity = state.identity
    static = app.router["static"]

    def asset(name: str) -> str:
        return str(static.url_for(filename=name, append_version=True))

    from forkloop import __version__

    values = {
        "css": asset("demo.css"),
        "js": asset("demo.js"),
        "logo": asset("logo.svg"),
        "chat": str(app.router["chat"].url_for()),
        "upload": str(app.router["upload"].url_for()),
        "stats": str(app.router["stats"].url_for()),
        "slot": "" if identity.slot is None else str(identity.slot),
        "pid": str(identity.pid),
        "worker": identity.label,
        "metrics_url": state.stats.url,
        "version": __version__,
    }
    return _PAGE.substitute({key: html.escape(value) for key, value in values.items()})


async def index_handler(request: web.Request) -> web.Response:
    return web.Response(
        text=render(request),
        content_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )
