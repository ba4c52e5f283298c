// Unit tests of the SDK's own logic, against an in-memory stand-in for the server: builders,
// the MessagePack codec, backoff, request correlation and timeouts, the log held in order and
// exactly once (first load, pushes with repeats and gaps, conversations first heard of late,
// resync after a reconnection, resets), the outbox (offline sends and changes, retries applied
// once, refusals, rate limits) and kicks. Tests wait for events and frames, never for a fixed
// time. The real server is exercised by the live tests (test-live/) and the browser journeys.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  Chatgate, ChatgateError, createAudio, createCustom, createFile, createImage, createLocation, createText,
  createVideo, singleConversation,
} from "../chatgate.js";
import * as msgpack from "../msgpack.js";

// ---- the stand-in ----

/** A handler's answer that leaves a request unanswered. */
const SILENT = Symbol("silent");

/** Every conversation's log, as the server keeps it, seen by user `me`. */
class Log {
  constructor(me = "1") {
    this.me = me;
    this.conversations = new Map();
    this.lastId = 0;
    // The log clock: each entry takes the next stamp, as each batch does on the server.
    this.clock = 0;
  }

  /** Appends an entry to conversation `c`, stamped. */
  append(c, entry) {
    entry.stamp = ++this.clock;
    c.stamp = entry.stamp;
    c.entries.push(entry);
  }

  conversation(id) {
    let c = this.conversations.get(id);
    if (!c) {
      c = { id, messages: new Map(), entries: [], stamp: 0, readSeq: 0, floor: 0, pinned: false, muted: false, hidden: false, draft: "" };
      this.conversations.set(id, c);
    }
    return c;
  }

  /** A message of `from` (`me` by default), idempotent by clientMsgId. */
  send(id, text, { from = this.me, clientMsgId = `k${this.lastId + 1}` } = {}) {
    const c = this.conversation(id);
    const again = [...c.messages.values()].find((m) => m.from === from && m.clientMsgId === clientMsgId);
    if (again) return this.view(again);
    const m = {
      id: String(++this.lastId), conversationId: id, seq: c.messages.size + 1, pos: c.entries.length + 1,
      chatType: id.startsWith("g:") ? "group" : "single", from, to: id, kind: "text", content: { text }, clientMsgId,
      sentAt: 1000 + this.lastId, status: "normal", editedAt: null, users: new Map(),
    };
    c.messages.set(m.seq, m);
    this.append(c, { message: m });
    // As the server does: sending reads the conversation up to the message, for its sender.
    if (from === this.me) c.readSeq = Math.max(c.readSeq, m.seq);
    return this.view(m);
  }

  find(messageId) {
    for (const c of this.conversations.values()) {
      for (const m of c.messages.values()) if (m.id === messageId) return [c, m];
    }
    throw new Error(`no message ${messageId}`);
  }

  /** A change by `by`; null when the message is in that state already (nothing is logged). */
  change(type, messageId, { by = this.me, content, key } = {}) {
    const [c, m] = this.find(messageId);
    const at = 5000 + c.entries.length;
    const change = { type, conversationId: c.id, messageId, seq: m.seq, by, at };
    switch (type) {
      case "recall":
      case "delete": {
        const status = type === "recall" ? "recalled" : "deleted";
        if (m.status === status || (type === "recall" && m.status !== "normal")) return null;
        Object.assign(m, { status, content: {} });
        m.users.clear();
        break;
      }
      case "edit":
        if (JSON.stringify(m.content) === JSON.stringify(content)) return null;
        Object.assign(m, { content, editedAt: at });
        change.content = content;
        break;
      case "react":
      case "unreact": {
        const users = m.users.get(key) || new Set();
        if (users.has(by) === (type === "react")) return null;
        if (type === "react") users.add(by);
        else users.delete(by);
        if (users.size) m.users.set(key, users);
        else m.users.delete(key);
        Object.assign(change, { key, count: users.size });
        break;
      }
      default:
        throw new Error(type);
    }
    change.pos = c.entries.length + 1;
    this.append(c, { change });
    return change;
  }

