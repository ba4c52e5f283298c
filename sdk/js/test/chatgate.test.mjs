// Unit tests of the SDK's own logic, against an in-memory stand-in for the server's socket:
// builders, the MessagePack codec, backoff, request correlation and timeouts, exactly-once
// in-order delivery with gap filling, resync after a reconnection, and retried sends.
// The real server is exercised by the browser tests (tests/browser/).
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  Chatgate, ChatgateError, createAudio, createCustom, createFile, createImage, createLocation, createText,
  createVideo, singleConversation,
} from "../chatgate.js";
import * as msgpack from "../msgpack.js";

/** A server stand-in: answers requests with `handler(route, data)` and pushes at will. */
class FakeServer {
  constructor(handler) {
    this.handler = handler;
    this.sockets = [];
    this.requests = [];
    this.tickets = 0;
    const server = this;
    // What the SDK asks over HTTP: the socket ticket.
    this.links = 0;
    this.fetch = async (url, init) => {
      assert.equal(init.headers.authorization, "Bearer t");
      if (url.endsWith("/file/link")) {
        server.links += 1;
        const { fileId } = JSON.parse(init.body);
        return { status: 200, json: async () => ({ code: 0, data: { url: `/file/${fileId}?exp=9&sig=s${server.links}`, expiresAt: Date.now() + 600000 } }) };
      }
      assert.ok(url.endsWith("/user/ticket") && init.method === "POST", `unexpected fetch of ${url}`);
      server.tickets += 1;
      return { status: 200, json: async () => ({ code: 0, data: { ticket: `ticket${server.tickets}`, expiresAt: Date.now() + 30000 } }) };
    };
    this.WebSocket = class {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        server.sockets.push(this);
        setTimeout(() => {
          if (this.readyState !== 0) return;
          this.readyState = 1;
          server.deliver(this, { type: "push", event: "session.ready", data: { userId: "1", node: "n", pingInterval: 30000, pongTimeout: 30000 } });
        }, 1);
      }
      send(text) {
        const frame = typeof text === "string" ? JSON.parse(text) : msgpack.decode(text);
        server.requests.push(frame);
        Promise.resolve(server.handler(frame.route, frame.data, frame)).then((reply) => {
          if (reply === undefined || this.readyState !== 1) return;
          const res = reply instanceof Error
            ? { type: "res", id: frame.id, code: 1, error: reply.message, message: reply.message, data: null }
            : { type: "res", id: frame.id, code: 0, message: "ok", data: reply };
          server.deliver(this, res);
        });
      }
      close(code = 1000) {
        if (this.readyState === 3) return;
        this.readyState = 3;
        setTimeout(() => this.onclose?.({ code }), 0);
      }
    };
  }
  get current() {
    return this.sockets.at(-1);
  }
  deliver(socket, frame) {
    setTimeout(() => socket.readyState === 1 && socket.onmessage?.({ data: JSON.stringify(frame) }), 0);
  }
  push(event, data) {
    this.deliver(this.current, { type: "push", event, data });
  }
  /** The connection drops, as when the server restarts. */
  drop() {
    const s = this.current;
    s.readyState = 3;
    s.onclose?.({ code: 1001 });
  }
}

const message = (conversationId, seq, extra = {}) => ({ id: `${conversationId}#${seq}`, conversationId, seq, kind: "text", content: { text: `m${seq}` }, ...extra });
const until = async (check, ms = 2000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 2));
  }
};
const emptyList = { conversations: [], totalUnread: 0, nextCursor: null };

test("message builders make what the server accepts", () => {
  assert.deepEqual(createText("hi", { mentions: ["2"], replyTo: 9 }), { kind: "text", content: { text: "hi", mentions: ["2"], replyTo: "9" } });
  assert.deepEqual(createText("plain"), { kind: "text", content: { text: "plain" } });
  assert.deepEqual(createImage({ url: "/file/a", width: 1, height: 2, size: 3, mime: "image/png" }).content, { url: "/file/a", width: 1, height: 2, size: 3, mime: "image/png" });
  assert.equal(createVideo({ url: "/file/v", duration: 1.5, width: 1, height: 1, size: 1, mime: "video/mp4" }).kind, "video");
  assert.equal(createAudio({ url: "/file/a", duration: 2, size: 1, mime: "audio/ogg" }).content.duration, 2);
  assert.deepEqual(createFile({ url: "/file/f", name: "a.pdf", size: 1, mime: "application/pdf" }).content.name, "a.pdf");
  assert.deepEqual(createLocation({ latitude: 1, longitude: 2 }), { kind: "location", content: { latitude: 1, longitude: 2 } });
  assert.deepEqual(createCustom({ any: [1] }), { kind: "custom", content: { data: { any: [1] } } });
  assert.equal(singleConversation(9, "3"), "s:3:9");
});

