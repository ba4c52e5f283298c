// The page's outbox: every text sent is kept in IndexedDB, with its clientMsgId, until the server
// acknowledges it, so that one typed offline survives closing the tab. Sending doesn't wait for
// the write (that would delay every message); writes and deletes are chained, so they land in
// order whatever the acknowledgements do. When the page opens
// again, what is kept is sent again in the order typed, with the same clientMsgId: the server
// stores each once, whether or not an earlier try had reached it.

const DB_VERSION = 1;
const STORE = "outbox";

let db = null;
/** clientMsgId → the kept send, in the order typed (a Map keeps insertion order). */
const kept = new Map();

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** One database per user, so that a shared browser never sends one person's text as another. */
function dbName(userId) {
  return `chatgate.outbox.${userId}`;
}

/**
 * Opens this user's outbox and resolves to what it holds, oldest first: the sends a closed
 * page left unacknowledged. A browser without IndexedDB (or refusing it) keeps them in memory.
 */
export async function openOutbox(userId) {
  kept.clear();
  try {
    const open = indexedDB.open(dbName(userId), DB_VERSION);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE, { keyPath: "order", autoIncrement: true });
    db = await request(open);
    const all = await request(db.transaction(STORE).objectStore(STORE).getAll());
    for (const send of all) kept.set(send.clientMsgId, send);
  } catch {
    db = null;
  }
  return [...kept.values()];
}

/** The writes to IndexedDB, one after another. */
let writes = Promise.resolve();

/** Runs `op(store)` after the writes before it (none without a database); a failure stops no later one. */
function write(op) {
  writes = writes.then(() => db && op(db.transaction(STORE, "readwrite").objectStore(STORE))).catch(() => {});
  return writes;
}

/**
 * Keeps `send` (`{clientMsgId, conversationId, chatType, to, text, options}`) until `done`;
 * resolves once it is written (at once when it was done meanwhile).
 */
export function keep(send) {
  kept.set(send.clientMsgId, send);
  return write(async (store) => {
    if (kept.has(send.clientMsgId)) send.order = await request(store.add(send));
  });
}

/** Marks a kept send as refused (`reason`), so that the page shows it so after a reload too. */
export function refuse(clientMsgId, reason) {
  const send = kept.get(clientMsgId);
  if (!send) return;
  send.failed = reason;
  write((store) => send.order !== undefined && request(store.put(send)));
}

/** Forgets a send: acknowledged by the server, or discarded by the person. */
export function done(clientMsgId) {
  const send = kept.get(clientMsgId);
  kept.delete(clientMsgId);
  // After its own write, which a quick acknowledgement can overtake.
  write((store) => send?.order !== undefined && request(store.delete(send.order)));
}

/** The kept sends to one conversation, oldest first. */
export function keptFor(conversationId) {
  return [...kept.values()].filter((s) => s.conversationId === conversationId);
}

/** Deletes this user's outbox (at logout: what was theirs goes with them). */
export function dropOutbox(userId) {
  db?.close();
  db = null;
  kept.clear();
  return request(indexedDB.deleteDatabase(dbName(userId))).catch(() => {});
}
