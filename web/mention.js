// @-mentions in the composer: typing "@" and the start of a name in a group lists the members
// that match (and "all", for the group's owner and admins); ↑ ↓ move, Enter or Tab picks, Esc
// closes, and a click picks too. A text sent mentions every member whose @username it holds.

const $ = (id) => document.getElementById(id);

/** Most members listed at once. */
const SHOWN = 8;
/** The "@word" being typed, right before the caret. */
const TYPING = /(^|\s)@([\w.-]*)$/;

let ctx;
/** The members listed, and which of them is chosen. */
let offered = [];
let active = 0;

/** Wires mentions to the page: `{state}` (whose `members` are the open group's). */
export function mentions(page) {
  ctx = page;
  $("text").addEventListener("input", offer);
  $("text").addEventListener("blur", () => setTimeout(close, 150));
}

/** Whether someone in the open group may mention everyone: its owner and admins. */
function mayMentionAll() {
  const me = ctx.state.members.find((m) => String(m.user.id) === String(ctx.state.me.id));
  return me?.role === "owner" || me?.role === "admin";
}

function offer() {
  const box = $("text");
  const typed = ctx.state.open?.chatType === "group" ? TYPING.exec(box.value.slice(0, box.selectionStart)) : null;
  if (!typed) return close();
  const query = typed[2].toLowerCase();
  const others = ctx.state.members.filter((m) => String(m.user.id) !== String(ctx.state.me.id));
  offered = others
    .filter((m) => m.user.username.toLowerCase().startsWith(query) || (m.user.nickname || "").toLowerCase().startsWith(query))
    .map((m) => ({ id: String(m.user.id), username: m.user.username, label: m.user.nickname ? `${m.user.nickname} (@${m.user.username})` : `@${m.user.username}` }));
  if (mayMentionAll() && "all".startsWith(query)) offered.unshift({ id: "all", username: "all", label: "@all: everyone in the group" });
  offered = offered.slice(0, SHOWN);
  active = 0;
  render();
}

function render() {
  const list = $("mention-list");
  list.hidden = offered.length === 0;
  list.replaceChildren(...offered.map((o, i) => {
    const li = Object.assign(document.createElement("li"), { id: `mention-${i}`, textContent: o.label });
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", String(i === active));
    // Before the composer's blur, so that the click picks.
    li.addEventListener("mousedown", (e) => { e.preventDefault(); pick(o); });
    return li;
  }));
  if (offered.length) $("text").setAttribute("aria-activedescendant", `mention-${active}`);
  else $("text").removeAttribute("aria-activedescendant");
}

function close() {
  offered = [];
  render();
}

/** Puts "@username " in place of the "@word" being typed. */
function pick(o) {
  const box = $("text");
  const caret = box.selectionStart;
  const before = box.value.slice(0, caret).replace(/@[\w.-]*$/, `@${o.username} `);
  box.value = before + box.value.slice(caret);
  box.setSelectionRange(before.length, before.length);
  close();
  box.focus();
}

/** Handles a key while the list shows (it then does not reach the composer): whether it did. */
export function mentionKey(e) {
  if (!offered.length) return false;
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    active = (active + (e.key === "ArrowDown" ? 1 : offered.length - 1)) % offered.length;
    render();
  } else if (e.key === "Enter" || e.key === "Tab") {
    pick(offered[active]);
  } else if (e.key === "Escape") {
    close();
  } else {
    return false;
  }
  e.preventDefault();
  return true;
}

/** What `text` mentions in the open group: "all", or the ids of the members it names by @username. */
export function mentionsIn(text) {
  if (ctx.state.open?.chatType !== "group") return undefined;
  const named = (username) => new RegExp(`(^|\\s)@${username.replace(/[.-]/g, "\\$&")}(?![\\w.-])`, "i").test(text);
  if (mayMentionAll() && named("all")) return "all";
  const ids = ctx.state.members.filter((m) => String(m.user.id) !== String(ctx.state.me.id) && named(m.user.username)).map((m) => String(m.user.id));
  return ids.length ? ids : undefined;
}
