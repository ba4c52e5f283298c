// The composer: the length check, drafts kept across reloads, sending (shown at once as
// pending, in order) and uploads. The page's state and views come in from app.js.
import { createFile, createImage, createText } from "/sdk/chatgate.js";
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
  localStorage.removeItem(draftKey(ctx.state.open.conversationId));
  // Typing after this send is news again.
  ctx.state.lastTypingSent = 0;
  const now = mode();
  setMode(null);
  if (now?.edit) {
    ctx.state.client.edit(now.edit.id, text).then(({ message }) => ctx.show(message)).catch(ctx.alertError);
    return;
  }
  sendPending(ctx.state.open, text, now?.reply ? { replyTo: now.reply.id } : {});
});

/**
 * Shows `text` at once as sending, at the end of `c`'s messages, and sends it (the SDK queues
 * it while offline, in order): once acknowledged it takes its place as the message; refused, it
 * stays, marked as not sent, with a retry.
 */
async function sendPending(c, text, options = {}) {
  const li = document.createElement("li");
  li.className = "mine pending";
  li.dataset.testid = "message";
  li.dataset.pending = "sending";
  li.append(Object.assign(document.createElement("span"), { textContent: text, className: "text" }));
  const meta = Object.assign(document.createElement("span"), { className: "meta", textContent: "sending…" });
  li.append(meta);
  $("messages").append(li);
  ctx.scrollToEnd();
  try {
    const message = await ctx.state.client.send(...target(c), createText(text, options));
    li.remove();
    if (ctx.state.open?.conversationId === message.conversationId) ctx.show(message);
    await ctx.adoptIfNew();
  } catch (err) {
    li.dataset.pending = "failed";
    li.classList.add("failed");
    meta.textContent = `not sent: ${err.message || err}`;
    const retry = Object.assign(document.createElement("button"), { className: "retry", textContent: "retry", type: "button" });
    retry.addEventListener("click", () => { li.remove(); sendPending(c, text, options); });
    meta.append(retry);
  }
}

// ↑ in an empty composer edits one's last text message; Esc leaves editing or replying.
$("text").addEventListener("keydown", (e) => {
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
  if (ctx.state.open) localStorage.setItem(draftKey(ctx.state.open.conversationId), $("text").value);
  if (!ctx.state.open || !ctx.state.conversations.has(ctx.state.open.conversationId)) return;
  if (Date.now() - ctx.state.lastTypingSent < 2000) return;
  ctx.state.lastTypingSent = Date.now();
  ctx.state.client.typing(ctx.state.open.conversationId).catch(() => {});
});

$("file").addEventListener("change", async () => {
  const file = $("file").files[0];
  $("file").value = "";
  if (!file || !ctx.state.open) return;
  try {
    const up = await ctx.state.client.upload(file, { onProgress: (sent, total) => { $("typing").textContent = `Uploading… ${Math.round((100 * sent) / (total || 1))}%`; } });
    $("typing").textContent = "";
    let built;
    if (up.mime.startsWith("image/")) {
      const { width, height } = await imageSize(file);
      built = createImage({ url: up.url, width, height, size: up.size, mime: up.mime });
    } else {
      built = createFile({ url: up.url, name: file.name.slice(0, 255) || "file", size: up.size, mime: up.mime });
    }
    await ctx.state.client.send(...target(ctx.state.open), built);
    await ctx.adoptIfNew();
  } catch (err) {
    $("typing").textContent = "";
    ctx.alertError(err);
  }
});

function imageSize(file) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => { resolve({ width: img.naturalWidth, height: img.naturalHeight }); URL.revokeObjectURL(img.src); };
    img.onerror = () => resolve({ width: 0, height: 0 });
    img.src = URL.createObjectURL(file);
  });
}
