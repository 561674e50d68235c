// Interop scenarios for the npm `ws` client against a forkloop WebSocket server.
// Usage: node client.mjs ws://127.0.0.1:PORT
// Prints one JSON object per line: {"name": ..., "ok": true|false, "detail": ...}.
import { WebSocket } from "ws";
import { randomBytes } from "node:crypto";

const base = process.argv[2];
const MiB = 1024 * 1024;

function open(path, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base + path, { maxPayload: 64 * MiB, ...options });
    const queue = [];
    const waiters = [];
    ws.on("message", (data, isBinary) => {
      const item = { data, isBinary };
      if (waiters.length) waiters.shift()(item);
      else queue.push(item);
    });
    ws.next = () =>
      new Promise((res) => (queue.length ? res(queue.shift()) : waiters.push(res)));
    ws.closed = new Promise((res) => ws.on("close", (code, reason) => res({ code, reason: reason.toString() })));
    ws.on("open", () => resolve(ws));
    ws.on("error", reject);
  });
}

function report(name, ok, detail = "") {
  console.log(JSON.stringify({ name, ok, detail: String(detail) }));
}

async function scenario(name, fn) {
  try {
    const timer = new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 30000));
    await Promise.race([fn(), timer]);
  } catch (err) {
    report(name, false, err && err.stack ? err.stack : err);
  }
}

async function echoSuite(deflate) {
  const tag = deflate ? "deflate" : "plain";
  const ws = await open(`/echo?max=${32 * MiB}`, { perMessageDeflate: deflate });
  // ws exposes the negotiated Sec-WebSocket-Extensions value as a string.
  const negotiated = String(ws.extensions).includes("permessage-deflate");
  report(`${tag}: negotiation`, negotiated === deflate, ws.extensions);

  await scenario(`${tag}: text`, async () => {
    ws.send("héllo wörld");
    const { data, isBinary } = await ws.next();
    report(`${tag}: text`, !isBinary && data.toString() === "héllo wörld", data);
  });
  for (const size of [0, 125, 126, 65536, MiB, 16 * MiB]) {
    await scenario(`${tag}: binary ${size}`, async () => {
      const payload = randomBytes(size);
      ws.send(payload);
      const { data, isBinary } = await ws.next();
      report(`${tag}: binary ${size}`, isBinary && Buffer.compare(data, payload) === 0, data.length);
    });
  }
  await scenario(`${tag}: fragmented`, async () => {
    ws.send("frag-one,", { fin: false });
    ws.send("frag-two,", { fin: false });
    ws.send("frag-end", { fin: true });
    const { data } = await ws.next();
    report(`${tag}: fragmented`, data.toString() === "frag-one,frag-two,frag-end", data);
  });
  await scenario(`${tag}: ping/pong`, async () => {
    const pong = new Promise((res) => ws.once("pong", res));
    ws.ping("are-you-there");
    const data = await pong;
    report(`${tag}: ping/pong`, data.toString() === "are-you-there", data);
  });
  await scenario(`${tag}: client close code`, async () => {
    ws.close(4000, "client bye");
    const { code, reason } = await ws.closed;
    // The server echoes the code (RFC 6455 section 5.5.1); echoing the reason is optional.
    report(`${tag}: client close code`, code === 4000, `${code} ${reason}`);
  });
}

async function main() {
  await echoSuite(false);
  await echoSuite(true);
  await scenario("server close code", async () => {
    const ws = await open("/server", {});
    ws.send("hi");
    const { code, reason } = await ws.closed;
    report("server close code", code === 4001 && reason === "server says bye", `${code} ${reason}`);
  });
  await scenario("invalid utf-8 gets 1007", async () => {
    const ws = await open("/echo", { skipUTF8Validation: true });
    ws._sender.sendFrame(
      [Buffer.from([0x81, 0x82, 0, 0, 0, 0]), Buffer.from([0xff, 0xfe])],
      () => {},
    );
    const { code } = await ws.closed;
    report("invalid utf-8 gets 1007", code === 1007, code);
  });
}

main().then(
  () => process.exit(0),
  (err) => {
    report("main", false, err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
