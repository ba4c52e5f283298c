// chatgate's JavaScript SDK: one WebSocket per device, requests correlated with their replies,
// typed events, reconnection with backoff and jitter, and a resync by seq after every
// reconnection, so the app sees every message exactly once and in order. Dependency-free.
// The API, with an example of each call, is in sdk/js/README.md.

import * as msgpack from "./msgpack.js";

import { ChatgateError, createText, strip } from "./content.js";

export * from "./content.js";

// Reasons worth sending again: the request may not have reached the server, or the server
// could not serve it for a while. Idempotent sends make the retry safe.
const RETRYABLE = new Set(["timeout", "connection.lost", "not_connected", "unavailable", "rate_limited"]);

function randomId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// ---- the client ----

/** A connection to chatgate for one user's device. */
export class Chatgate {
  /**
   * @param {object} options
   * @param {string} options.url the server, such as `http://localhost:8080` (or `location.origin`)
   * @param {string} [options.token] a login token; `login` and `register` set it
   * @param {"json"|"msgpack"} [options.format] the socket's encoding
   */
  constructor(options) {
    const o = options || {};
    if (!o.url) throw new TypeError("Chatgate needs a url");
    this.url = o.url.replace(/\/$/, "");
    this.token = o.token || null;
    this.format = o.format === "msgpack" ? "msgpack" : "json";
    this.requestTimeout = o.requestTimeout ?? 10_000;
    this.sendTimeout = o.sendTimeout ?? 5 * 60_000;
    this.backoff = { initial: 500, max: 15_000, ...(o.backoff || {}) };
    this.WebSocket = o.WebSocket || globalThis.WebSocket;
    this.fetch = o.fetch || globalThis.fetch?.bind(globalThis);
    this.random = o.random || Math.random;
    /** `idle`, `connecting`, `open`, `reconnecting` or `closed`. */
    this.state = "idle";
    /** The user, once logged in or connected. */
    this.user = null;
    this._listeners = new Map();
    this._pending = new Map();
    this._nextId = 1;
    this._ws = null;
    this._attempt = 0;
    this._everReady = false;
    this._wantOpen = false;
    this._reconnectTimer = null;
    this._waiters = [];
    // Per conversation: the last seq handed to the app, messages that came early, a gap fill in
    // progress.
    this._known = new Map();
    this._early = new Map();
    this._filling = new Set();
    // Signed file links by file id, with their expiry, so that re-rendering reuses one URL.
    this._links = new Map();
  }

  // ---- events ----

