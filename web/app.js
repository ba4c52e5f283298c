// chatgate's web client: the SDK (/sdk/chatgate.js) and the DOM, nothing else.
import { Chatgate } from "/sdk/chatgate.js";
import { checkLength, composer, draftKey, fitComposer, showKept, transmit } from "/compose.js";
import { dropOutbox, openOutbox } from "/outbox.js";
import { actions } from "/actions.js";
import { mentions } from "/mention.js";
import { uploads } from "/upload.js";
import { notifications, notify } from "/notify.js";
import { mentionsMe, messages, onDelivered, onReadCount, renderReceipts, show, showReadCount } from "/messages.js";
import { nameOf, preview, titleOf } from "/text.js";
import { dialogs } from "/dialogs.js";

const $ = (id) => document.getElementById(id);
const TYPING_SHOWN_MS = 3000;

const state = {
  client: null,
  me: null,
  /** conversationId → conversation (as the list gives it, kept current). */
  conversations: new Map(),
  open: null,
  /** userId → display name, learned from peers and members. */
  names: new Map(),
  /** For the open conversation: its messages by seq, the peer's read position, more history? */
  shown: new Map(),
  peerRead: 0,
  peerDelivered: 0,
  /** The open group's members, as `/group/member/list` gives them (for mentions). */
  members: [],
  /** Whether the open conversation's view is at its newest message. */
  atEnd: true,
  hasOlder: false,
  loadingOlder: false,
  typingTimer: null,
  lastTypingSent: 0,
  /** The SDK's connection state. */
  socket: "idle",
  /** The unread total the tab's icon shows. */
  favicon: null,
};

function remember(user) {
  if (user?.id) state.names.set(String(user.id), nameOf(user));
}

// ---- login ----

async function start(client) {
  state.client = client;
  client.on("state", (s) => { state.socket = s; renderBanner(); });
  client.on("message", onMessage);
  client.on("recalled", onRecalled);
  // Every change to a message comes with the message as it is now: shown alike on every device.
  client.on("changed", ({ message }) => { if (message && state.open?.conversationId === message.conversationId) show(message); });
  client.on("hidden", ({ message }) => { if (state.open?.conversationId === message.conversationId) show(message); });
  client.on("read", onRead);
  client.on("delivered", onDelivered);
  client.on("readCount", onReadCount);
  client.on("typing", onTyping);
  client.on("conversation", (c) => { upsert(c); renderList(); });
  client.on("group", () => refreshSoon());
  client.on("ready", (r) => { if (r.resumed) refreshSoon(); });
  client.on("kicked", () => logout(false));
  await client.connect();
  state.me = await client.userInfo();
  remember(state.me);
  localStorage.setItem("chatgate.token", client.token);
  $("me").textContent = nameOf(state.me);
  $("login").hidden = true;
  $("app").hidden = false;
  // What a closed page left unsent goes first, in the order it was typed.
  for (const send of await openOutbox(state.me.id)) if (!send.failed) transmit(send);
  await refreshList();
  // Where the person left off, after a reload.
  const last = state.conversations.get(localStorage.getItem(OPEN_KEY));
  if (last) await openConversation(last);
}

/** Where the open conversation is kept across reloads. */
const OPEN_KEY = "chatgate.open";

/** The banner follows both the socket and the browser's own idea of being online. */
function renderBanner() {
  const offline = !navigator.onLine;
  const reconnecting = state.socket === "reconnecting" || (state.socket === "connecting" && state.me);
  $("banner").hidden = !(offline || reconnecting);
  $("banner").textContent = offline ? "Offline: messages are sent when you are back" : "Reconnecting…";
}
addEventListener("online", renderBanner);
addEventListener("offline", renderBanner);

function newClient(token) {
  return new Chatgate({ url: location.origin, token });
}

$("login-form").addEventListener("submit", (e) => { e.preventDefault(); enter("login"); });
$("register").addEventListener("click", () => {
  // The browser's own hint speaks for a field it refuses; an earlier answer no longer applies.
  $("login-error").textContent = "";
  if ($("login-form").reportValidity()) enter("register");
});
$("login-form").addEventListener("input", () => { $("login-error").textContent = ""; });

