// The dialogs that start things: a new chat, a new group, joining a group. Each keeps its
// dialog open and says there what is wrong until it succeeds or is cancelled.
import { singleConversation } from "/sdk/chatgate.js";

const $ = (id) => document.getElementById(id);

let ctx;

/** Wires the dialogs to the page: `{state, remember, openConversation, refreshList}`. */
export function dialogs(page) {
  ctx = page;
}

/**
 * Asks for one or two values (trimmed) and runs `act` with them on OK. The dialog stays open,
 * showing what went wrong, until `act` succeeds or the person cancels. Resolves to what `act`
 * returned, or null when cancelled.
 */
function ask(title, label, { label2, placeholder2 } = {}, act = async (...values) => values) {
  const dialog = $("dialog");
  $("dialog-title").textContent = title;
  $("dialog-label").firstElementChild.textContent = label;
  $("dialog-input").value = "";
  $("dialog-label2").hidden = !label2;
  if (label2) {
    $("dialog-label2").firstElementChild.textContent = label2;
    $("dialog-input2").value = "";
    $("dialog-input2").placeholder = placeholder2 || "";
  }
  $("dialog-error").textContent = "";
  dialog.showModal();
  const form = $("dialog-form");
  return new Promise((resolve) => {
    const finish = (value) => {
      form.removeEventListener("submit", submit);
      dialog.removeEventListener("cancel", cancel);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const cancel = () => finish(null);
    const submit = async (e) => {
      e.preventDefault();
      if (e.submitter?.value !== "ok") return finish(null);
      $("dialog-error").textContent = "";
      e.submitter.disabled = true;
      try {
        finish(await act($("dialog-input").value.trim(), $("dialog-input2").value.trim()));
      } catch (err) {
        $("dialog-error").textContent = err.message || String(err);
      } finally {
        e.submitter.disabled = false;
      }
    };
    form.addEventListener("submit", submit);
    dialog.addEventListener("cancel", cancel);
  });
}

/** Shows a list (who read a message, who reacted, a message's versions) in a dialog titled `title`. */
export function showList(title, lines) {
  $("readers-title").textContent = title;
  $("readers-list").replaceChildren(...lines.map((line) => Object.assign(document.createElement("li"), { textContent: line })));
  $("readers").showModal();
}

/** The user named `username`, or an error that names the one not found. */
async function userByName(username) {
  try {
    const user = await ctx.state.client.userInfo({ username });
    ctx.remember(user);
    return user;
  } catch (err) {
    if (err.reason === "not_found" || err.reason?.startsWith("validation.")) throw new Error(`No user named “${username}”.`);
    throw err;
  }
}

$("new-chat").addEventListener("click", async () => {
  const c = await ask("New chat", "Username", {}, async (name) => {
    if (!name) throw new Error("Type the username of the person to chat with.");
    const peer = await userByName(name);
    if (String(peer.id) === String(ctx.state.me.id)) throw new Error("That is you: pick someone else to chat with.");
    const id = singleConversation(ctx.state.me.id, peer.id);
    return ctx.state.conversations.get(id) || {
      conversationId: id, chatType: "single", peer, lastSeq: 0, unread: 0, readSeq: 0, pinned: false, updatedAt: Date.now(), local: true,
    };
  });
  if (!c) return;
  // In the list at once, before its first message makes it exist on the server.
  if (!ctx.state.conversations.has(c.conversationId)) ctx.state.conversations.set(c.conversationId, c);
  await ctx.openConversation(c);
});

$("new-group").addEventListener("click", async () => {
  const made = await ask("New group", "Name", { label2: "Members", placeholder2: "usernames, comma-separated" }, async (name, list) => {
    const names = list.split(",").map((s) => s.trim()).filter(Boolean);
    const found = await Promise.allSettled(names.map(userByName));
    const missing = names.filter((_, i) => found[i].status === "rejected");
    if (missing.length) throw new Error(`No user named ${missing.map((n) => `“${n}”`).join(", ")}.`);
    const members = found.map((f) => f.value.id).filter((id) => String(id) !== String(ctx.state.me.id));
    return ctx.state.client.createGroup({ name, members, joinPolicy: "open" });
  });
  if (!made) return;
  await ctx.refreshList();
  await ctx.openConversation(ctx.state.conversations.get(`g:${made.id}`));
});

$("join-group").addEventListener("click", async () => {
  const group = await ask("Join a group", "Group id", {}, async (id) => {
    if (!/^\d+$/.test(id)) throw new Error("Type the group's id, a number: its members see it under the group's name.");
    try {
      return await ctx.state.client.joinGroup(id);
    } catch (err) {
      if (err.reason === "not_found") throw new Error(`No group with id ${id}.`);
      throw err;
    }
  });
  if (!group) return;
  await ctx.refreshList();
  await ctx.openConversation(ctx.state.conversations.get(`g:${group.id}`));
});