  /** Calls `handler(data)` on each `event`; returns a function that stops it. */
  on(event, handler) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(handler);
    return () => this.off(event, handler);
  }

  /** Stops calling `handler` on `event`. */
  off(event, handler) {
    this._listeners.get(event)?.delete(handler);
  }

  _emit(event, data) {
    for (const handler of this._listeners.get(event) || []) {
      try {
        handler(data);
      } catch (err) {
        if (event !== "error") this._emit("error", err);
      }
    }
  }

  _setState(state) {
    if (this.state !== state) {
      this.state = state;
      this._emit("state", state);
    }
  }

  // ---- HTTP ----

  async _http(method, route, data) {
    if (!this.fetch) throw new ChatgateError("not_supported", "no fetch in this environment");
    const headers = { "content-type": "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let url = `${this.url}${route}`;
    let body;
    if (method === "GET") {
      const query = new URLSearchParams(
        Object.entries(data || {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
      );
      if ([...query].length) url += `?${query}`;
    } else {
      body = JSON.stringify(data || {});
    }
    let response;
    try {
      response = await this.fetch(url, { method, headers, body });
    } catch (err) {
      throw new ChatgateError("connection.lost", String(err?.message || err));
    }
    const reply = await response.json().catch(() => ({ code: 1, error: "malformed_reply" }));
    if (reply.code !== 0) {
      throw new ChatgateError(reply.error, reply.message, { retryAfter: reply.retryAfter, status: response.status });
    }
    return reply.data;
  }

  /** Creates an account and logs in: resolves to `{token, userinfo}`. */
  async register(username, password) {
    const data = await this._http("POST", "/user/register", { username, password });
    this.token = data.token;
    this.user = data.userinfo;
    return data;
  }

  /** Logs in: resolves to `{token, userinfo}`. */
  async login(username, password) {
    const data = await this._http("POST", "/user/login", { username, password });
    this.token = data.token;
    this.user = data.userinfo;
    return data;
  }

  // ---- the socket ----

  /** Opens the socket and resolves once the session is ready; it then reconnects by itself. */
  connect() {
    if (!this.token) return Promise.reject(new ChatgateError("auth.required", "log in first"));
    if (!this.WebSocket) return Promise.reject(new ChatgateError("not_supported", "no WebSocket in this environment"));
    this._wantOpen = true;
    const ready = new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
    if (!this._ws) this._open();
    return ready;
  }

  /** Closes the socket for good (no reconnection). */
  close() {
    this._wantOpen = false;
    clearTimeout(this._reconnectTimer);
    this._failPending("connection.lost", "closed by the app");
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      ws.close(1000);
    }
    this._setState("closed");
  }

  // The socket URL carries a single-use ticket of about 30 s, never the token: URLs are copied,
  // logged and cached, and a browser cannot put the token in a header of the handshake.
  async _wsUrl() {
    const { ticket } = await this._http("POST", "/user/ticket");
    const base = this.url.replace(/^http/, "ws");
    const format = this.format === "msgpack" ? "&format=msgpack" : "";
    return `${base}/ws?ticket=${encodeURIComponent(ticket)}${format}`;
  }

  async _open() {
    this._setState(this._everReady ? "reconnecting" : "connecting");
    // Holds the place of the socket while the ticket is fetched, so that nothing opens a second.
    const opening = { readyState: 0, close() {} };
    this._ws = opening;
    let url;
    try {
      url = await this._wsUrl();
    } catch (err) {
      if (this._ws !== opening) return;
      this._ws = null;
      // A refused token will not be accepted later: stop, as when kicked.
      if (err instanceof ChatgateError && err.reason?.startsWith("auth.")) {
        this._wantOpen = false;
        this._setState("closed");
        this._rejectWaiters(err);
        return;
      }
      this._scheduleReconnect();
      return;
    }
    if (this._ws !== opening || !this._wantOpen) {
      if (this._ws === opening) this._ws = null;
      return;
    }
    let ws;
    try {
      ws = new this.WebSocket(url);
    } catch (err) {
      this._ws = null;
      this._scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    ws.onmessage = (event) => this._onFrame(event.data);
    ws.onclose = (event) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._failPending("connection.lost", "the connection closed");
      // 4001: kicked (logout, reset, expiry, session limit): reconnecting would not help.
      if (event?.code === 4001) {
        this._wantOpen = false;
        this._setState("closed");
        this._rejectWaiters(new ChatgateError("closed", event?.reason || "closed by the server"));
        return;
      }
      this._scheduleReconnect();
    };
    ws.onerror = () => {};
  }

  /** The delay before reconnection attempt `attempt` (from 0): exponential, capped, jittered. */
  reconnectDelay(attempt) {
    const ceiling = Math.min(this.backoff.max, this.backoff.initial * 2 ** Math.min(attempt, 30));
    return Math.round(ceiling / 2 + (ceiling / 2) * this.random());
  }

  _scheduleReconnect() {
    if (!this._wantOpen) return;
    this._setState("reconnecting");
    const delay = this.reconnectDelay(this._attempt++);
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => {
      if (this._wantOpen && !this._ws) this._open();
    }, delay);
  }

  _rejectWaiters(err) {
    for (const w of this._waiters.splice(0)) w.reject(err);
  }

  _failPending(reason, message) {
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(new ChatgateError(reason, message));
      this._pending.delete(id);
    }
  }

  _decode(data) {
    if (typeof data === "string") return JSON.parse(data);
    return msgpack.decode(new Uint8Array(data));
  }

  _onFrame(data) {
    let frame;
    try {
      frame = this._decode(data);
    } catch (err) {
      this._emit("error", err);
      return;
    }
    if (frame.type === "res") {
      const pending = this._pending.get(frame.id);
      if (!pending) return;
      this._pending.delete(frame.id);
      clearTimeout(pending.timer);
      if (frame.code === 0) pending.resolve(frame.data);
      else pending.reject(new ChatgateError(frame.error, frame.message, { retryAfter: frame.retryAfter }));
    } else if (frame.type === "push") {
      this._onPush(frame.event, frame.data);
    }
  }

  _onPush(event, data) {
    switch (event) {
      case "session.ready":
        this._onReady(data);
        break;
      case "session.kicked":
        this._emit("kicked", data);
        break;
      case "message.new":
        this._deliver(data.message);
        break;
      case "message.recalled":
        this._emit("recalled", data);
        break;
      case "message.read":
        this._emit("read", data);
        break;
      case "typing":
        this._emit("typing", data);
        break;
      case "conversation.updated":
        this._emit("conversation", data.conversation);
        break;
      case "group.updated":
      case "group.member":
      case "group.dismissed":
        this._emit("group", { event, ...data });
        break;
      default:
        this._emit("push", { event, data });
    }
  }

  async _onReady(data) {
    const again = this._everReady;
    this._everReady = true;
    this._attempt = 0;
    this.userId = data.userId;
    this._setState("open");
    try {
      if (again) await this._resync();
      else await this._seed();
    } catch (err) {
      this._emit("error", err);
    }
    this._emit("ready", { ...data, resumed: again });
    for (const w of this._waiters.splice(0)) w.resolve(data);
  }

  /** What the app has: the last seq of each conversation as the server lists them now. */
  async _seed() {
    let cursor;
    do {
      const page = await this.request("/conversation/list", cursor ? { cursor, limit: 100 } : { limit: 100 });
      for (const c of page.conversations) {
        if (!this._known.has(c.conversationId)) this._known.set(c.conversationId, c.lastSeq);
      }
      cursor = page.nextCursor;
    } while (cursor);
  }

  /** After a reconnection: everything past the known seqs, in order, once. */
  // Answers are paged by bytes: a large backlog takes many rounds, each of which carries at
  // least one message, so a round that carries none means the server is not moving on.
  async _resync() {
    for (;;) {
      const conversations = [...this._known].map(([conversationId, seq]) => ({ conversationId, seq }));
      const reply = await this.request("/message/sync", { conversations });
      for (const c of reply.conversations) {
        for (const m of c.messages) this._deliver(m);
        if (c.hasMore) await this._fill(c.conversation.conversationId);
      }
      if (!reply.hasMore) return;
      if (!reply.conversations.some((c) => c.messages.length)) {
        throw new ChatgateError("sync.stalled", "the server answered a sync with more to come but nothing in it");
      }
    }
  }

  /**
   * Hands a message to the app exactly once and in seq order: a repeat is dropped, an early one
   * waits while the gap before it is filled from history.
   */
  _deliver(message) {
    const id = message.conversationId;
    const last = this._known.get(id);
    if (last === undefined) {
      // A conversation new to this device: it starts here.
      this._known.set(id, message.seq);
      this._emit("message", message);
      this._drainEarly(id);
      return;
    }
    if (message.seq <= last) return;
    if (message.seq === last + 1) {
      this._known.set(id, message.seq);
      this._emit("message", message);
      this._drainEarly(id);
      return;
    }
    if (!this._early.has(id)) this._early.set(id, new Map());
    this._early.get(id).set(message.seq, message);
    this._fill(id).catch((err) => this._emit("error", err));
  }

  _drainEarly(id) {
    const early = this._early.get(id);
    if (!early) return;
    let next = this._known.get(id) + 1;
    while (early.has(next)) {
      const m = early.get(next);
      early.delete(next);
      this._known.set(id, next);
      this._emit("message", m);
      next += 1;
    }
    for (const seq of early.keys()) if (seq < next) early.delete(seq);
    if (early.size === 0) this._early.delete(id);
  }

  /** Pages a conversation's history forward from the known seq until nothing is missing. */
  async _fill(id) {
    if (this._filling.has(id)) return;
    this._filling.add(id);
    try {
      for (;;) {
        const afterSeq = this._known.get(id) ?? 0;
        const reply = await this.request("/message/history", { conversationId: id, afterSeq, limit: 100 });
        for (const m of reply.messages) this._deliver(m);
        if (!reply.hasMore || !reply.messages.length) break;
      }
    } finally {
      this._filling.delete(id);
    }
  }

  // ---- requests ----

  /** Sends a request over the socket; resolves to its `data` or rejects with a ChatgateError. */
  request(route, data = {}, { timeout } = {}) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) {
      return Promise.reject(new ChatgateError("not_connected", "the socket is not open"));
    }
    const id = this._nextId++;
    const frame = { type: "req", id, route, data };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new ChatgateError("timeout", `${route} had no answer in time`));
      }, timeout ?? this.requestTimeout);
      this._pending.set(id, { resolve, reject, timer });
      try {
        ws.send(this.format === "msgpack" ? msgpack.encode(frame) : JSON.stringify(frame));
      } catch (err) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(new ChatgateError("connection.lost", String(err?.message || err)));
      }
    });
  }

  _whenOpen(deadline) {
    if (this._ws && this.state === "open") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const stop = this.on("ready", () => {
        stop();
        clearTimeout(timer);
        resolve();
      });
      const timer = setTimeout(() => {
        stop();
        reject(new ChatgateError("timeout", "not connected in time"));
      }, Math.max(0, deadline - Date.now()));
    });
  }

  // ---- messages ----

  /**
   * Sends a built message (`createText(...)` and the like) to a user (`chatType: "single"`) or
   * a group. Its clientMsgId is chosen once and kept across retries, which go on (after
   * reconnections, and rate limits) until the server acknowledges it: a retry never makes a
   * duplicate. Resolves to the stored message, which is also handed to "message" listeners.
   */
  async send(chatType, to, built, { clientMsgId } = {}) {
    const key = clientMsgId || randomId();
    const data = { chatType, to: String(to), kind: built.kind, content: built.content, clientMsgId: key };
    const deadline = Date.now() + this.sendTimeout;
    for (let attempt = 0; ; attempt++) {
      try {
        await this._whenOpen(deadline);
        const reply = await this.request("/message/send", data);
        this._deliver(reply.message);
        return reply.message;
      } catch (err) {
        const retry = err instanceof ChatgateError && RETRYABLE.has(err.reason) && this._wantOpen;
        if (!retry || Date.now() >= deadline) throw err;
        const wait = err.reason === "rate_limited" ? err.retryAfter || 1000 : this.reconnectDelay(Math.min(attempt, 4));
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Sends text to a user. */
  sendText(to, text, options) {
    return this.send("single", to, createText(text, options));
  }

  /** A page of history, ascending by seq: `{messages, hasMore}`. */
  history(conversationId, { beforeSeq, afterSeq, limit } = {}) {
    return this.request("/message/history", strip({ conversationId, beforeSeq, afterSeq, limit }));
  }

  /** Recalls a message. */
  recall(messageId) {
    return this.request("/message/recall", { messageId: String(messageId) });
  }

  /** Tells the other participants the user is typing. */
  typing(conversationId) {
    return this.request("/message/typing", { conversationId });
  }

  /** Who has read a message: `{count, userIds}`. */
  readers(messageId) {
    return this.request("/message/readers", { messageId: String(messageId) });
  }

  // ---- conversations ----

  /** The conversation list: `{conversations, totalUnread, nextCursor}`, pinned first. */
  conversations({ cursor, limit } = {}) {
    return this.request("/conversation/list", strip({ cursor, limit }));
  }

  /** One conversation. */
  conversation(conversationId) {
    return this.request("/conversation/info", { conversationId }).then((d) => d.conversation);
  }

  /** Unread counts: `{total, conversations: [{conversationId, unread}]}`. */
  unread() {
    return this.request("/conversation/unread", {});
  }

  /** Marks a conversation read up to `seq`. */
  markRead(conversationId, seq) {
    return this.request("/conversation/read", { conversationId, seq }).then((d) => d.conversation);
  }

  /** Pins, mutes, hides or sets the draft of a conversation. */
  updateConversation(conversationId, patch) {
    return this.request("/conversation/update", { conversationId, ...patch }).then((d) => d.conversation);
  }

  // ---- users ----

  /** The user's own profile, or another's by `{id}` or `{username}`. */
  userInfo(who = {}) {
    return this.request("/user/info", strip({ id: who.id, username: who.username })).then((d) => d.userinfo);
  }

  /** Changes the user's profile. */
  updateProfile(userinfo) {
    return this.request("/user/info", { userinfo }).then((d) => d.userinfo);
  }

  /** Who of `ids` is online: `{id: boolean}`. */
  online(ids) {
    return this.request("/user/online", { ids: ids.map(String) }).then((d) => d.online);
  }

  /** Logs this token out; the server closes the socket. */
  logout() {
    return this.request("/user/logout", {});
  }

  // ---- groups ----

  /** Creates a group with members (user ids). */
  createGroup({ name, members = [], joinPolicy, intro, avatar, maxMembers }) {
    return this.request("/group/room/add", strip({ name, members: members.map(String), joinPolicy, intro, avatar, maxMembers }))
      .then((d) => d.group);
  }

  /** Joins an open group. */
  joinGroup(groupId) {
    return this.request("/group/room/join", { groupId: String(groupId) }).then((d) => d.group);
  }

  /** Leaves a group. */
  quitGroup(groupId) {
    return this.request("/group/room/quit", { groupId: String(groupId) });
  }

  /** Adds members. */
  invite(groupId, members) {
    return this.request("/group/room/invite", { groupId: String(groupId), members: members.map(String) }).then((d) => d.group);
  }

  /** Removes members. */
  kick(groupId, members) {
    return this.request("/group/room/kick", { groupId: String(groupId), members: members.map(String) }).then((d) => d.group);
  }

  /** A group and the user's role in it: `{group, myRole}`. */
  groupInfo(groupId) {
    return this.request("/group/room/info", { groupId: String(groupId) });
  }

  /** The user's groups. */
  groups() {
    return this.request("/group/room/list", {}).then((d) => d.groups);
  }

  /** A page of members with their roles: `{members, nextCursor}`. */
  members(groupId, { cursor, limit } = {}) {
    return this.request("/group/room/members", strip({ groupId: String(groupId), cursor, limit }));
  }

  /** Changes a group's name, intro, notice, avatar or join policy. */
  updateGroup(groupId, patch) {
    return this.request("/group/room/update", { groupId: String(groupId), ...patch }).then((d) => d.group);
  }

  /** Makes a member an `admin` or a plain `member`. */
  setRole(groupId, userId, role) {
    return this.request("/group/room/role", { groupId: String(groupId), userId: String(userId), role }).then((d) => d.group);
  }

  /** Hands the group over to another member. */
  transfer(groupId, userId) {
    return this.request("/group/room/transfer", { groupId: String(groupId), userId: String(userId) }).then((d) => d.group);
  }

  /** Mutes a member (or, without userId, the whole group) until `until` (ms). */
  mute(groupId, until, userId) {
    return this.request("/group/room/mute", strip({ groupId: String(groupId), until, userId: userId && String(userId) }))
      .then((d) => d.group);
  }

  /** Dismisses a group. */
  dismiss(groupId) {
    return this.request("/group/room/dismiss", { groupId: String(groupId) });
  }

  // ---- media ----

  /**
   * Uploads a file (a Blob or File in browsers, bytes elsewhere); `onProgress(sent, total)` is
   * called as it goes where the platform can tell. Resolves to `{fileId, url, size, mime, sha256}`.
   */
  upload(file, { onProgress } = {}) {
    const url = `${this.url}/file/upload`;
    if (typeof XMLHttpRequest !== "undefined") {
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open("POST", url);
        if (this.token) xhr.setRequestHeader("authorization", `Bearer ${this.token}`);
        if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
        xhr.onload = () => {
          let reply;
          try {
            reply = JSON.parse(xhr.responseText);
          } catch {
            reject(new ChatgateError("malformed_reply", xhr.statusText, { status: xhr.status }));
            return;
          }
          if (reply.code === 0) resolve(reply.data);
          else reject(new ChatgateError(reply.error, reply.message, { status: xhr.status }));
        };
        xhr.onerror = () => reject(new ChatgateError("connection.lost", "the upload failed"));
        xhr.send(file);
      });
    }
    const headers = { authorization: `Bearer ${this.token}` };
    return this.fetch(url, { method: "POST", headers, body: file }).then(async (response) => {
      const reply = await response.json();
      if (reply.code !== 0) throw new ChatgateError(reply.error, reply.message, { status: response.status });
      if (onProgress) onProgress(reply.data.size, reply.data.size);
      return reply.data;
    });
  }

  /**
   * Resolves to a URL that an `<img>` or a link can use for `url`: for an uploaded file
   * (`/file/{fileId}`), a signed link of 10 to 15 minutes, reused until a minute before it
   * expires; any other URL as it is.
   */
  async fileLink(url) {
    if (!url || !url.startsWith("/file/")) return url;
    const fileId = url.slice("/file/".length);
    const cached = this._links.get(fileId);
    if (cached && cached.expiresAt - Date.now() > 60_000) return cached.url;
    const link = await this._http("POST", "/file/link", { fileId });
    const full = { url: `${this.url}${link.url}`, expiresAt: link.expiresAt };
    if (this._links.size >= 1000) this._links.delete(this._links.keys().next().value);
    this._links.set(fileId, full);
    return full.url;
  }
}
