// Types of chatgate's JavaScript SDK (chatgate.js). The wire objects are those of proto-docs/.

export type ChatType = "single" | "group";

export interface UserInfo {
  id: string;
  username: string;
  nickname: string;
  avatar: string;
  gender: "unknown" | "male" | "female" | "other";
  birthday: string | null;
  age: number | null;
  signature: string;
  createdAt: number;
}

export interface Group {
  id: string;
  name: string;
  avatar: string;
  intro: string;
  notice: string;
  ownerId: string;
  joinPolicy: "open" | "invite";
  memberCount: number;
  maxMembers: number;
  mutedUntil: number;
  createdAt: number;
  updatedAt: number;
}

export type Role = "owner" | "admin" | "member";

export interface Member {
  userId: string;
  user: UserInfo;
  role: Role;
  joinedAt: number;
  mutedUntil: number;
}

export type Kind = "text" | "image" | "video" | "audio" | "file" | "location" | "custom" | "system" | "unsupported";

export interface Reaction {
  key: string;
  count: number;
  /** Whether the user reacted with it. */
  mine: boolean;
}

export interface Message {
  id: string;
  conversationId: string;
  seq: number;
  /** Its entry's position in the conversation's log. */
  pos: number;
  chatType: ChatType;
  from: string;
  to: string;
  kind: Kind;
  /** `{}` once recalled or deleted. */
  content: Record<string, unknown>;
  clientMsgId: string;
  sentAt: number;
  /** `deleted`: deleted for everyone, a tombstone in its place. */
  /** `hidden`: deleted for this user only (others see it as it is). */
  status: "normal" | "recalled" | "deleted" | "hidden";
  /** A reply's quoted message as it is now (`snippet` empty once it is recalled or deleted); null otherwise. */
  quote: { messageId: string; from: string; kind: string; status: "normal" | "recalled" | "deleted"; snippet: string } | null;
  /** When its sender last edited it. */
  editedAt: number | null;
  /** By key, about in the order keys first appeared. */
  reactions: Reaction[];
}

/** A change to a message, as pushed, as sync lists it, and as this device made it. */
export interface Change {
  type: "recall" | "delete" | "edit" | "react" | "unreact";
  conversationId: string;
  messageId: string;
  seq: number;
  /** The change's position in the conversation's log. */
  pos: number;
  by: string;
  /** When, ms. */
  at: number;
  /** `edit`: the content since. */
  content?: Record<string, unknown>;
  /** `react`, `unreact`: the reaction. */
  key?: string;
  /** `react`, `unreact`: how many have that key since. */
  count?: number;
}

/** `{message, pos, change}`: a message after a change to it; `pos` and `change` null when nothing changed (it was so already). */
export interface Changed {
  message: Message;
  pos: number | null;
  /** The change as other sessions are pushed it. */
  change: Change | null;
}

export interface Version {
  /** 1 for the content as sent, then one more per edit. */
  version: number;
  content: Record<string, unknown>;
  /** When an edit replaced it. */
  replacedAt: number;
}

export interface Conversation {
  conversationId: string;
  chatType: ChatType;
  peer: UserInfo | Group | null;
  lastMessage: Message | null;
  lastSeq: number;
  readSeq: number;
  unread: number;
  /** Of the unread, those that mention this user, by id or `@all`; a mute does not stop them. */
  mentionUnread: number;
  /** One-to-one: how far the peer has read (null in a group). */
  peerReadSeq: number | null;
  /** One-to-one: how far the peer's devices have received (null in a group). */
  peerDeliveredSeq: number | null;
  pinned: boolean;
  muted: boolean;
  hidden: boolean;
  draft: string;
  updatedAt: number;
}

/** What the device holds of a conversation. */
export interface Held {
  conversationId: string;
  /** The last log position applied. */
  pos: number;
  lastSeq: number;
  readSeq: number;
  /** Counted over the messages held, by the server's rule (others', not recalled or deleted, not system). */
  unread: number;
  /** Of those, the ones that mention this user (a group's, listing them or `@all`). */
  mentionUnread: number;
  /** The server's view of it, as last heard (null for a conversation only heard of by push). */
  conversation: Conversation | null;
  /** In seq order, as they are now: every message since the first, or since a reset's newest page. */
  messages: Message[];
}

export interface Built {
  kind: Kind;
  content: Record<string, unknown>;
}

export interface Upload {
  fileId: string;
  /** `/file/{fileId}`: what a message's content names the file by. */
  url: string;
  /** A signed link (10 to 15 min) to show it by at once. */
  link: string;
  size: number;
  mime: string;
  sha256: string;
}

