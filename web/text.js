// How people, conversations and messages are named in the page: pure functions of what the
// server sent, and of the names learned so far (userId → display name).

/** A user's display name: the nickname, else the username. */
export function nameOf(user) {
  return user?.nickname || user?.username || `user ${user?.id ?? "?"}`;
}

/** The name learned for the user `id`, else a placeholder that names the id. */
export function nameFor(names, id) {
  return names.get(String(id)) || `user ${id}`;
}

/** A conversation's title: the peer's name, or the group's. */
export function titleOf(c) {
  if (!c.peer) return c.conversationId;
  return c.chatType === "group" ? c.peer.name : nameOf(c.peer);
}

/** One line for the conversation list. */
export function preview(m, names) {
  if (!m) return "";
  if (m.status === "recalled") return "message recalled";
  switch (m.kind) {
    case "text": return m.content.text;
    case "image": return "Picture";
    case "video": return "Video";
    case "audio": return "Audio";
    case "file": return `File: ${m.content.name}`;
    case "system": return systemText(m, names);
    case "unsupported": return "This message can't be displayed";
    default: return m.kind;
  }
}

/** What a group event says, naming whom it was done to and by. */
export function systemText(m, names) {
  const c = m.content || {};
  const who = (c.userIds || []).map((id) => nameFor(names, id)).join(", ");
  const by = names.get(String(c.by)) || "someone";
  switch (c.event) {
    case "created": return `${by} created the group “${c.name}”`;
    case "joined": return `${who} joined`;
    case "left": return `${who} left`;
    case "kicked": return `${by} removed ${who}`;
    case "invited": return `${by} added ${who}`;
    case "renamed": case "updated": return `${by} updated the group`;
    case "role": return `${who}: role changed`;
    case "muted": return `${by} changed mutes`;
    case "dismissed": return `${by} dismissed the group`;
    default: return c.event || "group event";
  }
}
