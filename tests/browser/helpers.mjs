// What the browser journeys share: a real chatgate binary ($CHATGATE_BIN) started, stopped and
// restarted on a temp data dir, headless Chromium, and people who register through the page.
// Importing this registers the hooks that start and stop both, once per test file.
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";

import { chromium } from "playwright-core";

const BIN = process.env.CHATGATE_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = new URL("./screenshots/", import.meta.url).pathname;
export const WAIT = 15_000;
/** The window sizes journeys run at: a desktop's and a phone's. */
export const SIZES = [["desktop", { width: 1100, height: 760 }], ["phone", { width: 390, height: 800 }]];

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** The chatgate binary, on a fixed port and data dir so that it can be restarted. */
class Server {
  constructor(port, dir) {
    this.port = port;
    this.dir = dir;
    this.base = `http://127.0.0.1:${port}`;
  }
  async start() {
    this.child = spawn(BIN, ["--listen", `127.0.0.1:${this.port}`, "--data-dir", this.dir, "--log", "warn",
      "--hash-concurrency", "1", "--login-attempts-per-minute", "1000", "--rate-address", "1000"], { stdio: "inherit" });
    const end = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await fetch(`${this.base}/healthz`)).ok) return;
      } catch {}
      if (Date.now() > end) throw new Error("chatgate did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async stop() {
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGTERM");
    await exited;
  }
  /** An API call as a user, over HTTP. */
  async call(token, route, data) {
    const r = await fetch(`${this.base}${route}`, {
      method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify(data),
    });
    const body = await r.json();
    assert.equal(body.code, 0, `${route}: ${JSON.stringify(body)}`);
    return body.data;
  }
}

export let server;
export let browser;
export let dataDir;

before(async () => {
  assert.ok(BIN, "set CHATGATE_BIN to the chatgate binary (cargo test does)");
  mkdirSync(SHOTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), "chatgate-browser-"));
  server = new Server(await freePort(), dataDir);
  await server.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--no-first-run", "--disable-sync", "--disable-quic"],
  });
});

after(async () => {
  assert.deepEqual(pageErrors, [], "no uncaught errors in the pages");
  await browser?.close();
  await server?.stop().catch(() => {});
  rmSync(dataDir, { recursive: true, force: true });
});

let userCount = 0;
/** Console errors a server stopped (or a browser taken offline) on purpose causes. */
const EXPECTED_CONSOLE = [/ERR_CONNECTION_REFUSED/, /WebSocket connection to .* failed/, /ERR_INTERNET_DISCONNECTED/, /ERR_NETWORK_CHANGED/];

/** Uncaught errors in any page: a journey passes only if there are none. */
const pageErrors = [];

/** A fresh user, registered through the page, in a browser context of their own. */
export async function person(label, viewport) {
  const name = `${label}${process.pid % 10000}x${userCount++}`;
  const context = await browser.newContext({ viewport: viewport || { width: 1100, height: 760 } });
  // Every URL the page asks for, sockets included: the token must be in none of them.
  const urls = [];
  const page = await watched(context, name, urls);
  await page.goto(server.base);
  await page.getByTestId("username").fill(name);
  await page.getByTestId("password").fill("a long enough password");
  await page.getByTestId("register").click();
  await page.getByTestId("me").waitFor();
  const token = await page.evaluate(() => localStorage.getItem("chatgate.token"));
  const me = await (await fetch(`${server.base}/user/info`, { headers: { authorization: `Bearer ${token}` } })).json();
  return { name, page, context, token, id: me.data.userinfo.id, urls };
}

/** A new page of `context`, whose uncaught errors fail the journeys and whose URLs go to `urls`. */
async function watched(context, name, urls) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (err) => {
    console.error(`[${name}] page error:`, err);
    pageErrors.push(`${name}: ${err}`);
  });
  // Console errors fail the journeys too, but for the failed connections of a server that is
  // down or a browser that is offline, which the journeys cause on purpose.
  page.on("console", (m) => {
    if (m.type() !== "error" || EXPECTED_CONSOLE.some((re) => re.test(m.text()))) return;
    console.error(`[${name}] console error:`, m.text());
    pageErrors.push(`${name}: console: ${m.text()}`);
  });
  page.on("request", (r) => urls.push(r.url()));
  page.on("websocket", (ws) => urls.push(ws.url()));
  return page;
}

/** Opens chatgate again in a new tab of the person's browser (the old one, if open, stays). */
export async function reopen(who) {
  const page = await watched(who.context, who.name, who.urls);
  await page.goto(server.base);
  await page.getByTestId("me").waitFor();
  return page;
}

export async function dialog(page, first, second) {
  await page.getByTestId("dialog-input").fill(first);
  if (second !== undefined) await page.getByTestId("dialog-input2").fill(second);
  await page.getByTestId("dialog-ok").click();
}

export async function chatWith(page, username) {
  await page.getByTestId("new-chat").click();
  await dialog(page, username);
  await page.getByTestId("chat-title").waitFor();
}

export async function say(page, text) {
  await page.getByTestId("text").fill(text);
  await page.getByTestId("send").click();
  await bubble(page, text).waitFor();
}

export function bubble(page, text) {
  return page.getByTestId("messages").getByTestId("message").filter({ hasText: text });
}

export function conversation(page, title) {
  return page.getByTestId("conversation").filter({ hasText: title });
}

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** The texts of the open conversation's messages, in the order shown. */
export function texts(page) {
  return page.getByTestId("messages").locator("[data-testid=message] .text").allTextContents();
}


/** A small PNG of `w` by `h` pixels, made here. */
export function png(w, h) {
  const crc = (buf) => {
    let c = ~0;
    for (const b of buf) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c >>> 0;
  };
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, "ascii");
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(Buffer.concat([Buffer.from(type, "ascii"), data])), 0);
    return Buffer.concat([head, data, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < h; y++) {
    rows.push(0);
    for (let x = 0; x < w; x++) rows.push((x * 7) & 255, (y * 5) & 255, 180);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.from(rows))), chunk("IEND", Buffer.alloc(0))]);
}

/** A WAV file: `seconds` of a 440 Hz tone, 8 kHz mono, 16-bit. */
export function wav(seconds) {
  const rate = 8000;
  const samples = Math.round(rate * seconds);
  const out = Buffer.alloc(44 + 2 * samples);
  out.write("RIFF", 0, "ascii");
  out.writeUInt32LE(36 + 2 * samples, 4);
  out.write("WAVEfmt ", 8, "ascii");
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(2 * rate, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write("data", 36, "ascii");
  out.writeUInt32LE(2 * samples, 40);
  for (let i = 0; i < samples; i++) out.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + 2 * i);
  return out;
}
