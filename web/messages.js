// How a message shows in the open conversation: its body (text, picture, file, video, audio),
// mention marks, one-to-one ticks, group read counts and their reader lists, the lightbox.
import { decorate, quote } from "/actions.js";
import { showList } from "/dialogs.js";
import { nameFor, systemText } from "/text.js";

const $ = (id) => document.getElementById(id);

let ctx;

/** Wires the message view to the page: `{state, scrollToEnd}`. */
export function messages(page) {
  ctx = page;
}

export function show(m, { prepend = false } = {}) {
  const list = $("messages");
  const existing = ctx.state.shown.get(m.seq);
  const li = existing || document.createElement("li");
  ctx.state.shown.set(m.seq, li);
  li.dataset.testid = "message";
  li.dataset.seq = String(m.seq);
  li.dataset.id = m.id;
  // The message as shown, for what the keyboard does with it (↑ edits one's last).
  li.message = m;
  li.replaceChildren();
  const mine = m.from === String(ctx.state.me.id);
  li.className = m.kind === "system" ? "system" : mine ? "mine" : "";
  if (m.status !== "normal" && m.kind !== "system") {
    li.classList.add("recalled");
    const gone = { recalled: mine ? "You recalled a message" : "Message recalled", hidden: "You deleted this message" };
    li.textContent = gone[m.status] || "Message deleted";
  } else if (m.kind === "system") {
    li.textContent = systemText(m, ctx.state.names);
  } else {
    if (!mine && ctx.state.open?.chatType === "group") {
      li.append(Object.assign(document.createElement("span"), { className: "from", textContent: nameFor(ctx.state.names, m.from) }));
    }
    const replied = quote(m);
    if (replied) li.append(replied);
    li.append(body(m));
    if (m.kind === "text" && mentionsMe(m)) {
      li.classList.add("mention");
      li.append(Object.assign(document.createElement("span"), { className: "mention-mark", textContent: "mentions you" }));
    }
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = new Date(m.sentAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    li.append(meta);
    decorate(li, meta, m, mine);
  }
  if (!existing) {
    // Keep seq order whatever order messages are shown in; those still sending stay last.
    const after = [...list.children].find((x) => Number(x.dataset.seq) > m.seq || x.classList.contains("pending"));
    if (prepend || after) list.insertBefore(li, prepend && !after ? list.firstChild : after);
    else list.append(li);
  }
}

/** Points `el[attr]` at a signed link to the file `url` names, once the server has minted it. */
function showFile(el, attr, url) {
  ctx.state.client.fileLink(url).then((link) => { el[attr] = link; }).catch(() => {});
}

/** Shows a picture as large as the window allows; Esc, or a click, closes it. */
function openPicture(img) {
  if (!img.src) return;
  $("lightbox-image").src = img.src;
  $("lightbox").showModal();
}
$("lightbox").addEventListener("click", () => $("lightbox").close());

/** Whether a message mentions this person: by id, or everyone in a group. */
export function mentionsMe(m) {
  const listed = m.content?.mentions;
  if (m.from === String(ctx.state.me.id) || !listed) return false;
  return (listed === "all" && m.conversationId.startsWith("g:")) || (Array.isArray(listed) && listed.includes(String(ctx.state.me.id)));
}

function body(m) {
  const c = m.content;
  if (m.kind === "text") return Object.assign(document.createElement("span"), { textContent: c.text, className: "text" });
  if (m.kind === "image") {
    const img = document.createElement("img");
    showFile(img, "src", c.url);
    img.alt = "picture";
    img.dataset.testid = "image";
    // Sized before it loads, so that the view does not jump when it does.
    img.width = Math.min(240, c.width || 240);
    if (c.width && c.height) img.height = Math.round((img.width * c.height) / c.width);
    img.addEventListener("load", () => { if (ctx.state.atEnd) ctx.scrollToEnd(); });
    img.tabIndex = 0;
    img.setAttribute("role", "button");
    img.setAttribute("aria-label", "Open the picture");
    img.addEventListener("click", () => openPicture(img));
    img.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") openPicture(img); });
    return img;
  }
  if (m.kind === "video" || m.kind === "audio") {
    const player = document.createElement(m.kind);
    player.controls = true;
    player.preload = "metadata";
    player.dataset.testid = m.kind;
    player.setAttribute("aria-label", m.kind === "video" ? "Video" : "Audio");
    if (m.kind === "video" && c.width && c.height) {
      player.width = Math.min(320, c.width);
      player.height = Math.round((player.width * c.height) / c.width);
    }
    player.addEventListener("loadedmetadata", () => { if (ctx.state.atEnd) ctx.scrollToEnd(); });
    showFile(player, "src", c.url);
    return player;
  }
  if (m.kind === "file") {
    const a = Object.assign(document.createElement("a"), { textContent: c.name, target: "_blank", rel: "noopener" });
    showFile(a, "href", c.url);
    // Signed links expire: one about to be followed is renewed first (cached while fresh).
    a.addEventListener("pointerenter", () => showFile(a, "href", c.url));
    a.addEventListener("focus", () => showFile(a, "href", c.url));
    a.className = "file";
    a.dataset.testid = "file-link";
    return a;
  }
  if (m.kind === "unsupported") return Object.assign(document.createElement("span"), { textContent: "This message can't be displayed", className: "unsupported" });
  return Object.assign(document.createElement("span"), { textContent: `[${m.kind}]` });
}

/** One-to-one ticks: "Read" under the newest own message the peer has read, "Delivered" under a newer one their devices have. */
export function renderReceipts() {
  for (const li of document.querySelectorAll("[data-testid=receipt], [data-testid=delivered]")) li.remove();
  if (ctx.state.open?.chatType !== "single") return;
  const mine = [...ctx.state.shown.entries()].filter(([, li]) => li.classList.contains("mine")).sort((a, b) => a[0] - b[0]);
  const tick = (upto, text, testid) => {
    const last = mine.filter(([seq]) => seq <= upto).at(-1);
    if (!last) return null;
    const receipt = Object.assign(document.createElement("span"), { className: "meta", textContent: text });
    receipt.dataset.testid = testid;
    last[1].append(receipt);
    return last[0];
  };
  const read = tick(ctx.state.peerRead, "Read", "receipt");
  if (ctx.state.peerDelivered > ctx.state.peerRead && mine.some(([seq]) => seq > (read ?? 0) && seq <= ctx.state.peerDelivered)) {
    tick(ctx.state.peerDelivered, "Delivered", "delivered");
  }
}

/** Group read counts under one's own messages: "Read by n", which lists who. */
export function showReadCount(messageId, read) {
  const li = document.querySelector(`[data-testid=message][data-id="${messageId}"].mine`);
  if (!li || ctx.state.open?.chatType !== "group") return;
  li.querySelector("[data-testid=read-count]")?.remove();
  if (read < 1) return;
  const button = Object.assign(document.createElement("button"), { type: "button", className: "read-count", textContent: `Read by ${read}` });
  button.dataset.testid = "read-count";
  button.addEventListener("click", () => listReaders(messageId));
  li.append(button);
}

async function listReaders(messageId) {
  const { userIds } = await ctx.state.client.readers(messageId).catch(() => ({ userIds: [] }));
  showList("Read by", userIds.map((id) => nameFor(ctx.state.names, id)));
}

export function onReadCount({ conversationId, counts }) {
  if (ctx.state.open?.conversationId !== conversationId) return;
  for (const c of counts) showReadCount(c.messageId, c.read);
}

export function onDelivered(d) {
  if (ctx.state.open?.conversationId !== d.conversationId) return;
  ctx.state.peerDelivered = Math.max(ctx.state.peerDelivered, d.seq);
  renderReceipts();
}