  /** A message as the server sends it to `me`: as it is now. */
  view(m) {
    const { users, ...rest } = m;
    return { ...rest, reactions: [...users].map(([key, set]) => ({ key, count: set.size, mine: set.has(this.me) })) };
  }

  state(c) {
    const unread = [...c.messages.values()].filter((m) => m.seq > c.readSeq && m.from !== this.me && m.status === "normal").length;
    const { id, readSeq, pinned, muted, hidden, draft } = c;
    return { conversationId: id, lastSeq: c.messages.size, readSeq, unread, pinned, muted, hidden, draft };
  }

  /** What a client holding the whole log holds, by conversation. */
  held(id) {
    const c = this.conversation(id);
    return { pos: c.entries.length, messages: [...c.messages.values()].map((m) => this.view(m)), unread: this.state(c).unread };
  }

  /**
   * `/message/sync` by cursor, as the server answers it: the conversations that moved past the
   * cursor, in id order, each with the entries stamped up to the clock as the round began; at
   * most `entries` per conversation and `conversations` per answer.
   */
  sync(data, { entries = 100, conversations = 100 } = {}) {
    assert.equal(typeof data.cursor, "string", "the SDK syncs by cursor");
    assert.equal(data.conversations, undefined, "naming no conversation");
    const parts = data.cursor.split(".");
    const [since, upto] = parts.length === 1 ? [Number(parts[0]), this.clock] : [Number(parts[0]), Number(parts[1])];
    const [resumeId, resumePos] = parts.length === 1 ? [null, 0] : [parts[2], Number(parts[3])];
    const moved = [...this.conversations.values()]
      .filter((c) => c.stamp > since && (resumeId === null || c.id >= resumeId))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const out = [];
    let next = String(upto);
    for (const c of moved) {
      const start = c.id === resumeId ? resumePos : c.entries.filter((e) => e.stamp <= since).length;
      if (out.length === conversations) {
        next = `${since}.${upto}.${c.id}.${start}`;
        break;
      }
      if (start < c.floor) {
        out.push({ conversation: this.state(c), messages: [], changes: [], pos: c.entries.length, from: start, reset: true, hasMore: false });
        continue;
      }
      const due = c.entries.slice(start).filter((e) => e.stamp <= upto);
      const page = due.slice(0, entries);
      if (page.length) {
        out.push({
          conversation: this.state(c),
          messages: page.filter((e) => e.message).map((e) => this.view(e.message)),
          changes: page.filter((e) => e.change).map((e) => e.change),
          pos: start + page.length, from: start, reset: false, hasMore: page.length < due.length,
        });
      }
      if (page.length < due.length) {
        next = `${since}.${upto}.${c.id}.${start + page.length}`;
        break;
      }
    }
    const feed = { changes: [], pos: data.feedPos ?? 0, hasMore: false };
    return { conversations: out, hasMore: next.includes("."), cursor: next, feed };
  }

  history({ conversationId, afterSeq, beforeSeq, limit = 50 }) {
    const all = [...this.conversation(conversationId).messages.values()];
    const page = afterSeq !== undefined
      ? all.filter((m) => m.seq > afterSeq).slice(0, limit)
      : all.filter((m) => m.seq < (beforeSeq ?? Infinity)).slice(-limit);
    return { messages: page.map((m) => this.view(m)), hasMore: false };
  }
}

const PUSHED = { recall: "message.recalled", delete: "message.deleted", edit: "message.edited", react: "message.reaction", unreact: "message.reaction" };

/**
 * The server: answers with `handler(route, data, frame)` when it returns anything but undefined
 * (an Error is a refusal, SILENT no answer), otherwise from the log, as user "1".
 */
