// chatgate's JavaScript SDK: one WebSocket per device, requests correlated with their replies,
// typed events, reconnection with backoff and jitter, and every conversation held as its log
// says it is: messages and changes applied in log order, once, resynced by position after every
// reconnection, and changes made offline queued until the server has them. Dependency-free.
// The API, with an example of each call, is in sdk/js/README.md.

import * as msgpack from "./msgpack.js";

import { ChatgateError, createText, strip } from "./content.js";

export * from "./content.js";

// Reasons worth sending again: the request may not have reached the server, or the server
// could not serve it for a while. The server's idempotency (a send's clientMsgId, a change that
// is already made changing nothing) makes the retry safe.
const RETRYABLE = new Set(["timeout", "connection.lost", "not_connected", "unavailable", "rate_limited"]);

// Queued requests in flight at once: enough to pipeline, few enough that a long queue flushed
// after a reconnection neither times out behind itself nor runs into the session's rate limit
// as one burst (the server closes a session refused too often).
const OUTBOX_WINDOW = 16;
// How long a delivered receipt waits for more messages of its conversation, in ms.
const DELIVERED_DELAY = 250;

// What is held of a conversation after a reset: the newest page, as the server suggests.
const RESET_PAGE = 50;

// The fields of a conversation that are the user's own, rather than its messages'.
const OWN_FIELDS = ["readSeq", "pinned", "muted", "hidden", "draft"];

/** A fresh idempotency key, for a send's `clientMsgId`. */
export function randomId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A message as `change` left it, as seen by `userId`. Changes carry state, not differences. */
function changed(message, change, userId) {
  switch (change.type) {
    case "recall":
      return { ...message, status: "recalled", content: {}, reactions: [] };
    case "delete":
      return { ...message, status: "deleted", content: {}, reactions: [] };
    case "edit":
      return { ...message, content: change.content, editedAt: change.at };
    case "react":
    case "unreact": {
      const reactions = (message.reactions || []).filter((r) => r.key !== change.key || change.count > 0);
      const i = reactions.findIndex((r) => r.key === change.key);
      const mine = change.by === userId ? change.type === "react" : reactions[i]?.mine ?? false;
      if (i >= 0) reactions[i] = { ...reactions[i], count: change.count, mine };
      else if (change.count > 0) reactions.push({ key: change.key, count: change.count, mine });
      return { ...message, reactions };
    }
    default:
      return message;
  }
}

/** What the device holds of one conversation. */
class Held {
  constructor(id) {
    this.id = id;
    /** The last log position applied. */
    this.pos = 0;
    this.lastSeq = 0;
    /** By seq, in seq order (the log adds them in that order). */
    this.messages = new Map();
    /** The server's conversation object, its read position never moving back. */
    this.conversation = null;
    /** Entries past a gap, by position, until sync fills it. */
    this.early = new Map();
    /** Counts the pushes of the user's own state, so that an older snapshot does not undo one. */
    this.stamp = 0;
    /** While a reset fetches the newest page, entries wait in `early`. */
    this.resetting = false;
  }
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
    // Conversations by id. Until the first sync is done (`_loaded`) they fill silently: events
    // tell what changes after the app has been told it is ready.
    this._held = new Map();
    this._loaded = false;
    // Synced on the current socket: the outbox may flush.
    this._ready = false;
    this._syncing = null;
    this._resyncing = null;
    // Sync requests sent, so that an entry can tell whether a sync was asked after it came.
    this._round = 0;
    // Where sync goes on: one cursor for every conversation's log (opaque, as the server gave
    // it), the request that began its round, and the position held of the user's own feed.
    this._cursor = "0";
    this._cursorDone = true;
    this._roundBegan = 0;
    this._feedPos = 0;
    // One-to-one seqs received but not yet acknowledged (delivered receipts), by conversation,
    // and the timer that sends them.
    this._unacked = new Map();
    this._ackTimer = null;
    // Sends and changes not yet acknowledged, in the order made.
    this._outbox = [];
    this._window = OUTBOX_WINDOW;
    this._pausedUntil = 0;
    this._pauseTimer = null;
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