test("MessagePack round-trips frames and reads the server's bytes", () => {
  for (const value of [null, true, false, 0, 127, 128, 65535, 70000, 2 ** 40, -1, -33, -200, -70000, -(2 ** 40), 1.5, "", "héllo", "x".repeat(300),
    [1, [2, [3]]], { type: "req", id: 7, route: "/user/login", data: { username: "a", nested: { deep: [null] } } }, new Uint8Array([1, 2, 3])]) {
    assert.deepEqual(msgpack.decode(msgpack.encode(value)), value);
  }
  // The push example of proto-docs/frames.md.
  const hex = "83 a4 74 79 70 65 a4 70 75 73 68 a5 65 76 65 6e 74 ae 73 65 73 73 69 6f 6e 2e 6b 69 63 6b 65 64 a4 64 61 74 61 81 a6 72 65 61 73 6f 6e a6 6c 6f 67 6f 75 74";
  const bytes = Uint8Array.from(hex.split(" ").map((h) => parseInt(h, 16)));
  assert.deepEqual(msgpack.decode(bytes), { type: "push", event: "session.kicked", data: { reason: "logout" } });
  assert.throws(() => msgpack.decode(new Uint8Array([0x91])), RangeError);
  assert.throws(() => msgpack.decode(new Uint8Array(600).fill(0x91)), RangeError);
});

test("reconnection backs off exponentially, capped, with jitter", () => {
  const low = new Chatgate({ url: "http://x", random: () => 0, backoff: { initial: 100, max: 1000 } });
  const high = new Chatgate({ url: "http://x", random: () => 1, backoff: { initial: 100, max: 1000 } });
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((a) => low.reconnectDelay(a)), [50, 100, 200, 400, 500, 500]);
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((a) => high.reconnectDelay(a)), [100, 200, 400, 800, 1000, 1000]);
});

test("replies are matched to their requests, in any order, and time out", async () => {
  const server = new FakeServer(async (route, data) => {
    if (route === "/conversation/list") return emptyList;
    if (route === "/slow") return new Promise((r) => setTimeout(() => r({ n: data.n }), 20));
    if (route === "/fast") return { n: data.n };
    if (route === "/refused") return new Error("forbidden");
    return undefined;
  });
  const client = new Chatgate({ url: "http://x", token: "t", WebSocket: server.WebSocket, fetch: server.fetch, requestTimeout: 100 });
  await client.connect();
  const [slow, fast] = await Promise.all([client.request("/slow", { n: 1 }), client.request("/fast", { n: 2 })]);
  assert.deepEqual([slow.n, fast.n], [1, 2]);
  await assert.rejects(client.request("/refused"), (e) => e instanceof ChatgateError && e.reason === "forbidden");
  await assert.rejects(client.request("/silent"), (e) => e.reason === "timeout");
  client.close();
  await assert.rejects(client.request("/fast"), (e) => e.reason === "not_connected");
});

test("each message is handed over once, in order, gaps filled from history", async () => {
  const stored = [1, 2, 3, 4, 5, 6, 7].map((s) => message("g:1", s));
  const server = new FakeServer((route, data) => {
    if (route === "/conversation/list") return { conversations: [{ conversationId: "g:1", lastSeq: 0 }], nextCursor: null };
    if (route === "/message/history") {
      const page = stored.filter((m) => m.seq > data.afterSeq);
      return { messages: page.slice(0, 2), hasMore: page.length > 2 };
    }
  });
  const client = new Chatgate({ url: "http://x", token: "t", WebSocket: server.WebSocket, fetch: server.fetch });
  const seen = [];
  client.on("message", (m) => seen.push(m.seq));
  await client.connect();
  for (const seq of [1, 2, 2, 1, 5, 3]) server.push("message.new", { message: stored[seq - 1] });
  await until(() => seen.length >= 7);
  server.push("message.new", { message: stored[6] });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7]);
  client.close();
});