class FakeServer {
  constructor(handler = () => undefined, { page } = {}) {
    this.handler = handler;
    this.page = page;
    this.log = new Log("1");
    this.sockets = [];
    this.requests = [];
    this.tickets = 0;
    this.links = 0;
    this.online = true;
    this.waiters = new Set();
    const server = this;
    this.fetches = 0;
    this.fetch = async (url, init) => {
      server.fetches += 1;
      server.poke();
      if (!server.online) throw new TypeError("fetch failed");
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
      send(bytes) {
        const frame = typeof bytes === "string" ? JSON.parse(bytes) : msgpack.decode(bytes);
        server.requests.push(frame);
        server.poke();
        Promise.resolve(server.answer(frame)).then((reply) => {
          if (reply === SILENT || this.readyState !== 1) return;
          const res = reply instanceof Error
            ? { type: "res", id: frame.id, code: 1, error: reply.message, message: reply.message, data: null, retryAfter: reply.retryAfter }
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

  answer(frame) {
    const custom = this.handler(frame.route, frame.data, frame);
    if (custom !== undefined) return custom;
    const { route, data } = frame;
    const log = this.log;
    switch (route) {
      case "/message/sync":
        return log.sync(data, this.page);
      case "/message/history":
        return log.history(data);
      case "/conversation/list":
        return { conversations: [...log.conversations.values()].map((c) => log.state(c)), totalUnread: 0, nextCursor: null };
      case "/message/send": {
        const id = data.chatType === "group" ? `g:${data.to}` : `s:1:${data.to}`;
        return { message: log.send(id, data.content.text, { clientMsgId: data.clientMsgId }) };
      }
      case "/message/recall":
      case "/message/delete":
      case "/message/edit":
      case "/message/react":
      case "/message/unreact": {
        const change = log.change(route.slice("/message/".length), data.messageId, { content: data.content, key: data.key });
        return { message: log.view(log.find(data.messageId)[1]), pos: change?.pos ?? null, change: change ?? null };
      }
      case "/message/hide": {
        const [, m] = log.find(data.messageId);
        return { message: { ...log.view(m), status: "hidden", content: {}, reactions: [] } };
      }
      case "/conversation/read": {
        const c = log.conversation(data.conversationId);
        c.readSeq = Math.max(c.readSeq, data.seq);
        return { conversation: log.state(c) };
      }
      case "/conversation/delivered":
        return {};
      case "/conversation/update": {
        const { conversationId, ...patch } = data;
        const c = Object.assign(log.conversation(conversationId), patch);
        return { conversation: log.state(c) };
      }
      default:
        return SILENT;
    }
  }

  get current() {
    return this.sockets.at(-1);
  }

  deliver(socket, frame) {
    setTimeout(() => {
      if (socket.readyState === 1) socket.onmessage?.({ data: JSON.stringify(frame) });
      // After the frame and whatever it set going in microtasks.
      setTimeout(() => this.poke(), 0);
    }, 0);
  }

  push(event, data) {
    this.deliver(this.current, { type: "push", event, data });
  }

  /** The peer (user "2") sends; pushed unless `push` is false (the device was away). */
  peerSends(id, text, { push = true } = {}) {
    const message = this.log.send(id, text, { from: "2" });
    if (push) this.push("message.new", { message });
    return message;
  }

  /** The peer (or `by`) changes a message; pushed unless `push` is false. */
  peerChanges(type, messageId, { push = true, by = "2", ...rest } = {}) {
    const change = this.log.change(type, messageId, { by, ...rest });
    if (push && change) this.push(PUSHED[type], change);
    return change;
  }

  /** The connection drops, as when the server restarts. */
  drop() {
    const s = this.current;
    s.readyState = 3;
    s.onclose?.({ code: 1001 });
  }

  /** Resolves once `check()` holds, re-checked after every frame, request and fetch. */
  when(check, what = "the condition", ms = 3000) {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = { check, resolve };
      waiter.timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out waiting for ${what}`));
      }, ms);
      this.waiters.add(waiter);
    });
  }

  poke() {
    for (const w of this.waiters) {
      if (w.check()) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  /** The routes asked from request `from` on, in order. */
  routes(from = 0) {
    return this.requests.slice(from).map((r) => r.route);
  }
}

/** The next `event` of `client` that satisfies `check`. */
function next(client, event, check = () => true, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no ${event} event in time`));
    }, ms);
    const stop = client.on(event, (data) => {
      if (!check(data)) return;
      clearTimeout(timer);
      stop();
      resolve(data);
    });
  });
}

