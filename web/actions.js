// What a person does to a message (react, reply, edit, delete for themselves, recall), and what
// a message shows of what was done to it: the quote it replies to, its reactions, "edited".
// Changes come back as the SDK's `changed` events, so every device shows them alike.

import { showList } from "/dialogs.js";
import { nameFor, titleOf } from "/text.js";

const $ = (id) => document.getElementById(id);

/** The reactions offered in a message's actions, and the more its picker offers. */
const KEYS = ["👍", "❤️", "😂"];
const MORE = ["🎉", "😮", "😢", "🙏", "🔥", "👀", "✅", "👎", "🤔", "💯", "😡", "🚀"];
/** How long after sending its sender may recall a message, as the server's default. */
const RECALL_WINDOW_MS = 120_000;

let ctx;

/** Wires the actions to the page: `{state, show, alertError}`. */
export function actions(page) {
  ctx = page;
  $("mode-cancel").addEventListener("click", () => setMode(null));
  $("picker").addEventListener("click", (e) => { if (e.target === $("picker")) $("picker").close(); });
}

/** Asks where to forward `m` (one of the person's other conversations) and forwards it there. */
function forward(m) {
  const select = $("forward-to");
  const others = [...ctx.state.conversations.values()].filter((c) => c.conversationId !== m.conversationId && c.peer);
  select.replaceChildren(...others.map((c) => Object.assign(document.createElement("option"), { value: c.conversationId, textContent: titleOf(c) })));
  $("forward-error").textContent = others.length ? "" : "There is no other chat to forward to yet.";
  const dialog = $("forward");
  dialog.showModal();
  dialog.addEventListener("close", async () => {
    const to = ctx.state.conversations.get(select.value);
    if (dialog.returnValue !== "ok" || !to) return;
    ctx.state.client.forward(to.chatType, to.peer.id, m.id).catch(ctx.alertError);
  }, { once: true });
}

/** What the composer does with its text: a new message, a reply to `replyTo`, or an edit. */
export function mode() {
  return ctx.state.mode;
}

/** Sets the composer's mode (`{edit: m}`, `{reply: m}` or null) and says so above it. */
export function setMode(next) {
  ctx.state.mode = next;
  $("mode").hidden = !next;
  if (!next) return;
  const m = next.edit || next.reply;
  $("mode-text").textContent = next.edit ? "Editing your message" : `Replying to ${who(m.from)}: ${snippet(m.content?.text)}`;
  if (next.edit) $("text").value = m.content.text;
  $("text").focus();
}

function who(userId) {
  return userId === String(ctx.state.me.id) ? "you" : nameFor(ctx.state.names, userId);
}

function snippet(text = "") {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** The quote above a reply, which scrolls to the original when it is shown. */
export function quote(m) {
  if (!m.quote) return null;
  const q = m.quote;
  const box = Object.assign(document.createElement("button"), { type: "button", className: "quote" });
  box.dataset.testid = "quote";
  box.textContent = q.status === "normal" ? `${who(q.from)}: ${snippet(q.snippet) || q.kind}` : `${who(q.from)}: message recalled`;
  box.setAttribute("aria-label", `Go to the message replied to: ${box.textContent}`);
  box.addEventListener("click", () => {
    const original = document.querySelector(`[data-testid=message][data-id="${q.messageId}"]`);
    original?.scrollIntoView({ block: "center" });
    original?.classList.add("flash");
    setTimeout(() => original?.classList.remove("flash"), 1200);
  });
  return box;
}

/** The reactions, "edited" and the actions under a message as sent. */
export function decorate(li, meta, m, mine) {
  if (m.content?.forwardedFrom) {
    li.prepend(Object.assign(document.createElement("span"), { className: "forwarded", textContent: "Forwarded" }));
  }
  if (m.editedAt) {
    const edited = Object.assign(document.createElement("button"), { type: "button", className: "edited", textContent: "edited" });
    edited.setAttribute("aria-label", "Edited: show the earlier versions");
    edited.addEventListener("click", () => history(m));
    meta.prepend(edited, " · ");
  }
  if (m.reactions?.length) {
    const row = document.createElement("div");
    row.className = "reactions";
    for (const r of m.reactions) {
      const chip = Object.assign(document.createElement("button"), { type: "button", className: r.mine ? "chip mine" : "chip" });
      chip.textContent = `${r.key} ${r.count}`;
      chip.dataset.testid = "reaction";
      chip.setAttribute("aria-pressed", String(!!r.mine));
      chip.addEventListener("click", () => react(m, r.key, !r.mine));
      row.append(chip);
    }
    const whoButton = Object.assign(document.createElement("button"), { type: "button", className: "chip who", textContent: "who?" });
    whoButton.setAttribute("aria-label", "Who reacted");
    whoButton.addEventListener("click", () => reactors(m));
    row.append(whoButton);
    li.append(row);
  }
  const tools = document.createElement("div");
  tools.className = "tools";
  const tool = (label, run) => {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: label });
    b.addEventListener("click", run);
    tools.append(b);
  };
  for (const key of KEYS) tool(key, () => react(m, key, !m.reactions?.some((r) => r.key === key && r.mine)));
  tool("＋", () => pick(m));
  tools.lastChild.setAttribute("aria-label", "More reactions");
  tool("Reply", () => setMode({ reply: m }));
  tool("Forward", () => forward(m));
  if (mine && m.kind === "text") tool("Edit", () => setMode({ edit: m }));
  tool("Delete for me", () => ctx.state.client.deleteForMe(m.id).then(({ message }) => ctx.show(message)).catch(ctx.alertError));
  if (mine && Date.now() - m.sentAt < RECALL_WINDOW_MS) {
    tool("Recall", () => ctx.state.client.recall(m.id).then(({ message }) => ctx.show(message)).catch(ctx.alertError));
  }
  li.append(tools);
}

/** The reaction picker: one of many keys, for `m`; Esc or a click outside closes it. */
function pick(m) {
  const dialog = $("picker");
  $("picker-keys").replaceChildren(...MORE.map((key) => {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: key, className: "chip" });
    b.setAttribute("aria-label", `React with ${key}`);
    b.addEventListener("click", () => {
      dialog.close();
      react(m, key, !m.reactions?.some((r) => r.key === key && r.mine));
    });
    return b;
  }));
  dialog.showModal();
}

/** The message's earlier versions, oldest first, then its text now. */
async function history(m) {
  const versions = await ctx.state.client.versions(m.id).catch((err) => { ctx.alertError(err); return null; });
  if (!versions) return;
  const at = (ms) => new Date(ms).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  const lines = versions.map((v) => `${v.content?.text ?? ""} (until ${at(v.replacedAt)})`);
  lines.push(`${m.content.text} (now)`);
  showList("Edit history", lines);
}

/** Who reacted with each of the message's reactions: one line per reaction. */
async function reactors(m) {
  const pages = await Promise.all(m.reactions.map((r) => ctx.state.client.reactors(m.id, r.key).catch(() => ({ userIds: [] }))));
  showList("Reactions", m.reactions.map((r, i) => `${r.key} ${pages[i].userIds.map(who).join(", ")}`));
}

function react(m, key, add) {
  const done = add ? ctx.state.client.react(m.id, key) : ctx.state.client.unreact(m.id, key);
  done.then(({ message }) => ctx.show(message)).catch(ctx.alertError);
}
