// The composer: the length check, drafts kept across reloads, and sending (shown at once as
// pending, in order). The page's state and views come in from app.js.
import { createText, randomId } from "/sdk/chatgate.js";
import { mentionKey, mentionsIn } from "/mention.js";
import { done, keep, keptFor, refuse } from "/outbox.js";
import { mode, setMode } from "/actions.js";

const $ = (id) => document.getElementById(id);

/** Where each draft is kept across reloads. */
export const draftKey = (conversationId) => `chatgate.draft.${conversationId}`;

let ctx;

/** Wires the composer to the page: `{state, show, scrollToEnd, adoptIfNew, alertError}`. */
export function composer(page) {
  ctx = page;
}

/** Where a send to conversation `c` goes: `[chatType, to]`. */
export function target(c) {
  return [c.chatType, c.peer.id];
}

/** The longest text the server takes, in characters (its `--max-text-chars` default). */
const MAX_TEXT = 5000;

/** How many characters the server counts in `text`. */
function chars(text) {
  return [...text].length;
}

/** Shows the count once the text is over the limit, and says why Send refuses it. */
export function checkLength() {
  const n = chars($("text").value.trim());
  const over = n > MAX_TEXT;
  $("count").hidden = !over;
  $("count").textContent = over ? `${n} / ${MAX_TEXT}` : "";
  return !over;
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !ctx.state.open) return;
  if (!checkLength()) {
    ctx.alertError(`Too long to send: ${chars(text)} characters, at most ${MAX_TEXT}. Nothing was sent.`);
    return;
  }
  $("text").value = "";
  fitComposer();
  localStorage.removeItem(draftKey(ctx.state.open.conversationId));
  // Typing after this send is news again.
  ctx.state.lastTypingSent = 0;
  const now = mode();
  setMode(null);
  if (now?.edit) {
    ctx.state.client.edit(now.edit.id, text).then(({ message }) => ctx.show(message)).catch(ctx.alertError);
    return;
  }
  const options = { replyTo: now?.reply?.id, mentions: mentionsIn(text) };
  sendPending(ctx.state.open, text, Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)));
});

/** The pending bubbles shown, by clientMsgId (kept sends are in the outbox, without their DOM). */
const bubbles = new Map();

/**
 * Sends `text` to `c`: kept in the outbox first (so that closing the page loses nothing), shown at
 * once as sending, at the end of `c`'s messages, then handed to the SDK (which queues it while
 * offline, in order). Acknowledged, it takes its place as the message; refused, it stays, marked
 * as not sent, with a retry.
 */
function sendPending(c, text, options = {}) {
  const send = { clientMsgId: randomId(), conversationId: c.conversationId, chatType: c.chatType, to: String(c.peer.id), text, options };
  showPending(send);
  ctx.scrollToEnd();
  const written = keep(send);
  transmit(send);
  written.then(() => { const li = bubbles.get(send.clientMsgId); if (li && send.order !== undefined) li.dataset.kept = "yes"; });
}

/** Sends a kept send (again, after a reload, with its clientMsgId: the server stores it once). */
export function transmit(send) {
  delete send.failed;
  showPending(send);
  ctx.state.client.send(send.chatType, send.to, createText(send.text, send.options), { clientMsgId: send.clientMsgId }).then(
    async (message) => {
      done(send.clientMsgId);
      bubbles.get(send.clientMsgId)?.remove();
      bubbles.delete(send.clientMsgId);
      if (ctx.state.open?.conversationId === message.conversationId) ctx.show(message);
      await ctx.adoptIfNew();
    },
    (err) => {
      refuse(send.clientMsgId, err.message || String(err));
      showPending(send);
    },
  );
}

/** Shows the kept sends of the open conversation, after its history. */
export function showKept(conversationId) {
  for (const send of keptFor(conversationId)) showPending(send);
}

/** The bubble of a send not yet acknowledged: sending, or not sent with a retry and a discard. */
function showPending(send) {
  if (ctx.state.open?.conversationId !== send.conversationId) return;
  const existing = bubbles.get(send.clientMsgId);
  const li = existing?.isConnected ? existing : document.createElement("li");
  bubbles.set(send.clientMsgId, li);
  li.className = send.failed ? "mine pending failed" : "mine pending";
  li.dataset.testid = "message";
  li.dataset.pending = send.failed ? "failed" : "sending";
  // Written to this browser's outbox: closing the page now loses nothing.
  li.dataset.kept = send.order !== undefined ? "yes" : "no";
  li.replaceChildren(Object.assign(document.createElement("span"), { textContent: send.text, className: "text" }));
  const meta = Object.assign(document.createElement("span"), { className: "meta", textContent: send.failed ? `not sent: ${send.failed}` : "sending…" });
  li.append(meta);
  if (send.failed) {
    const button = (label, run) => {
      const b = Object.assign(document.createElement("button"), { className: "retry", textContent: label, type: "button" });
      b.addEventListener("click", run);
      meta.append(b);
    };
    button("retry", () => transmit(send));
    button("discard", () => { done(send.clientMsgId); li.remove(); bubbles.delete(send.clientMsgId); });
  }
  if (!li.isConnected) $("messages").append(li);
}

/** Grows the composer with its text, up to its CSS max-height. */
export function fitComposer() {
  const box = $("text");
  box.style.height = "auto";
  box.style.height = `${box.scrollHeight + 2}px`;
}

// Enter sends and Shift+Enter starts a new line (as does Enter while an input method composes).
// ↑ in an empty composer edits one's last text message; Esc leaves editing or replying.
$("text").addEventListener("keydown", (e) => {
  if (mentionKey(e)) return;
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $("composer").requestSubmit();
    return;
  }
  if (e.key === "Escape" && mode()) {
    setMode(null);
    $("text").value = "";
  }
  if (e.key !== "ArrowUp" || $("text").value !== "") return;
  const own = [...$("messages").querySelectorAll("[data-testid=message].mine")].map((li) => li.message);
  const last = own.filter((m) => m?.kind === "text" && m.status === "normal").at(-1);
  if (!last) return;
  e.preventDefault();
  setMode({ edit: last });
});

$("text").addEventListener("input", () => {
  checkLength();
  fitComposer();
  if (ctx.state.open) localStorage.setItem(draftKey(ctx.state.open.conversationId), $("text").value);
  if (!ctx.state.open || !ctx.state.conversations.has(ctx.state.open.conversationId)) return;
  if (Date.now() - ctx.state.lastTypingSent < 2000) return;
  ctx.state.lastTypingSent = Date.now();
  ctx.state.client.typing(ctx.state.open.conversationId).catch(() => {});
});