// ---- helpers ----

const connected = (server, extra = {}) => new Chatgate({
  url: "http://x", token: "t", WebSocket: server.WebSocket, fetch: server.fetch, backoff: { initial: 5, max: 20 }, ...extra,
});

/** Every event of `names` the client emits from now on, in order, as `[name, data]`. */
function record(client, names) {
  const seen = [];
  for (const name of names) client.on(name, (data) => seen.push([name, data]));
  return seen;
}

/** What the client holds of `id` is what a device holding the whole log holds. */
function holdsTheLog(client, server, id) {
  const held = client.held(id);
  const want = server.log.held(id);
  assert.equal(held.pos, want.pos, `${id}: position`);
  assert.deepEqual(held.messages, want.messages, `${id}: messages`);
  assert.equal(held.unread, want.unread, `${id}: unread`);
}

/** Takes the client offline until `server.online` is set again, and waits for a failed attempt. */
async function offline(server) {
  server.online = false;
  const fetches = server.fetches;
  server.drop();
  await server.when(() => server.fetches > fetches, "a reconnection attempt");
}

// ---- the tests ----

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
  let release;
  const released = new Promise((resolve) => { release = resolve; });
  const server = new FakeServer((route, data) => {
    if (route === "/slow") return released.then(() => ({ n: data.n }));
    if (route === "/fast") return { n: data.n };
    if (route === "/refused") return new Error("forbidden");
    return undefined;
  });
  const client = connected(server, { requestTimeout: 100 });
  await client.connect();
  const slow = client.request("/slow", { n: 1 });
  assert.equal((await client.request("/fast", { n: 2 })).n, 2, "the later request is answered first");
  release();
  assert.equal((await slow).n, 1);
  await assert.rejects(client.request("/refused"), (e) => e instanceof ChatgateError && e.reason === "forbidden");
  await assert.rejects(client.request("/silent"), (e) => e.reason === "timeout");
  client.close();
  await assert.rejects(client.request("/fast"), (e) => e.reason === "not_connected");
});

test("the first connection loads every conversation's whole log, paged, without events, and is ready after it", async () => {
  const server = new FakeServer(undefined, { page: { entries: 3, conversations: 1 } });
  const log = server.log;
  const hello = log.send("s:1:2", "hello", { from: "2" });
  const mine = log.send("s:1:2", "mine");
  log.change("edit", mine.id, { content: { text: "mine, edited" } });
  log.change("react", hello.id, { by: "2", key: "👍" });
  log.change("react", hello.id, { key: "👍" });
  log.change("react", hello.id, { key: "🎉" });
  log.change("unreact", hello.id, { key: "🎉" });
  const group = Array.from({ length: 7 }, (_, i) => log.send("g:5", `g${i}`, { from: "3" }));
  log.change("recall", group[2].id, { by: "3" });
  log.change("delete", group[5].id, { by: "3" });
  log.conversation("g:5").readSeq = 4;
  const client = connected(server);
  const seen = record(client, ["message", "changed", "conversation", "ready"]);
  await client.connect();
  assert.deepEqual(seen.map(([name]) => name), ["ready"], "the load itself is not news");
  assert.equal(seen[0][1].resumed, false);
  holdsTheLog(client, server, "s:1:2");
  holdsTheLog(client, server, "g:5");
  assert.equal(client.held("g:5").unread, 2, "g4 and g6: g0 to g3 are read, g5 deleted");
  assert.deepEqual(client.held("s:1:2").messages[0].reactions, [{ key: "👍", count: 2, mine: true }]);
  assert.ok(server.routes().filter((r) => r === "/message/sync").length >= 6, "paged");
  client.close();
});

