// What the live tests share: the real chatgate binary ($CHATGATE_BIN) on a free port and a temp
// data dir, killed and restarted at will; SDK clients that can be taken offline; and waiting for
// events, never for a fixed time.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";

import { Chatgate } from "../chatgate.js";

export const PASSWORD = "a long enough password";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** The chatgate binary, on a fixed port and data dir so that it can be killed and restarted. */
export class LiveServer {
  static async start() {
    assert.ok(process.env.CHATGATE_BIN, "set CHATGATE_BIN to the chatgate binary (cargo test does)");
    assert.equal(typeof globalThis.WebSocket, "function", "run with a global WebSocket (node --experimental-websocket on Node 20)");
    const server = new LiveServer(await freePort(), mkdtempSync(join(tmpdir(), "chatgate-sdk-live-")));
    await server.start();
    return server;
  }

  constructor(port, dir) {
    this.port = port;
    this.dir = dir;
    this.base = `http://127.0.0.1:${port}`;
  }

  async start() {
    // Rate limits out of the way: these tests are about convergence, not pacing (the unit
    // tests cover how the SDK backs off when refused).
    this.child = spawn(process.env.CHATGATE_BIN, ["--listen", `127.0.0.1:${this.port}`, "--data-dir", this.dir, "--log", "warn",
      "--hash-concurrency", "1", "--login-attempts-per-minute", "1000", "--rate-address", "100000", "--rate-session", "100000",
      "--rate-user", "100000"], { stdio: "inherit" });
    this.exited = new Promise((resolve) => this.child.once("exit", resolve));
    const end = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await fetch(`${this.base}/healthz`)).ok) return;
      } catch {}
      if (Date.now() > end) throw new Error("chatgate did not start");
      // Polls the process coming up: there is no event to wait for.
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Kills the process at once, as a crash would: nothing is flushed or said goodbye to. */
  async kill() {
    this.child.kill("SIGKILL");
    await this.exited;
  }

  async stop() {
    this.child.kill("SIGTERM");
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** An API call as the holder of `token`, over HTTP. */
  async call(token, route, data, method = "POST") {
    const query = method === "GET" ? `?${new URLSearchParams(data)}` : "";
    const r = await fetch(`${this.base}${route}${query}`, {
      method, headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: method === "GET" ? undefined : JSON.stringify(data),
    });
    const body = await r.json();
    assert.equal(body.code, 0, `${route}: ${JSON.stringify(body)}`);
    return body.data;
  }

  /** A conversation as the server has it for the holder of `token`: every message, and the user's state of it. */
  async truth(token, conversationId) {
    const messages = [];
    for (let afterSeq = 0; ;) {
      const page = await this.call(token, "/message/history", { conversationId, afterSeq, limit: 100 }, "GET");
      messages.push(...page.messages);
      if (!page.hasMore) break;
      afterSeq = page.messages.at(-1).seq;
    }
    const { conversation } = await this.call(token, "/conversation/info", { conversationId }, "GET");
    return comparable({ messages, unread: conversation.unread, readSeq: conversation.readSeq, pinned: conversation.pinned });
  }
}

/**
 * An SDK client of `server` that `offline()` cuts off (its socket closed, its HTTP calls
 * failing) until `online()`, so that it reconnects by itself over the socket when let.
 */
export function device(server, format) {
  const gate = { online: true, sockets: new Set() };
  class GatedSocket extends WebSocket {
    constructor(url) {
      super(url);
      gate.sockets.add(this);
      this.addEventListener("close", () => gate.sockets.delete(this));
      if (!gate.online) queueMicrotask(() => this.close());
    }
  }
  const client = new Chatgate({
    url: server.base, format, WebSocket: GatedSocket, backoff: { initial: 100, max: 1000 },
    fetch: (url, init) => (gate.online ? fetch(url, init) : Promise.reject(new TypeError("offline"))),
  });
  client.offline = () => {
    gate.online = false;
    for (const s of gate.sockets) s.close();
  };
  client.online = () => {
    gate.online = true;
  };
  client.on("error", (err) => console.error(`[${format}] error:`, err));
  return client;
}

/** The next `event` of `client` that satisfies `check`. */
export function next(client, event, check = () => true, ms = 60_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no ${event} event in ${ms} ms`));
    }, ms);
    const stop = client.on(event, (data) => {
      if (!check(data)) return;
      clearTimeout(timer);
      stop();
      resolve(data);
    });
  });
}

const NEWS = ["message", "changed", "conversation", "ready", "reset", "state"];

/**
 * Resolves once `check()` holds, re-checked after the events of `clients` (at most once per turn
 * of the event loop); rejects after `ms` with `explain()`, which should throw the difference.
 */
export function settle(clients, check, explain, ms = 60_000) {
  return new Promise((resolve, reject) => {
    let queued = false;
    const stops = [];
    const done = (err) => {
      clearTimeout(timer);
      for (const stop of stops) stop();
      if (err) reject(err);
      else resolve();
    };
    const recheck = () => {
      queued = false;
      if (check()) done();
    };
    const timer = setTimeout(() => {
      try {
        explain();
        done(new Error("settle timed out, yet explain() found no difference"));
      } catch (err) {
        done(err);
      }
    }, ms);
    for (const client of clients) {
      for (const event of NEWS) {
        stops.push(client.on(event, () => {
          if (!queued) {
            queued = true;
            setImmediate(recheck);
          }
        }));
      }
    }
    recheck();
  });
}

/**
 * A conversation as compared across devices: reactions by key, since their order is only about
 * the order keys first appeared (the server's order moves when the first reactor takes theirs
 * back; a device cannot know when).
 */
function comparable(conversation) {
  const byKey = (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  return { ...conversation, messages: conversation.messages.map((m) => ({ ...m, reactions: [...m.reactions].sort(byKey) })) };
}

/** What a device holds of a conversation, in the shape of `LiveServer.truth`. */
export function holds(client, conversationId) {
  const held = client.held(conversationId);
  if (!held) return undefined;
  const { messages, unread, readSeq, conversation } = held;
  return comparable({ messages, unread, readSeq, pinned: conversation?.pinned ?? false });
}

export function sameAs(client, conversationId, truth) {
  return isDeepStrictEqual(holds(client, conversationId), truth);
}