  /** Opens the socket and resolves once the session is ready and synced; it then reconnects by itself. */
  connect() {
    if (!this.token) return Promise.reject(new ChatgateError("auth.required", "log in first"));
    if (!this.WebSocket) return Promise.reject(new ChatgateError("not_supported", "no WebSocket in this environment"));
    this._wantOpen = true;
    const ready = new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
    if (!this._ws) this._open();
    return ready;
  }

  /** Closes the socket for good (no reconnection); what is still queued fails. */
  close() {
    this._wantOpen = false;
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._pauseTimer);
    this._abandon(new ChatgateError("connection.lost", "closed by the app"));
    this._failPending("connection.lost", "closed by the app");
    this._ready = false;
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      ws.close(1000);
    }
    this._setState("closed");
  }

  /** The server will not take this session back (kicked, token refused): nothing more goes out. */
  _stop(err) {
    this._wantOpen = false;
    this._setState("closed");
    this._abandon(err);
    this._rejectWaiters(err);
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
        this._stop(err);
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
      this._ready = false;
      this._failPending("connection.lost", "the connection closed");
      // 4001: kicked (logout, reset, expiry, session limit): reconnecting would not help.
      if (event?.code === 4001) {
        this._stop(new ChatgateError("closed", event?.reason || "closed by the server"));
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
        this._offer(data.message.conversationId, { pos: data.message.pos, message: data.message });
        break;
      case "message.recalled":
      case "message.deleted":
      case "message.edited":
      case "message.reaction":
        this._offer(data.conversationId, { pos: data.pos, change: data });
        break;
      case "message.hidden":
        this._hideHeld(data);
        break;
      case "message.read":
        this._emit("read", data);
        break;
      case "message.delivered":
        this._emit("delivered", data);
        break;
      case "message.readCount":
        this._emit("readCount", data);
        break;
      case "typing":
        this._emit("typing", data);
        break;
      case "conversation.updated": {
        const h = this._hold(data.conversation.conversationId);
        h.stamp += 1;
        this._takeConversation(h, data.conversation);
        this._emit("conversation", h.conversation);
        break;
      }
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
    const ws = this._ws;
    const resumed = this._everReady;
    this._attempt = 0;
    this.userId = String(data.userId);
    this._setState("open");
    if (!(await this._resync(ws))) return;
    this._everReady = true;
    this._loaded = true;
    this._ready = true;
    this._emit("ready", { ...data, resumed });
    for (const w of this._waiters.splice(0)) w.resolve(data);
    this._pump();
  }

  // ---- the log ----

  _hold(id) {
    let h = this._held.get(id);
    if (!h) {
      h = new Held(id);
      this._held.set(id, h);
    }
    return h;
  }

  /**
   * Syncs until nothing is missing, on socket `ws`, retrying with backoff (each failure is a
   * `syncError` event) until it succeeds or the socket goes; resolves to whether it succeeded
   * with `ws` still the socket. The conversations' own state (read positions, pins, drafts,
   * groups joined and left) comes with it, from the user's feed.
   */
  async _resync(ws) {
    this._resyncing = ws;
    try {
      for (let attempt = 0; ; ) {
        try {
          await this._sync();
          if (this._ws !== ws) return false;
          // Something came past a gap after the last round: sync again.
          if (![...this._held.values()].some((h) => h.early.size)) return true;
        } catch (err) {
          if (this._ws !== ws || !this._wantOpen) return false;
          const retryIn = this.reconnectDelay(attempt++);
          this._emit("syncError", { error: err, attempt: attempt - 1, retryIn });
          await sleep(retryIn);
          if (this._ws !== ws || !this._wantOpen) return false;
        }
      }
    } finally {
      if (this._resyncing === ws) this._resyncing = null;
    }
  }

  /** One sync at a time: a caller during one shares it (it goes on while anything is missing). */
  _sync() {
    if (!this._syncing) {
      this._syncing = this._syncRounds().finally(() => {
        this._syncing = null;
      });
    }
    return this._syncing;
  }

  // One cursor stands for every conversation held: a round of answers brings each conversation
  // that moved since, from where it was held, paged by bytes; each answer moves the cursor, so an
  // answer that promises more but moves neither the cursor nor the feed means the server is not
  // moving on.
  async _syncRounds() {
    for (;;) {
      const round = ++this._round;
      if (this._cursorDone) this._roundBegan = round;
      const stamps = new Map([...this._held.values()].map((h) => [h.id, h.stamp]));
      const asked = { cursor: this._cursor, feed: this._feedPos };
      const reply = await this.request("/message/sync", { cursor: this._cursor, feedPos: this._feedPos });
      let reset = false;
      for (const c of reply.conversations) {
        const h = this._hold(c.conversation.conversationId);
        if (c.reset) {
          await this._holdNewest(h, c.pos);
          reset = true;
        } else {
          // A conversation joined, or never held: what came before the answer is fetched first.
          if (h.pos < c.from) await this._holdNewest(h, c.from);
          this._applySynced(h, c);
        }
        this._takeAnswered(h, c.conversation, stamps);
      }
      if (reply.feed) this._applyFeed(reply.feed, stamps);
      this._cursor = reply.cursor;
      this._cursorDone = !reply.hasMore;
      const waiting = this._cursorDone ? this._dropStale(this._roundBegan) : true;
      const more = reply.hasMore || reply.feed.hasMore;
      if (!more && !reset && !waiting) return;
      if (more && asked.cursor === this._cursor && asked.feed === this._feedPos) {
        throw new ChatgateError("sync.stalled", "the server answered a sync with more to come but nothing in it");
      }
    }
  }

  /**
   * Notes that a peer's message reached this device; the peer hears it (a delivered receipt)
   * shortly, one acknowledgement per conversation for all that came meanwhile. Best effort: one
   * lost to a reconnection is sent again by the next message, and reading implies it.
   */
  _received(conversationId, seq) {
    if (seq <= (this._unacked.get(conversationId) ?? 0)) return;
    this._unacked.set(conversationId, seq);
    this._ackTimer ??= setTimeout(() => {
      this._ackTimer = null;
      const due = [...this._unacked];
      this._unacked.clear();
      if (!this._ready) return;
      for (const [conversationId, seq] of due) {
        this.request("/conversation/delivered", { conversationId, seq }).catch(() => {});
      }
    }, DELIVERED_DELAY);
  }

  /**
   * Takes a conversation's own state from a sync answer, unless a push changed it after the
   * round began (its stamp moved past `stamps`), and tells of it once loaded.
   */
  _takeAnswered(h, conversation, stamps) {
    if (h.stamp === (stamps.get(h.id) ?? 0) && this._takeConversation(h, conversation) && this._loaded) {
      this._emit("conversation", h.conversation);
    }
  }

  /** Applies what changed in the user's own state, each thing as it is now. */
  _applyFeed(feed, stamps) {
    for (const change of feed.changes) {
      if (change.type === "conversation") {
        this._takeAnswered(this._hold(change.conversation.conversationId), change.conversation, stamps);
      } else if (change.type === "left") {
        const conversationId = `g:${change.groupId}`;
        this._held.delete(conversationId);
        if (this._loaded) this._emit("left", { groupId: change.groupId, conversationId });
      } else if (change.type === "hidden") {
        this._hideHeld(change);
      } else if (this._loaded && change.type === "group") {
        this._emit("group", { event: "group.updated", group: change.group });
      } else if (this._loaded && change.type === "profile") {
        this._emit("profile", change.userinfo);
      }
    }
    this._feedPos = feed.pos;
  }

  /** Applies one conversation's answer, in log order; whether it moved the position. */
  _applySynced(h, c) {
    const entries = [
      ...c.messages.map((message) => ({ pos: message.pos, message })),
      ...c.changes.map((change) => ({ pos: change.pos, change })),
    ].sort((a, b) => a.pos - b.pos);
    const before = h.pos;
    for (const entry of entries) if (entry.pos > h.pos) this._apply(h, entry);
    // The answer covers every entry up to its `pos`.
    if (c.pos > h.pos) h.pos = c.pos;
    this._drain(h);
    return h.pos > before;
  }

  /**
   * Holds a conversation's newest page instead of what was held, at position `pos`: when the
   * log no longer reaches what was held (a reset), or when sync starts past it (a group just
   * joined). What follows `pos` comes by sync; the page is as it is now, so applying it again
   * leaves it so.
   */
  async _holdNewest(h, pos) {
    h.resetting = true;
    let page;
    try {
      page = await this.request("/message/history", { conversationId: h.id, limit: RESET_PAGE });
    } finally {
      h.resetting = false;
    }
    h.messages = new Map(page.messages.map((m) => [m.seq, m]));
    h.lastSeq = page.messages.at(-1)?.seq ?? 0;
    h.pos = pos;
    if (this._loaded) this._emit("reset", { conversationId: h.id, messages: page.messages });
    this._drain(h);
  }

  /**
   * Early entries that came before sync round `round` was asked, and that its answer did not
   * reach, are not coming (the server's log is the truth): drop them. Whether any that came
   * during the round still wait.
   */
  _dropStale(round) {
    let waiting = false;
    for (const h of this._held.values()) {
      for (const [pos, entry] of h.early) {
        if (pos <= h.pos || entry.round < round) h.early.delete(pos);
        else waiting = true;
      }
    }
    return waiting;
  }

  /**
   * An entry from a push or from a reply to this device: applied if it is the next position,
   * ignored if held already, kept while sync fills the gap before it. A conversation never heard
   * of is held from position 0, so sync brings it from its start.
   */
  _offer(id, entry) {
    const h = this._hold(id);
    if (entry.pos <= h.pos) return;
    if (entry.pos === h.pos + 1 && !h.resetting) {
      this._apply(h, entry);
      this._drain(h);
      return;
    }
    h.early.set(entry.pos, { ...entry, round: this._round });
    // A resync in progress goes on while anything waits; before the first, the ready path syncs.
    if (!this._resyncing && this._ready) this._resync(this._ws);
  }

  _drain(h) {
    while (h.early.has(h.pos + 1) && !h.resetting) {
      const entry = h.early.get(h.pos + 1);
      h.early.delete(h.pos + 1);
      this._apply(h, entry);
    }
    for (const pos of h.early.keys()) if (pos <= h.pos) h.early.delete(pos);
  }

  _apply(h, entry) {
    h.pos = entry.pos;
    if (entry.message) {
      const m = entry.message;
      // A message held already (from a reset's page) is only brought up to date.
      const known = h.messages.has(m.seq);
      h.messages.set(m.seq, m);
      if (m.seq > h.lastSeq) h.lastSeq = m.seq;
      // As on the server: sending a message (not a system one) reads the conversation up to it.
      if (m.from === this.userId && m.kind !== "system" && h.conversation && m.seq > (h.conversation.readSeq ?? 0)) {
        h.conversation = { ...h.conversation, readSeq: m.seq };
      }
      if (!known && this._loaded) this._emit("message", m);
      if (m.from !== this.userId && h.id.startsWith("s:")) this._received(h.id, m.seq);
      return;
    }
    const change = entry.change;
    const old = h.messages.get(change.seq);
    const message = old?.id === change.messageId ? changed(old, change, this.userId) : undefined;
    if (message) h.messages.set(change.seq, message);
    if (!this._loaded) return;
    this._emit("changed", { change, message });
    if (change.type === "recall") this._emit("recalled", change);
  }

  /** Takes the server's view of a conversation; whether the user's own fields changed. */
  _takeConversation(h, conversation) {
    const before = h.conversation;
    const readSeq = Math.max(before?.readSeq ?? 0, conversation.readSeq ?? 0);
    h.conversation = { ...conversation, readSeq };
    return !before || OWN_FIELDS.some((f) => before[f] !== h.conversation[f]);
  }

  /** `[unread, mentionUnread]` over the messages held, by the server's rules. */
  _unread(h) {
    const readSeq = h.conversation?.readSeq ?? 0;
    let unread = 0;
    let mentions = 0;
    for (const m of h.messages.values()) {
      if (m.seq > readSeq && m.from !== this.userId && m.status === "normal" && m.kind !== "system") {
        unread += 1;
        const listed = m.content?.mentions;
        if (h.id.startsWith("g:") && (listed === "all" || (Array.isArray(listed) && listed.includes(this.userId)))) mentions += 1;
      }
    }
    return [unread, mentions];
  }

  /**
   * What the device holds of a conversation (or, without an id, of each):
   * `{conversationId, pos, lastSeq, readSeq, unread, mentionUnread, conversation, messages}`,
   * messages in seq order as they are now. `unread` and `mentionUnread` are counted over the
   * messages held, by the server's rules.
   */
  held(conversationId) {
    if (conversationId === undefined) return [...this._held.keys()].map((id) => this.held(id));
    const h = this._held.get(conversationId);
    if (!h) return undefined;
    const [unread, mentionUnread] = this._unread(h);
    return {
      conversationId: h.id,
      pos: h.pos,
      lastSeq: h.lastSeq,
      readSeq: h.conversation?.readSeq ?? 0,
      unread,
      mentionUnread,
      conversation: h.conversation,
      messages: [...h.messages.values()],
    };
  }

  // ---- the outbox ----

  /**
   * Queues a request that changes something, until the server acknowledges it or `sendTimeout`
   * passes: it survives disconnections and goes out in order once synced again. `key` names
   * what it does: the same request made again while it is the last queued for its `target` is
   * the same request, not a second one. Requests on one target (a message's status or content,
   * one reaction, a conversation's state, the sends to one conversation) are in flight one at a
   * time and in order: when a connection drops at most one of them is in doubt per target, and
   * its retry finds it made (the server then changes nothing) or makes it, so each is applied
   * at most once; and a send refused for a while (rate limited) is not overtaken by the next.
   * Requests on other targets go on meanwhile.
   */
  _enqueue({ key, route, data, target, done }) {
    const last = this._outbox.findLast((op) => op.target === target);
    if (last?.key === key) return last.promise;
    const op = { key, route, data, target, done, inflight: false, attempts: 0, lastError: null };
    op.promise = new Promise((resolve, reject) => {
      op.resolve = resolve;
      op.reject = reject;
    });
    op.deadline = Date.now() + this.sendTimeout;
    op.timer = setTimeout(() => {
      if (!op.inflight) this._finish(op, op.lastError || new ChatgateError("not_connected", `${route} was not sent in time`));
    }, this.sendTimeout);
    this._outbox.push(op);
    this._pump();
    return op.promise;
  }

  /** How many sends and changes wait for the server's acknowledgement. */
  get queued() {
    return this._outbox.length;
  }

  /** Takes `op` out of the queue, settling it with `result` (an error rejects). */
  _finish(op, result) {
    const i = this._outbox.indexOf(op);
    if (i < 0) return;
    this._outbox.splice(i, 1);
    clearTimeout(op.timer);
    if (result instanceof Error) op.reject(result);
    else op.resolve(result);
  }

  _abandon(err) {
    for (const op of [...this._outbox]) this._finish(op, err);
  }

  /** Sends what may go now, in order; a request waits only for the one before it on its target. */
  _pump() {
    if (!this._ready) return;
    // A timer may fire a little before the time it was set for, by the wall clock: wait on.
    if (Date.now() < this._pausedUntil) return this._pause(0);
    const inflight = this._outbox.filter((op) => op.inflight);
    const busy = new Set(inflight.map((op) => op.target));
    let room = this._window - inflight.length;
    for (const op of this._outbox) {
      if (room <= 0) return;
      if (op.inflight || busy.has(op.target)) continue;
      busy.add(op.target);
      room -= 1;
      this._dispatch(op);
    }
  }

  _dispatch(op) {
    op.inflight = true;
    op.attempts += 1;
    this.request(op.route, op.data).then(
      (reply) => {
        op.inflight = false;
        if (!this._outbox.includes(op)) return;
        this._window = Math.min(OUTBOX_WINDOW, this._window + 1);
        let result;
        try {
          result = op.done(reply);
        } catch (err) {
          this._emit("error", err);
          result = reply;
        }
        this._finish(op, result);
        this._pump();
      },
      (err) => {
        op.inflight = false;
        if (!this._outbox.includes(op)) return;
        const retry = err instanceof ChatgateError && RETRYABLE.has(err.reason) && this._wantOpen && Date.now() < op.deadline;
        if (!retry) {
          this._finish(op, err);
          this._pump();
          return;
        }
        op.lastError = err;
        // A lost connection: the next ready flushes (asking again at once would spin until the
        // close is noticed). Otherwise the server is there but could not serve: wait before
        // asking again, all of the queue, to keep its order.
        if (err.reason === "rate_limited") {
          this._window = Math.max(1, this._window >> 1);
          this._pause(err.retryAfter || 1000);
        } else if (err.reason === "timeout" || err.reason === "unavailable") {
          this._pause(this.reconnectDelay(Math.min(op.attempts - 1, 4)));
        }
      },
    );
  }

  _pause(ms) {
    this._pausedUntil = Math.max(this._pausedUntil, Date.now() + ms);
    clearTimeout(this._pauseTimer);
    this._pauseTimer = setTimeout(() => this._pump(), this._pausedUntil - Date.now());
  }

  /** A change to a message, queued; its reply is applied at the change's log position. */
  _change(route, data, target) {
    return this._enqueue({
      key: `${route} ${JSON.stringify(data)}`,
      route,
      data,
      target,
      done: (reply) => {
        // The reply carries the change as other sessions are pushed it.
        if (reply.change) this._offer(reply.message.conversationId, { pos: reply.change.pos, change: reply.change });
        return reply;
      },
    });
  }

  /** A conversation's state changed by this device: a newer snapshot than any push before it. */
  _ownConversation(conversation) {
    const h = this._hold(conversation.conversationId);
    h.stamp += 1;
    this._takeConversation(h, conversation);
    return conversation;
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

  // ---- messages ----

  /**
   * Sends a built message (`createText(...)` and the like) to a user (`chatType: "single"`) or
   * a group. It is queued (offline too) and retried with one clientMsgId, after reconnections
   * and rate limits, until the server acknowledges it: a retry never makes a duplicate.
   * Resolves to the stored message, which is also handed to "message" listeners.
   */
  send(chatType, to, built, { clientMsgId } = {}) {
    const key = clientMsgId || randomId();
    return this._sendData({ chatType, to: String(to), kind: built.kind, content: built.content, clientMsgId: key });
  }

  /**
   * Forwards a message of a conversation this user is in to a user or a group: its kind and
   * content, with `content.forwardedFrom` naming the original. Queued and retried as `send`.
   */
  forward(chatType, to, messageId, { clientMsgId } = {}) {
    const key = clientMsgId || randomId();
    return this._sendData({ chatType, to: String(to), forwardFrom: String(messageId), clientMsgId: key });
  }

  /** Queues a send; sends to one conversation go one after another, so they keep their order. */
  _sendData(data) {
    return this._enqueue({
      key: `send ${data.clientMsgId}`,
      route: "/message/send",
      data,
      target: `conversation ${data.chatType} ${data.to}`,
      done: ({ message }) => {
        this._offer(message.conversationId, { pos: message.pos, message });
        return message;
      },
    });
  }

  /** Sends text to a user. */
  sendText(to, text, options) {
    return this.send("single", to, createText(text, options));
  }

  /** A page of history, ascending by seq: `{messages, hasMore}`. */
  history(conversationId, { beforeSeq, afterSeq, limit } = {}) {
    return this.request("/message/history", strip({ conversationId, beforeSeq, afterSeq, limit }));
  }

  /** Recalls a message: `{message, pos}`. Queued, as every change. */
  recall(messageId) {
    const id = String(messageId);
    return this._change("/message/recall", { messageId: id }, `message ${id}`);
  }

  /** Deletes a message for everyone (a tombstone keeps its place): `{message, pos}`. */
  deleteForEveryone(messageId) {
    const id = String(messageId);
    return this._change("/message/delete", { messageId: id }, `message ${id}`);
  }

  /**
   * Deletes a message for this user only: their devices show it as `hidden`, others as it is,
   * and it stops counting as unread. Queued like every change. Resolves to `{message}`.
   */
  deleteForMe(messageId) {
    const id = String(messageId);
    return this._enqueue({
      key: `/message/hide ${id}`,
      route: "/message/hide",
      data: { messageId: id },
      target: `message ${id}`,
      done: (reply) => {
        this._hideHeld({ conversationId: reply.message.conversationId, messageId: id, seq: reply.message.seq });
        return reply;
      },
    });
  }

  /** A message this user deleted for themselves, here or on another device. */
  _hideHeld({ conversationId, messageId, seq }) {
    const m = this._held.get(conversationId)?.messages.get(seq);
    if (!m || m.id !== messageId || m.status === "hidden") return;
    const hidden = { ...m, status: "hidden", content: {}, reactions: [] };
    this._held.get(conversationId).messages.set(seq, hidden);
    if (this._loaded) this._emit("hidden", { conversationId, messageId, seq, message: hidden });
  }

  /** Edits a text message: `content` is new text, or `{text, mentions?}`. Resolves to `{message, pos}`. */
  edit(messageId, content) {
    const id = String(messageId);
    const data = { messageId: id, content: typeof content === "string" ? { text: content } : content };
    return this._change("/message/edit", data, `message ${id}`);
  }

  /** Adds the user's reaction `key` (an emoji or a short name): `{message, pos}`. */
  react(messageId, key) {
    const id = String(messageId);
    return this._change("/message/react", { messageId: id, key }, `reaction ${id} ${key}`);
  }

  /** Removes the user's reaction `key`: `{message, pos}`. */
  unreact(messageId, key) {
    const id = String(messageId);
    return this._change("/message/unreact", { messageId: id, key }, `reaction ${id} ${key}`);
  }

  /** A message's earlier contents, oldest first: `[{version, content, replacedAt}]`. */
  versions(messageId) {
    return this.request("/message/versions", { messageId: String(messageId) }).then((d) => d.versions);
  }

  /** Tells the other participants the user is typing. */
  typing(conversationId) {
    return this.request("/message/typing", { conversationId });
  }

  /** Who reacted to a message with `key`: `{userIds, hasMore}`, a page ascending by id after `after`. */
  reactors(messageId, key, { after, limit } = {}) {
    return this.request("/message/reactors", { messageId: String(messageId), key, after, limit });
  }

  /**
   * Who has read a message: `{count, unreadCount, userIds, hasMore}`, the page of those who have
   * (or with `unread`, who have not) ascending by id after `after`.
   */
  readers(messageId, { unread, after, limit } = {}) {
    return this.request("/message/readers", { messageId: String(messageId), unread, after, limit });
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

  /**
   * The messages of a group that mention this user (by id or `@all`), ascending, the newest
   * page before `beforeSeq`: `{messages, hasMore}`.
   */
  mentions(conversationId, { beforeSeq, limit } = {}) {
    return this.request("/message/mentions", { conversationId, beforeSeq, limit });
  }

  /** Unread counts: `{total, conversations: [{conversationId, unread}]}`. */
  unread() {
    return this.request("/conversation/unread", {});
  }

  /** Marks a conversation read up to `seq`. Queued. */
  markRead(conversationId, seq) {
    return this._enqueue({
      key: `read ${conversationId} ${seq}`,
      route: "/conversation/read",
      data: { conversationId, seq },
      target: `read ${conversationId}`,
      done: (d) => this._ownConversation(d.conversation),
    });
  }

  /** Pins, mutes, hides or sets the draft of a conversation. Queued. */
  updateConversation(conversationId, patch) {
    const data = { conversationId, ...patch };
    return this._enqueue({
      key: `update ${JSON.stringify(data)}`,
      route: "/conversation/update",
      data,
      target: `conversation ${conversationId}`,
      done: (d) => this._ownConversation(d.conversation),
    });
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
   * called as it goes where the platform can tell, and aborting `signal` cancels it (rejecting
   * with `aborted`). Resolves to `{fileId, url, size, mime, sha256}`.
   */
  upload(file, { onProgress, signal } = {}) {
    const aborted = () => new ChatgateError("aborted", "the upload was cancelled");
    if (signal?.aborted) return Promise.reject(aborted());
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
        xhr.onabort = () => reject(aborted());
        signal?.addEventListener("abort", () => xhr.abort(), { once: true });
        xhr.send(file);
      });
    }
    const headers = { authorization: `Bearer ${this.token}` };
    const sent = this.fetch(url, { method: "POST", headers, body: file, signal }).catch((err) => {
      throw signal?.aborted ? aborted() : err;
    });
    return sent.then(async (response) => {
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