export type State = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** What the events tell happened after the first `ready`: the first sync loads silently. */
export interface Events {
  /** Every new message of the user's conversations, own sends included, exactly once, in log order per conversation. */
  message: Message;
  /** Every change to a message, own ones included, once, in log order; `message` as it is now, if held. */
  changed: { change: Change; message?: Message };
  /** A message this user deleted for themselves, here or on another device; it now reads as `hidden`. */
  hidden: { conversationId: string; messageId: string; seq: number; message: Message };
  /** A `changed` of type `recall`, for the apps that only show recalls. */
  recalled: Change;
  /**
   * Drop what is shown of the conversation and show these (its newest page) instead: the log no
   * longer reaches what was held, or a group was joined whose earlier messages were never held.
   */
  reset: { conversationId: string; messages: Message[] };
  /** One-to-one read receipt: the peer read up to `seq`. */
  read: { conversationId: string; userId: string; seq: number };
  /**
   * One-to-one delivered receipt: the peer's devices received up to `seq`. This client
   * acknowledges the peer's messages it receives, by push or sync, on its own.
   */
  delivered: { conversationId: string; userId: string; seq: number };
  /** Group read receipts for this user's own messages: how many have read each, at most once a second per conversation. */
  readCount: { conversationId: string; counts: { messageId: string; seq: number; read: number }[] };
  typing: { conversationId: string; userId: string };
  /** The user's own state of a conversation (read, pinned, muted, hidden, draft), changed on another device or while away. */
  conversation: Conversation;
  group:
    | { event: "group.updated"; group: Group }
    | { event: "group.member"; groupId: string; action: string; userIds: string[]; by: string }
    | { event: "group.dismissed"; groupId: string; by: string };
  /** No longer a member of the group (left, removed, or dismissed), here or on another device: its conversation is no longer held. */
  left: { groupId: string; conversationId: string };
  /** The user's own profile, changed on another device or while away. */
  profile: UserInfo;
  kicked: { reason: "logout" | "password_reset" | "token_expired" | "session_limit" };
  state: State;
  /** The session is bound and synced: what is held is what the server has; queued requests go out. */
  ready: { userId: string; node: string; pingInterval: number; pongTimeout: number; resumed: boolean };
  /** A sync failed; it is tried again in `retryIn` ms (`ready` waits for it). */
  syncError: { error: unknown; attempt: number; retryIn: number };
  push: { event: string; data: unknown };
  error: unknown;
}

export class ChatgateError extends Error {
  reason: string;
  retryAfter?: number;
  status?: number;
}

export interface Options {
  /** The server, such as `http://localhost:8080`. */
  url: string;
  token?: string;
  format?: "json" | "msgpack";
  /** Milliseconds a request waits for its reply (10,000). */
  requestTimeout?: number;
  /** Milliseconds a queued send or change keeps retrying (5 minutes). */
  sendTimeout?: number;
  /** Reconnection delays: `initial` doubled per attempt up to `max`, jittered (500, 15,000). */
  backoff?: { initial?: number; max?: number };
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
  random?: () => number;
}

export function createText(text: string, options?: { mentions?: string[] | "all"; replyTo?: string }): Built;
export function createImage(c: { url: string; width: number; height: number; size: number; mime: string; thumbnail?: string }): Built;
export function createVideo(c: { url: string; duration: number; width: number; height: number; size: number; mime: string; cover?: string }): Built;
export function createAudio(c: { url: string; duration: number; size: number; mime: string }): Built;
export function createFile(c: { url: string; name: string; size: number; mime: string }): Built;
export function createLocation(c: { latitude: number; longitude: number; title?: string }): Built;
export function createCustom(data: unknown): Built;
export function singleConversation(a: string | number, b: string | number): string;
/** A fresh idempotency key, for a send's `clientMsgId` (one kept across a reload makes a resend safe). */
export function randomId(): string;

/** Every route a request frame can name (the server's route table; a test keeps them equal). */
export type Route =
  | "/user/register"
  | "/user/login"
  | "/user/auth"
  | "/user/changePassword"
  | "/user/resetPassword"
  | "/user/info"
  | "/user/online"
  | "/user/logout"
  | "/user/ticket"
  | "/user/loginLog"
  | "/group/room/add"
  | "/group/room/join"
  | "/group/room/quit"
  | "/group/room/invite"
  | "/group/room/kick"
  | "/group/room/update"
  | "/group/room/role"
  | "/group/room/transfer"
  | "/group/room/dismiss"
  | "/group/room/mute"
  | "/group/room/info"
  | "/group/room/list"
  | "/group/room/members"
  | "/message/send"
  | "/message/history"
  | "/message/mentions"
  | "/message/sync"
  | "/message/recall"
  | "/message/delete"
  | "/message/edit"
  | "/message/react"
  | "/message/unreact"
  | "/message/hide"
  | "/message/versions"
  | "/message/typing"
  | "/message/readers"
  | "/message/reactors"
  | "/conversation/list"
  | "/conversation/info"
  | "/conversation/update"
  | "/conversation/read"
  | "/conversation/delivered"
  | "/conversation/unread"
  | "/file/link";

export class Chatgate {
  constructor(options: Options);
  readonly state: State;
  /** How many sends and changes wait for the server's acknowledgement. */
  readonly queued: number;
  token: string | null;
  user: UserInfo | null;
  userId?: string;