async function enter(how) {
  const form = new FormData($("login-form"));
  const client = newClient();
  $("login-error").textContent = "";
  try {
    await client[how](form.get("username").trim(), form.get("password"));
    await start(client);
  } catch (err) {
    $("login-error").textContent = err.message || String(err);
  }
}

async function logout(tellServer = true) {
  if (tellServer) await state.client?.logout().catch(() => {});
  state.client?.close();
  // What was this person's goes with them.
  if (state.me) await dropOutbox(state.me.id);
  for (const key of Object.keys(localStorage).filter((k) => k.startsWith("chatgate."))) localStorage.removeItem(key);
  location.reload();
}
$("logout").addEventListener("click", () => logout());

// ---- the conversation list ----

function upsert(c) {
  if (c.peer && c.chatType === "single") remember(c.peer);
  // Answers can come out of order (a list asked before a message may answer after it): one
  // older than what is held, by its last seq or read position, would take the state back.
  const known = state.conversations.get(c.conversationId);
  if (known && (c.lastSeq < known.lastSeq || c.readSeq < (known.readSeq ?? 0))) return;
  state.conversations.set(c.conversationId, c);
}

/** Refreshes the list in the background: one cut short by a lost connection is redone on the next ready. */
function refreshSoon() {
  refreshList().catch(() => {});
}

async function refreshList() {
  const { conversations } = await state.client.conversations({ limit: 100 });
  for (const c of conversations) upsert(c);
  renderList();
}

function renderList() {
  const list = $("conversations");
  list.replaceChildren();
  const query = $("search").value.trim().toLowerCase();
  const items = [...state.conversations.values()].filter((c) => !c.hidden && titleOf(c).toLowerCase().includes(query));
  items.sort((a, b) => (b.pinned - a.pinned) || (b.updatedAt - a.updatedAt));
  let total = 0;
  for (const c of items) {
    if (!c.muted) total += c.unread;
    const li = document.createElement("li");
    li.dataset.testid = "conversation";
    li.dataset.conversation = c.conversationId;
    li.classList.toggle("open", c.conversationId === state.open?.conversationId);
    const avatar = document.createElement("span");
    avatar.className = c.chatType === "group" ? "avatar group" : "avatar";
    avatar.textContent = titleOf(c).slice(0, 1).toUpperCase();
    const summary = document.createElement("div");
    summary.className = "summary";
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = titleOf(c);
    if (c.pinned) name.append(Object.assign(document.createElement("span"), { className: "pin", textContent: "pinned" }));
    const text = document.createElement("div");
    text.className = "preview";
    text.textContent = preview(c.lastMessage, state.names);
    summary.append(name, text);
    li.append(avatar, summary);
    if (c.mentionUnread > 0) {
      const at = Object.assign(document.createElement("span"), { className: "badge mention", textContent: `@${c.mentionUnread}` });
      at.title = "unread mentions of you";
      at.dataset.testid = "mention-badge";
      li.append(at);
    }
    if (c.unread > 0) {
      li.append(Object.assign(document.createElement("span"), { className: "badge", textContent: String(c.unread), title: "unread" }));
      li.lastChild.dataset.testid = "unread";
    }
    li.addEventListener("click", () => openConversation(c));
    list.append(li);
  }
  $("total-unread").hidden = total === 0;
  $("total-unread").textContent = String(total);
  document.title = total ? `(${total}) chatgate` : "chatgate";
  renderFavicon(total);
}