test("pushes are applied in log order, once: repeats are ignored and a gap is filled by sync", async () => {
  const server = new FakeServer();
  server.log.send("g:1", "before", { from: "2" });
  const client = connected(server);
  await client.connect();
  const seen = record(client, ["message", "changed", "recalled"]);
  const log = server.log;
  const m = [1, 2, 3, 4].map((i) => log.send("g:1", `m${i}`, { from: "2" }));
  const edit = log.change("edit", m[0].id, { by: "2", content: { text: "m1!" } });
  const react = log.change("react", m[1].id, { by: "2", key: "🎉" });
  const recall = log.change("recall", m[2].id, { by: "2" });
  const syncs = server.routes().length;
  // Repeated, and m3's push is lost: m4 comes past a gap.
  for (const message of [m[0], m[0], m[1], m[3]]) server.push("message.new", { message });
  server.push("message.edited", edit);
  server.push("message.reaction", react);
  server.push("message.recalled", recall);
  server.push("message.new", { message: m[1] });
  await server.when(() => client.held("g:1").pos === 8, "position 8");
  assert.ok(server.routes(syncs).includes("/message/sync"), "the gap was synced");
  const summary = seen.map(([name, d]) => (name === "message" ? `message ${d.seq}` : `${name} ${(d.change || d).type} ${(d.change || d).pos}`));
  assert.deepEqual(summary, ["message 2", "message 3", "message 4", "message 5", "changed edit 6", "changed react 7", "changed recall 8", "recalled recall 8"]);
  assert.equal(seen[4][1].message.content.text, "m1!", "changed carries the message as it is now");
  holdsTheLog(client, server, "g:1");
  client.close();
});

test("a peer's messages are acknowledged as delivered, once per conversation for what came together", async () => {
  const server = new FakeServer();
  server.log.send("s:1:2", "before", { from: "2" });
  server.log.send("s:1:2", "mine");
  const client = connected(server);
  await client.connect();
  const delivered = () => server.requests.filter((r) => r.route === "/conversation/delivered").map((r) => r.data);
  await server.when(() => delivered().length === 1, "the synced message acknowledged");
  assert.deepEqual(delivered(), [{ conversationId: "s:1:2", seq: 1 }], "what came by sync, not the own message");
  server.peerSends("s:1:2", "one");
  server.peerSends("s:1:2", "two");
  server.peerSends("g:5", "in a group");
  await server.when(() => delivered().length === 2, "the pushed messages acknowledged");
  assert.deepEqual(delivered()[1], { conversationId: "s:1:2", seq: 4 });
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(delivered().length, 2, "one acknowledgement for both, none for the group");
  client.close();
});

test("a conversation first heard of at a later position is fetched from its start", async () => {
  const server = new FakeServer();
  const client = connected(server);
  await client.connect();
  const seen = record(client, ["message"]);
  // The user was added to a group that had talked for a while: its first push is its sixth message.
  for (let i = 1; i <= 5; i++) server.log.send("g:9", `earlier ${i}`, { from: "3" });
  server.peerSends("g:9", "welcome");
  await server.when(() => seen.length === 6, "six messages");
  assert.deepEqual(seen.map(([, m]) => m.seq), [1, 2, 3, 4, 5, 6]);
  holdsTheLog(client, server, "g:9");
  client.close();
});

test("a message deleted for this user reads as hidden, here and when another device did it", async () => {
  const server = new FakeServer();
  const first = server.log.send("s:1:2", "first", { from: "2" });
  const second = server.log.send("s:1:2", "second", { from: "2" });
  const client = connected(server);
  await client.connect();
  const here = await client.deleteForMe(first.id);
  assert.equal(here.message.status, "hidden");
  const elsewhere = next(client, "hidden");
  server.push("message.hidden", { conversationId: "s:1:2", messageId: second.id, seq: second.seq });
  assert.equal((await elsewhere).messageId, second.id);
  const statuses = client.held("s:1:2").messages.map((m) => [m.seq, m.status, JSON.stringify(m.content)]);
  assert.deepEqual(statuses, [[1, "hidden", "{}"], [2, "hidden", "{}"]]);
  assert.equal(client.held("s:1:2").unread, 0, "hidden messages are not unread");
  client.close();
});

