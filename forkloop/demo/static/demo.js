// forkloop demo page: chat over a WebSocket, an XHR upload with progress, a metrics panel.
// Plain browser JavaScript, no build step and no external resources.
"use strict";

(function () {
  const body = document.body;
  const $ = (id) => document.getElementById(id);

  function workerLabel(worker) {
    if (!worker) return "?";
    return worker.slot === null || worker.slot === undefined
      ? `pid ${worker.pid}`
      : `slot ${worker.slot} (pid ${worker.pid})`;
  }

  function setStatus(el, text, isError) {
    el.textContent = text;
    el.classList.toggle("error", Boolean(isError));
  }

  // ---------------------------------------------------------------- chat
  const chat = { ws: null, worker: null };

  function logLine(parts, cls) {
    const li = document.createElement("li");
    if (cls) li.className = cls;
    for (const [text, partCls] of parts) {
      const span = document.createElement("span");
      span.textContent = text;
      if (partCls) span.className = partCls;
      li.appendChild(span);
    }
    const log = $("chat-log");
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    return li;
  }

  function connectChat() {
    if (chat.ws) {
      chat.ws.onclose = null;
      chat.ws.close(1000);
    }
    const room = $("chat-room").value.trim() || "lobby";
    const name = $("chat-name").value.trim() || "guest";
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ room, name });
    const url = `${scheme}//${location.host}${body.dataset.chatPath}?${query}`;
    setStatus($("chat-status"), `connecting to room ${room}...`);
    $("chat-send").disabled = true;
    const ws = new WebSocket(url);
    chat.ws = ws;
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (msg.type === "hello") {
        chat.worker = msg.worker;
        const status = $("chat-status");
        status.dataset.slot = msg.worker.slot === null ? "" : String(msg.worker.slot);
        status.dataset.pid = String(msg.worker.pid);
        setStatus(status,
          `room ${msg.room} on worker ${workerLabel(msg.worker)}, ${msg.members} here`);
        $("chat-send").disabled = false;
      } else if (msg.type === "message") {
        const li = logLine([
          [`${msg.from}: `, "who"], [msg.text, "text"],
          [`  via ${workerLabel(msg.worker)}`, "meta"],
        ], "message");
        li.dataset.text = msg.text;
      } else if (msg.type === "presence") {
        const who = msg.joined !== undefined ? `${msg.joined} joined` : `${msg.left} left`;
        logLine([[`${who} (${msg.members} in ${msg.room})`, null]], "notice");
      } else if (msg.type === "error") {
        logLine([[`server: ${msg.error}`, null]], "notice");
      }
    };
    ws.onclose = (event) => {
      $("chat-send").disabled = true;
      if (chat.ws !== ws) return;
      setStatus($("chat-status"),
        `disconnected (${event.code}${event.reason ? " " + event.reason : ""}); ` +
        "reconnecting in 2s", true);
      setTimeout(() => { if (chat.ws === ws) connectChat(); }, 2000);
    };
  }

  $("chat-join").addEventListener("submit", (event) => {
    event.preventDefault();
    $("chat-log").replaceChildren();
    connectChat();
  });

  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("chat-input");
    const text = input.value.trim();
    if (!text || !chat.ws || chat.ws.readyState !== WebSocket.OPEN) return;
    chat.ws.send(JSON.stringify({ text }));
    input.value = "";
  });

  // ---------------------------------------------------------------- upload
  const LOCAL_HASH_LIMIT = 64 * 1024 * 1024;

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function localHash(file) {
    if (!window.crypto || !crypto.subtle || file.size > LOCAL_HASH_LIMIT) return null;
    return hex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
  }

  function showResult(entries) {
    const dl = $("upload-result");
    dl.replaceChildren();
    for (const [term, value, id] of entries) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      if (id) dd.id = id;
      dl.append(dt, dd);
    }
  }

  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("upload-file").files[0];
    if (!file) return;
    const progress = $("upload-progress");
    const percent = $("upload-percent");
    const result = $("upload-result");
    delete result.dataset.sha256;
    delete result.dataset.size;
    progress.value = 0;
    percent.textContent = "0%";
    showResult([["status", "uploading...", "upload-status"]]);
    $("upload-button").disabled = true;
    const expected = localHash(file);
    const form = new FormData();
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", body.dataset.uploadUrl);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.floor((100 * e.loaded) / e.total);
      progress.value = pct;
      percent.textContent = `${pct}%`;
    };
    xhr.onerror = () => {
      $("upload-button").disabled = false;
      showResult([["status", "network error", "upload-status"]]);
    };
    xhr.onload = async () => {
      $("upload-button").disabled = false;
      if (xhr.status !== 200 || !xhr.response || !xhr.response.files.length) {
        showResult([["status", `failed: HTTP ${xhr.status}`, "upload-status"]]);
        return;
      }
      progress.value = 100;
      percent.textContent = "100%";
      const info = xhr.response.files[0];
      const local = await expected;
      const check = local === null ? "not checked (file too large to hash here)"
        : local === info.sha256 ? "matches the browser's own SHA-256"
          : `MISMATCH: the browser computed ${local}`;
      showResult([
        ["status", "done", "upload-status"],
        ["file", info.filename, null],
        ["size", `${info.size.toLocaleString("en")} bytes`, "upload-size"],
        ["SHA-256", info.sha256, "upload-sha256"],
        ["check", check, "upload-check"],
        ["worker", workerLabel(xhr.response.worker), null],
        ["server time", `${(xhr.response.elapsed_s * 1000).toFixed(1)} ms`, null],
      ]);
      result.dataset.sha256 = info.sha256;
      result.dataset.size = String(info.size);
    };
    xhr.send(form);
  });

  // ---------------------------------------------------------------- metrics panel
  function fmt(value, unit, digits) {
    return value === null || value === undefined ? "-" : `${value.toFixed(digits)}${unit}`;
  }

  const rateHistory = [];
  const HISTORY_POINTS = 60;

  function drawSpark(rate) {
    rateHistory.push(rate === null || rate === undefined ? 0 : rate);
    if (rateHistory.length > HISTORY_POINTS) rateHistory.shift();
    const top = Math.max(1, ...rateHistory);
    const step = 300 / (HISTORY_POINTS - 1);
    const offset = HISTORY_POINTS - rateHistory.length;
    const points = rateHistory.map(
      (r, i) => `${((offset + i) * step).toFixed(1)},${(58 - (56 * r) / top).toFixed(1)}`);
    $("stats-spark").querySelector("polyline").setAttribute("points", points.join(" "));
  }

  async function pollStats() {
    const status = $("stats-status");
    try {
      const response = await fetch(body.dataset.statsUrl, { cache: "no-store" });
      const data = await response.json();
      if (data.error) {
        setStatus(status, `metrics unavailable: ${data.error}`, true);
      } else if (!data.available) {
        setStatus(status, "collecting a second scrape...");
      } else {
        setStatus(status,
          `${data.requests} requests in the last ${data.window_s.toFixed(1)} s, ` +
          `computed by worker ${workerLabel(data.worker)}`);
      }
      drawSpark(data.rate_rps);
      const rate = $("stats-rate");
      rate.textContent = fmt(data.rate_rps, "", 1);
      rate.dataset.value = data.rate_rps === null ? "" : String(data.rate_rps);
      $("stats-p50").textContent = fmt(data.p50_ms, " ms", 2);
      $("stats-p99").textContent = fmt(data.p99_ms, " ms", 2);
      $("stats-mean").textContent = fmt(data.mean_ms, " ms", 2);
      $("stats-ws").textContent = data.ws_open === undefined ? "-" : String(data.ws_open);
      $("stats-total").textContent =
        data.total_requests === undefined ? "-" : data.total_requests.toLocaleString("en");
      const tbody = $("stats-workers").tBodies[0];
      tbody.replaceChildren();
      for (const [slot, rps] of Object.entries(data.per_worker_rps || {})) {
        const tr = tbody.insertRow();
        tr.insertCell().textContent = slot;
        tr.insertCell().textContent = rps.toFixed(1);
      }
    } catch (err) {
      setStatus(status, `poll failed: ${err}`, true);
    } finally {
      setTimeout(pollStats, 1000);
    }
  }

  connectChat();
  pollStats();
})();