  on<E extends keyof Events>(event: E, handler: (data: Events[E]) => void): () => void;
  off<E extends keyof Events>(event: E, handler: (data: Events[E]) => void): void;

  register(username: string, password: string): Promise<{ token: string; userinfo: UserInfo }>;
  login(username: string, password: string): Promise<{ token: string; userinfo: UserInfo }>;
  connect(): Promise<Events["ready"]>;
  close(): void;
  reconnectDelay(attempt: number): number;
  request<T = unknown>(route: Route, data?: Record<string, unknown>, options?: { timeout?: number }): Promise<T>;

  /** What the device holds of a conversation, or of each. */
  held(conversationId: string): Held | undefined;
  held(): Held[];

  // Sends and changes are queued: offline too, in order, retried until acknowledged.
  send(chatType: ChatType, to: string, built: Built, options?: { clientMsgId?: string }): Promise<Message>;
  /** Forwards a message of a conversation this user is in; `content.forwardedFrom` names the original. */
  forward(chatType: ChatType, to: string, messageId: string, options?: { clientMsgId?: string }): Promise<Message>;
  sendText(to: string, text: string, options?: { mentions?: string[] | "all"; replyTo?: string }): Promise<Message>;
  history(conversationId: string, options?: { beforeSeq?: number; afterSeq?: number; limit?: number }): Promise<{ messages: Message[]; hasMore: boolean }>;
  /** The messages of a group that mention this user (by id or `@all`), ascending, the newest page before `beforeSeq`. */
  mentions(conversationId: string, options?: { beforeSeq?: number; limit?: number }): Promise<{ messages: Message[]; hasMore: boolean }>;
  recall(messageId: string): Promise<Changed>;
  deleteForEveryone(messageId: string): Promise<Changed>;
  /** Deletes a message for this user only (queued like every change). */
  deleteForMe(messageId: string): Promise<{ message: Message }>;
  edit(messageId: string, content: string | { text: string; mentions?: string[] | "all" }): Promise<Changed>;
  react(messageId: string, key: string): Promise<Changed>;
  unreact(messageId: string, key: string): Promise<Changed>;
  versions(messageId: string): Promise<Version[]>;
  typing(conversationId: string): Promise<Record<string, never>>;
  /**
   * How many have read a message (its sender aside) and how many have not, with a page of who
   * has (or with `unread`, who has not), ascending by id after `after`.
   */
  /** Who reacted to a message with `key`, a page ascending by id after `after`. */
  reactors(messageId: string, key: string, options?: { after?: string; limit?: number }): Promise<{ userIds: string[]; hasMore: boolean }>;
  readers(messageId: string, options?: { unread?: boolean; after?: string; limit?: number }): Promise<{ count: number; unreadCount: number; userIds: string[]; hasMore: boolean }>;

  conversations(options?: { cursor?: string; limit?: number }): Promise<{ conversations: Conversation[]; totalUnread: number; nextCursor: string | null }>;
  conversation(conversationId: string): Promise<Conversation>;
  unread(): Promise<{ total: number; conversations: { conversationId: string; unread: number }[] }>;
  markRead(conversationId: string, seq: number): Promise<Conversation>;
  updateConversation(conversationId: string, patch: { pinned?: boolean; muted?: boolean; hidden?: boolean; draft?: string }): Promise<Conversation>;

  userInfo(who?: { id?: string; username?: string }): Promise<UserInfo>;
  updateProfile(userinfo: Partial<Omit<UserInfo, "id" | "username" | "createdAt">>): Promise<UserInfo>;
  online(ids: string[]): Promise<Record<string, boolean>>;
  logout(): Promise<Record<string, never>>;

  createGroup(g: { name: string; members?: string[]; joinPolicy?: "open" | "invite"; intro?: string; avatar?: string; maxMembers?: number }): Promise<Group>;
  joinGroup(groupId: string): Promise<Group>;
  quitGroup(groupId: string): Promise<Record<string, never>>;
  invite(groupId: string, members: string[]): Promise<Group>;
  kick(groupId: string, members: string[]): Promise<Group>;
  groupInfo(groupId: string): Promise<{ group: Group; myRole: Role | null }>;
  groups(): Promise<Group[]>;
  members(groupId: string, options?: { cursor?: string; limit?: number }): Promise<{ members: Member[]; nextCursor: string | null }>;
  updateGroup(groupId: string, patch: { name?: string; intro?: string; notice?: string; avatar?: string; joinPolicy?: "open" | "invite" }): Promise<Group>;
  setRole(groupId: string, userId: string, role: "admin" | "member"): Promise<Group>;
  transfer(groupId: string, userId: string): Promise<Group>;
  mute(groupId: string, until: number, userId?: string): Promise<Group>;
  dismiss(groupId: string): Promise<Record<string, never>>;

  upload(file: Blob | Uint8Array, options?: { onProgress?: (sent: number, total: number) => void; signal?: AbortSignal }): Promise<Upload>;
  /** A URL an `<img>` or a link can use: a signed link of 10 to 15 min for `/file/…`, reused while fresh. */
  fileLink(url: string): Promise<string>;
}