test("after a reconnection, what was missed comes once, in log order, with the state changed elsewhere; ready says resumed", async () => {
  const server = new FakeServer();
  const hello = server.log.send("s:1:2", "hello", { from: "2" });
  const client = connected(server);
  await client.connect();
  const seen = record(client, ["message", "changed", "conversation", "ready"]);
  await offline(server);
  const away = server.peerSends("s:1:2", "while away", { push: false });
  server.peerChanges("edit", hello.id, { content: { text: "hello!" }, push: false });
  server.peerChanges("react", away.id, { key: "👍", push: false });
  // Read and pinned on another device of the user: state the log does not carry.
  Object.assign(server.log.conversation("s:1:2"), { readSeq: 1, pinned: true });
  server.online = true;
  await next(client, "ready");
  const summary = seen.map(([name, d]) => (name === "message" ? `message ${d.seq}` : name === "changed" ? `changed ${d.change.type}` : name));
  assert.deepEqual(summary, ["message 2", "changed edit", "changed react", "conversation", "ready"]);
  assert.equal(seen.at(-1)[1].resumed, true);
  assert.deepEqual([seen[3][1].readSeq, seen[3][1].pinned], [1, true]);
  holdsTheLog(client, server, "s:1:2");
  client.close();
});

test("a failed resync is reported and retried with backoff, and ready waits for it", async () => {
  let failures = 0;
  const server = new FakeServer((route) => {
    if (route === "/message/sync" && server.sockets.length > 1 && failures < 2) {
      failures += 1;
      return new Error("unavailable");
    }
    return undefined;
  });
  const client = connected(server);
  await client.connect();
  const seen = record(client, ["syncError", "message", "ready"]);
  server.peerSends("s:1:2", "missed", { push: false });
  server.drop();
  await next(client, "ready");
  const summary = seen.map(([name, d]) => (name === "syncError" ? `${name} ${d.attempt} ${d.error.reason} ${d.retryIn > 0}` : name));
  assert.deepEqual(summary, ["syncError 0 unavailable true", "syncError 1 unavailable true", "message", "ready"]);
  holdsTheLog(client, server, "s:1:2");
  client.close();
});

test("a reset drops the conversation, holds its newest page, and goes on from the position given", async () => {
  const server = new FakeServer();
  for (let i = 1; i <= 60; i++) server.log.send("g:2", `m${i}`, { from: "2" });
  const client = connected(server);
  await client.connect();
  const seen = record(client, ["reset", "message"]);
  server.drop();
  // While away, the log is compacted past what the device holds.
  for (let i = 61; i <= 63; i++) server.peerSends("g:2", `m${i}`, { push: false });
  server.log.conversation("g:2").floor = 62;
  await next(client, "ready");
  assert.deepEqual(seen.map(([name]) => name), ["reset"]);
  assert.deepEqual(seen[0][1].messages.map((m) => m.seq), Array.from({ length: 50 }, (_, i) => i + 14));
  const held = client.held("g:2");
  assert.deepEqual([held.pos, held.lastSeq, held.messages.length, held.messages[0].seq], [63, 63, 50, 14]);
  // And on from there.
  server.peerSends("g:2", "m64");
  await next(client, "message");
  assert.equal(client.held("g:2").pos, 64);
  client.close();
});