/** The tab's icon, with the unread total drawn on it when there is one. */
function renderFavicon(total) {
  if (state.favicon === total) return;
  state.favicon = total;
  const canvas = Object.assign(document.createElement("canvas"), { width: 32, height: 32 });
  const g = canvas.getContext("2d");
  g.fillStyle = "#2563eb";
  g.beginPath();
  g.arc(16, 16, 14, 0, 2 * Math.PI);
  g.fill();
  if (total > 0) {
    g.fillStyle = "#b91c1c";
    g.beginPath();
    g.arc(22, 10, 10, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = "#fff";
    g.font = "bold 13px sans-serif";
    g.textAlign = "center";
    g.textBaseline = "middle";
    g.fillText(total > 99 ? "99" : String(total), 22, 11);
  }
  $("favicon").href = canvas.toDataURL("image/png");
  $("favicon").dataset.unread = String(total);
}

// ---- a conversation ----

async function openConversation(c) {
  state.open = c;
  state.shown = new Map();
  state.members = [];
  state.peerRead = c.peerReadSeq ?? 0;
  state.peerDelivered = c.peerDeliveredSeq ?? 0;
  localStorage.setItem(OPEN_KEY, c.conversationId);
  $("new-below").hidden = true;
  $("app").classList.add("chatting");
  $("chat").hidden = false;
  $("chat-title").textContent = titleOf(c);
  // A group's id is what others type to join it.
  $("chat-subtitle").textContent = c.chatType === "group"
    ? `${c.peer?.memberCount ?? ""} members · group id ${c.peer?.id ?? ""}`
    : `@${c.peer?.username ?? ""}`;
  $("messages").replaceChildren();
  showKept(c.conversationId);
  $("typing").textContent = "";
  $("text").value = localStorage.getItem(draftKey(c.conversationId)) ?? "";
  checkLength();
  fitComposer();
  $("members").hidden = true;
  $("show-members").hidden = c.chatType !== "group";
  renderList();
  if (c.chatType === "group") await loadMembers(c.peer.id).catch(() => {});
  if (c.lastSeq > 0 || state.conversations.has(c.conversationId)) {
    // Enough to reach the first unread message, within a page.
    const limit = Math.min(100, Math.max(30, (c.unread ?? 0) + 10));
    const page = await state.client.history(c.conversationId, { limit }).catch(() => ({ messages: [], hasMore: false }));
    state.hasOlder = page.hasMore;
    for (const m of page.messages) show(m);
    // At the first unread message, or at the newest.
    const firstUnread = page.messages.find((m) => m.seq > (c.readSeq ?? 0) && m.from !== String(state.me.id));
    if (c.unread > 0 && firstUnread) state.shown.get(firstUnread.seq)?.scrollIntoView({ block: "start" });
    else scrollToEnd();
  }
  await markRead();
  renderReceipts();
  // A group's read count of one's newest message, as it is now (later ones come pushed).
  const own = [...$("messages").querySelectorAll("[data-testid=message].mine[data-id]")].at(-1);
  if (c.chatType === "group" && own) {
    state.client.readers(own.dataset.id).then((r) => showReadCount(own.dataset.id, r.count)).catch(() => {});
  }
  $("text").focus();
}

async function loadMembers(groupId) {
  const { members } = await state.client.members(groupId, { limit: 100 });
  state.members = members;
  const box = $("members");
  box.replaceChildren();
  for (const m of members) {
    remember(m.user);
    const row = document.createElement("div");
    row.dataset.testid = "member";
    row.append(Object.assign(document.createElement("span"), { textContent: nameOf(m.user) }));
    row.append(Object.assign(document.createElement("span"), { className: "role", textContent: m.role }));
    box.append(row);
  }
}

$("show-members").addEventListener("click", () => { $("members").hidden = !$("members").hidden; });
$("back").addEventListener("click", () => {
  state.open = null;
  $("app").classList.remove("chatting");
  $("chat").hidden = true;
  renderList();
});

$("search").addEventListener("input", () => renderList());

function scrollToEnd() {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
  state.atEnd = true;
  $("new-below").hidden = true;
}

function isAtEnd() {
  const list = $("messages");
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

$("messages").addEventListener("scroll", () => {
  state.atEnd = isAtEnd();
  if (state.atEnd) $("new-below").hidden = true;
});
$("new-below").addEventListener("click", () => scrollToEnd());

$("messages").addEventListener("scroll", async () => {
  const list = $("messages");
  if (list.scrollTop > 40 || !state.hasOlder || state.loadingOlder || !state.open) return;
  state.loadingOlder = true;
  const oldest = Math.min(...state.shown.keys());
  const height = list.scrollHeight;
  try {
    const page = await state.client.history(state.open.conversationId, { beforeSeq: oldest, limit: 30 });
    state.hasOlder = page.hasMore;
    for (const m of page.messages.reverse()) show(m, { prepend: true });
    list.scrollTop = list.scrollHeight - height;
  } finally {
    state.loadingOlder = false;
  }
});

async function markRead() {
  const c = state.open;
  if (!c || !state.conversations.has(c.conversationId) || document.visibilityState === "hidden") return;
  const known = state.conversations.get(c.conversationId);
  if (known.unread === 0 && known.readSeq >= known.lastSeq) return;
  const updated = await state.client.markRead(c.conversationId, known.lastSeq).catch(() => null);
  if (updated) upsert(updated);
  renderList();
}

// ---- live events ----

function onMessage(m) {
  const known = state.conversations.get(m.conversationId);
  if (known) {
    known.lastMessage = m;
    known.lastSeq = Math.max(known.lastSeq, m.seq);
    known.updatedAt = m.sentAt;
    known.hidden = false;
    const others = m.from !== String(state.me?.id) && m.kind !== "system";
    if (others && state.open?.conversationId !== m.conversationId) {
      known.unread += 1;
      if (mentionsMe(m)) known.mentionUnread = (known.mentionUnread ?? 0) + 1;
    }
    notify(m, known, mentionsMe(m));
    renderList();
  } else {
    // A conversation new to this page: listed (and notified of) once the server says what it is.
    refreshList().then(() => {
      const c = state.conversations.get(m.conversationId);
      if (c) notify(m, c, mentionsMe(m));
    }).catch(() => {});
  }
  if (state.open?.conversationId === m.conversationId) {
    const atEnd = isAtEnd();
    show(m);
    if (atEnd || m.from === String(state.me.id)) scrollToEnd();
    else $("new-below").hidden = false;
    if (m.from !== String(state.me.id)) $("typing").textContent = "";
    renderReceipts();
    markRead();
  }
}

function onRecalled(r) {
  if (state.open?.conversationId !== r.conversationId) return refreshSoon();
  const li = state.shown.get(r.seq);
  if (li) state.client.history(r.conversationId, { afterSeq: r.seq - 1, limit: 1 }).then((p) => p.messages.forEach((m) => show(m))).catch(() => {});
  refreshSoon();
}

function onRead(r) {
  if (state.open?.conversationId === r.conversationId) {
    state.peerRead = Math.max(state.peerRead, r.seq);
    renderReceipts();
  }
}

function onTyping(t) {
  if (state.open?.conversationId !== t.conversationId) return;
  $("typing").textContent = `${state.names.get(t.userId) || "Someone"} is typing…`;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(() => { $("typing").textContent = ""; }, TYPING_SHOWN_MS);
}

document.addEventListener("visibilitychange", () => markRead());


/** A conversation started here exists on the server after its first message. */
async function adoptIfNew() {
  const c = state.open;
  if (!c || !state.conversations.get(c.conversationId)?.local) return;
  const fresh = await state.client.conversation(c.conversationId).catch(() => null);
  if (fresh) {
    upsert(fresh);
    state.open = fresh;
    renderList();
  }
}

function alertError(err) {
  $("typing").textContent = `⚠ ${err.message || err}`;
}

// ---- boot ----

messages({ state, scrollToEnd });
mentions({ state });
uploads({ state, adoptIfNew, alertError });
notifications({ state, openConversation, title: titleOf, preview: (m) => preview(m, state.names) });
composer({ state, show, scrollToEnd, adoptIfNew, alertError });
actions({ state, show, alertError });
dialogs({ state, remember, openConversation, refreshList });

const saved = localStorage.getItem("chatgate.token");
if (saved) start(newClient(saved)).catch(() => { localStorage.removeItem("chatgate.token"); $("login").hidden = false; $("app").hidden = true; });