test("after a reconnection, what was missed comes once, by sync, and sends are retried with their key", async () => {
  const stored = [];
  let sendsSeen = 0;
  const server = new FakeServer((route, data) => {
    if (route === "/conversation/list") return { conversations: [{ conversationId: "s:1:2", lastSeq: 2 }], nextCursor: null };
    if (route === "/message/sync") {
      const known = Object.fromEntries(data.conversations.map((c) => [c.conversationId, c.seq]));
      const missed = stored.filter((m) => m.seq > (known["s:1:2"] ?? 0));
      return { conversations: missed.length ? [{ conversation: { conversationId: "s:1:2" }, messages: missed, hasMore: false }] : [], hasMore: false };
    }
    if (route === "/message/send") {
      sendsSeen += 1;
      // The first attempt is lost with the connection; the retry is answered.
      if (sendsSeen === 1) {
        setTimeout(() => server.drop(), 5);
        return undefined;
      }
      const m = message("s:1:2", stored.length + 1, { clientMsgId: data.clientMsgId, from: "1" });
      stored.push(m);
      return { message: m };
    }
  });
  for (const seq of [1, 2]) stored.push(message("s:1:2", seq));
  const client = new Chatgate({ url: "http://x", token: "t", WebSocket: server.WebSocket, fetch: server.fetch, backoff: { initial: 5, max: 20 } });
  const seen = [];
  const states = [];
  client.on("message", (m) => seen.push(m.seq));
  client.on("state", (s) => states.push(s));
  await client.connect();
  // While the client is away, two messages arrive for it.
  const sending = client.sendText("2", "hello");
  await until(() => client.state === "reconnecting");
  stored.push(message("s:1:2", 3), message("s:1:2", 4));
  const sent = await sending;
  await until(() => seen.length >= 3);
  assert.equal(sent.seq, 5);
  assert.deepEqual(seen, [3, 4, 5]);
  const keys = server.requests.filter((r) => r.route === "/message/send").map((r) => r.data.clientMsgId);
  assert.equal(keys.length, 2);
  assert.equal(keys[0], keys[1], "a retry keeps its clientMsgId");
  assert.ok(states.includes("reconnecting") && states.at(-1) === "open", states.join(","));
  // Each socket opened with a ticket of its own; the token never went into a URL.
  assert.deepEqual(server.sockets.map((s) => new URL(s.url).searchParams.get("ticket")), ["ticket1", "ticket2"]);
  assert.ok(server.sockets.every((s) => !s.url.includes("token")), server.sockets.map((s) => s.url).join(" "));
  client.close();
});

test("a kicked session does not reconnect; a refused send is not retried", async () => {
  const server = new FakeServer((route) => {
    if (route === "/conversation/list") return emptyList;
    if (route === "/message/send") return new Error("validation.text");
  });
  const client = new Chatgate({ url: "http://x", token: "t", WebSocket: server.WebSocket, fetch: server.fetch, backoff: { initial: 5, max: 5 } });
  const kicked = [];
  client.on("kicked", (k) => kicked.push(k.reason));
  await client.connect();
  await assert.rejects(client.sendText("2", ""), (e) => e.reason === "validation.text");
  server.push("session.kicked", { reason: "logout" });
  await until(() => kicked.length === 1);
  server.current.readyState = 3;
  server.current.onclose({ code: 4001 });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(server.sockets.length, 1, "no reconnection after a kick");
  assert.equal(client.state, "closed");
});

test("file links are signed by the server, reused while fresh, and other URLs pass through", async () => {
  const server = new FakeServer(() => undefined);
  const client = new Chatgate({ url: "http://x", token: "t", WebSocket: server.WebSocket, fetch: server.fetch });
  const first = await client.fileLink("/file/abc");
  assert.equal(first, "http://x/file/abc?exp=9&sig=s1");
  assert.equal(await client.fileLink("/file/abc"), first, "a fresh link is reused");
  assert.equal(server.links, 1);
  assert.equal(await client.fileLink("https://cdn.test/a.png"), "https://cdn.test/a.png");
  assert.ok(!first.includes("token"));
});

test("a backlog paged by bytes over hundreds of sync rounds arrives whole, in order", async () => {
  // 300 conversations of 50 messages; each sync answer carries one conversation, cut short.
  const stored = new Map(Array.from({ length: 300 }, (_, c) => [`g:${c}`, Array.from({ length: 50 }, (_, i) => message(`g:${c}`, i + 1))]));
  const server = new FakeServer((route, data) => {
    if (route === "/conversation/list") return emptyList;
    if (route === "/message/sync") {
      const known = new Map(data.conversations.map((c) => [c.conversationId, c.seq]));
      const behind = [...stored].filter(([id, ms]) => (known.get(id) ?? 0) < ms.length);
      if (!behind.length) return { conversations: [], hasMore: false };
      const [id, ms] = behind[0];
      const after = known.get(id) ?? 0;
      return { conversations: [{ conversation: { conversationId: id }, messages: ms.slice(after, after + 3), hasMore: true }], hasMore: behind.length > 1 };
    }
    if (route === "/message/history") {
      const ms = stored.get(data.conversationId).filter((m) => m.seq > data.afterSeq);
      return { messages: ms.slice(0, 20), hasMore: ms.length > 20 };
    }
  });
  const client = new Chatgate({ url: "http://x", token: "t", WebSocket: server.WebSocket, fetch: server.fetch });
  const seen = new Map();
  client.on("message", (m) => seen.set(m.conversationId, [...(seen.get(m.conversationId) || []), m.seq]));
  await client.connect();
  await client._resync();
  assert.equal(seen.size, 300);
  for (const seqs of seen.values()) assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i + 1));
  client.close();
});