test("sends and changes made offline are queued and flushed in order after the resync, each applied once", async () => {
  const server = new FakeServer();
  const theirs = server.log.send("s:1:2", "hi", { from: "2" });
  const mine = server.log.send("s:1:2", "mine");
  const client = connected(server);
  await client.connect();
  const seen = record(client, ["message", "changed"]);
  await offline(server);
  const from = server.requests.length;
  const made = [
    client.sendText("2", "one"),
    client.edit(mine.id, "mine, edited"),
    client.react(theirs.id, "👍"),
    client.sendText("2", "two"),
    client.markRead("s:1:2", 2),
    client.updateConversation("s:1:2", { pinned: true }),
  ];
  assert.equal(client.react(theirs.id, "👍"), made[2], "the same change again is the same request");
  await server.when(() => server.fetches > 3, "more reconnection attempts");
  assert.equal(server.requests.length, from, "nothing is sent while offline, and nothing fails");
  server.online = true;
  const [one, edited, reacted, two, read, updated] = await Promise.all(made);
  const routes = server.routes(from);
  assert.equal(routes[0], "/message/sync", "synced first");
  // The second send waits for the first, to the same conversation; the others go meanwhile.
  assert.deepEqual(routes.filter((r) => !["/message/sync", "/conversation/list"].includes(r)),
    ["/message/send", "/message/edit", "/message/react", "/conversation/read", "/conversation/update", "/message/send"]);
  // Sending reads the conversation up to what was sent: the read to 2 finds it at 3 already.
  assert.deepEqual([one.seq, two.seq, edited.pos, reacted.pos, read.readSeq, updated.pinned], [3, 4, 4, 5, 3, true]);
  const summary = seen.map(([name, d]) => (name === "message" ? `message ${d.content.text}` : `changed ${d.change.type} ${d.change.pos}`));
  assert.deepEqual(summary, ["message one", "changed edit 4", "changed react 5", "message two"]);
  assert.deepEqual(client.held("s:1:2").messages[0].reactions, [{ key: "👍", count: 1, mine: true }]);
  holdsTheLog(client, server, "s:1:2");
  assert.deepEqual([client.held("s:1:2").readSeq, client.held("s:1:2").conversation.pinned], [4, true]);
  client.close();
});

test("a send and a change whose answers were lost are retried after reconnecting and applied once; a target waits", async () => {
  const lost = new Set(["/message/send", "/message/react"]);
  const server = new FakeServer((route, data) => {
    if (!lost.has(route)) return undefined;
    // Made, but the answer never comes back.
    lost.delete(route);
    if (route === "/message/send") server.log.send("s:1:2", data.content.text, { clientMsgId: data.clientMsgId });
    else server.log.change("react", data.messageId, { key: data.key });
    return SILENT;
  });
  const message = server.log.send("s:1:2", "x", { from: "2" });
  const client = connected(server);
  await client.connect();
  const seen = record(client, ["message"]);
  const from = server.requests.length;
  const sent = client.sendText("2", "once");
  const react = client.react(message.id, "👍");
  const unreact = client.unreact(message.id, "👍");
  const other = client.react(message.id, "🎉");
  await server.when(() => server.routes(from).length === 3, "the first three");
  assert.deepEqual(server.requests.slice(from).map((r) => `${r.route} ${r.data.key}`),
    ["/message/send undefined", "/message/react 👍", "/message/react 🎉"], "the unreact waits for the react before it");
  server.drop();
  const [m, r, u] = await Promise.all([sent, react, unreact, other]);
  const keys = server.requests.filter((q) => q.route === "/message/send").map((q) => q.data.clientMsgId);
  assert.deepEqual([keys.length, keys[0] === keys[1], m.seq], [2, true, 2], "one clientMsgId, one message");
  assert.equal(r.pos, null, "the retry found the reaction made");
  const kinds = server.log.conversation("s:1:2").entries.map((e) => (e.message ? e.message.content.text : `${e.change.type} ${e.change.key}`));
  assert.deepEqual(kinds, ["x", "once", "react 👍", "react 🎉", "unreact 👍"], "each applied once");
  assert.equal(u.pos, 5);
  assert.deepEqual(seen.map(([, d]) => d.content.text), ["once"]);
  holdsTheLog(client, server, "s:1:2");
  client.close();
});

