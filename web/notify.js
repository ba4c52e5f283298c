// Desktop notifications: asked for only by the person, through a visible control (never on
// load). With the tab hidden, a message from someone else in a conversation that is not muted
// (or one that mentions the person, muted or not) raises one; clicking it opens that chat.

const $ = (id) => document.getElementById(id);

let ctx;

/** Wires notifications to the page: `{state, openConversation, title(conversation), preview(message)}`. */
export function notifications(page) {
  ctx = page;
  $("notify").addEventListener("click", async () => {
    await Notification.requestPermission();
    render();
  });
  render();
}

const supported = () => typeof Notification !== "undefined";

/** The control shows while the person has not answered the browser's question. */
function render() {
  $("notify").hidden = !supported() || Notification.permission !== "default";
}

/** Notifies of `m` (new in `c`, a conversation of the list) when the tab is hidden and it should. */
export function notify(m, c, mentioned) {
  if (!supported() || Notification.permission !== "granted" || document.visibilityState !== "hidden") return;
  if (m.kind === "system" || m.from === String(ctx.state.me.id) || (c.muted && !mentioned)) return;
  const from = ctx.state.names.get(m.from) || "Someone";
  const title = c.chatType === "group" ? `${from} in ${ctx.title(c)}` : from;
  // One per conversation: a newer message replaces the older one's notification.
  const shown = new Notification(title, { body: ctx.preview(m), tag: c.conversationId });
  shown.addEventListener("click", () => {
    window.focus();
    shown.close();
    const now = ctx.state.conversations.get(c.conversationId);
    if (now) ctx.openConversation(now);
  });
}