test("a refused change fails alone; a rate-limited send waits and is not overtaken", async () => {
  let limited = false;
  const server = new FakeServer((route, data) => {
    if (route === "/message/edit") return new Error("forbidden");
    if (route === "/message/send" && data.content.text === "b" && !limited) {
      limited = true;
      return Object.assign(new Error("rate_limited"), { retryAfter: 10 });
    }
    return undefined;
  });
  const client = connected(server);
  await client.connect();
  const a = client.sendText("2", "a");
  const refused = client.edit("99", "nope");
  const b = client.sendText("2", "b");
  const c = client.sendText("2", "c");
  await assert.rejects(refused, (e) => e.reason === "forbidden");
  const sent = await Promise.all([a, b, c]);
  assert.deepEqual(sent.map((m) => `${m.seq} ${m.content.text}`), ["1 a", "2 b", "3 c"]);
  const keys = server.requests.filter((r) => r.route === "/message/send" && r.data.content.text === "b").map((r) => r.data.clientMsgId);
  assert.equal(keys.length, 2);
  assert.equal(keys[0], keys[1], "a retry keeps its clientMsgId");
  client.close();
});

test("a kicked session does not reconnect, and what it had queued fails", async () => {
  const server = new FakeServer((route) => {
    if (route === "/message/send") return new Error("validation.text");
    if (route === "/conversation/update") return SILENT;
    return undefined;
  });
  const client = connected(server);
  await client.connect();
  await assert.rejects(client.sendText("2", ""), (e) => e.reason === "validation.text");
  const pin = client.updateConversation("s:1:2", { pinned: true });
  const unpin = client.updateConversation("s:1:2", { pinned: false });
  await server.when(() => server.routes().includes("/conversation/update"), "the pin");
  const kicked = next(client, "kicked");
  server.push("session.kicked", { reason: "logout" });
  assert.equal((await kicked).reason, "logout");
  server.current.readyState = 3;
  server.current.onclose({ code: 4001 });
  assert.equal(client.state, "closed", "no reconnection after a kick");
  await assert.rejects(pin, (e) => e.reason === "closed");
  await assert.rejects(unpin, (e) => e.reason === "closed");
  assert.equal(server.sockets.length, 1);
});

test("each socket opens with a ticket of its own; the token goes into no URL", async () => {
  const server = new FakeServer();
  const client = connected(server);
  await client.connect();
  server.drop();
  await next(client, "ready");
  assert.deepEqual(server.sockets.map((s) => new URL(s.url).searchParams.get("ticket")), ["ticket1", "ticket2"]);
  assert.ok(server.sockets.every((s) => !s.url.includes("token")), server.sockets.map((s) => s.url).join(" "));
  client.close();
});

test("file links are signed by the server, reused while fresh, and other URLs pass through", async () => {
  const server = new FakeServer();
  const client = connected(server);
  const first = await client.fileLink("/file/abc");
  assert.equal(first, "http://x/file/abc?exp=9&sig=s1");
  assert.equal(await client.fileLink("/file/abc"), first, "a fresh link is reused");
  assert.equal(server.links, 1);
  assert.equal(await client.fileLink("https://cdn.test/a.png"), "https://cdn.test/a.png");
  assert.ok(!first.includes("token"));
});

test("a backlog paged small over hundreds of sync rounds arrives whole, in order, once", async () => {
  const server = new FakeServer(undefined, { page: { entries: 7, conversations: 1 } });
  const client = connected(server);
  await client.connect();
  const seen = new Map();
  client.on("message", (m) => seen.set(m.conversationId, [...(seen.get(m.conversationId) || []), m.seq]));
  await offline(server);
  for (let c = 0; c < 100; c++) for (let i = 0; i < 30; i++) server.log.send(`g:${c}`, `m${i}`, { from: "2" });
  server.online = true;
  await next(client, "ready");
  assert.equal(seen.size, 100);
  for (const seqs of seen.values()) assert.deepEqual(seqs, Array.from({ length: 30 }, (_, i) => i + 1));
  assert.ok(server.routes().filter((r) => r === "/message/sync").length > 400);
  client.close();
});
