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

export interface Message {
  id: string;
  conversationId: string;
  seq: number;
  chatType: ChatType;
  from: string;
  to: string;
  kind: Kind;
  content: Record<string, unknown>;
  clientMsgId: string;
  sentAt: number;
  status: "normal" | "recalled";
}

export interface Conversation {
  conversationId: string;
  chatType: ChatType;
  peer: UserInfo | Group | null;
  lastMessage: Message | null;
  lastSeq: number;
  readSeq: number;
  unread: number;
  pinned: boolean;
  muted: boolean;
  hidden: boolean;
  draft: string;
  updatedAt: number;
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

export interface Events {
  /** Every message of the user's conversations, exactly once, in seq order per conversation. */
  message: Message;
  recalled: { conversationId: string; messageId: string; seq: number };
  /** One-to-one read receipt: the peer read up to `seq`. */
  read: { conversationId: string; userId: string; seq: number };
  typing: { conversationId: string; userId: string };
  /** The user's own state of a conversation, changed on another device. */
  conversation: Conversation;
  group:
    | { event: "group.updated"; group: Group }
    | { event: "group.member"; groupId: string; action: string; userIds: string[]; by: string }
    | { event: "group.dismissed"; groupId: string; by: string };
  kicked: { reason: "logout" | "password_reset" | "token_expired" | "session_limit" };
  state: State;
  ready: { userId: string; node: string; pingInterval: number; pongTimeout: number; resumed: boolean };
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
  /** Milliseconds `send` keeps retrying (5 minutes). */
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
  | "/message/sync"
  | "/message/recall"
  | "/message/delete"
  | "/message/edit"
  | "/message/react"
  | "/message/unreact"
  | "/message/versions"
  | "/message/typing"
  | "/message/readers"
  | "/conversation/list"
  | "/conversation/info"
  | "/conversation/update"
  | "/conversation/read"
  | "/conversation/unread"
  | "/file/link";

export class Chatgate {
  constructor(options: Options);
  readonly state: State;
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

  send(chatType: ChatType, to: string, built: Built, options?: { clientMsgId?: string }): Promise<Message>;
  sendText(to: string, text: string, options?: { mentions?: string[] | "all"; replyTo?: string }): Promise<Message>;
  history(conversationId: string, options?: { beforeSeq?: number; afterSeq?: number; limit?: number }): Promise<{ messages: Message[]; hasMore: boolean }>;
  recall(messageId: string): Promise<{ message: Message }>;
  typing(conversationId: string): Promise<Record<string, never>>;
  readers(messageId: string): Promise<{ count: number; userIds: string[] }>;

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

  upload(file: Blob | Uint8Array, options?: { onProgress?: (sent: number, total: number) => void }): Promise<Upload>;
  /** A URL an `<img>` or a link can use: a signed link of 10 to 15 min for `/file/…`, reused while fresh. */
  fileLink(url: string): Promise<string>;
}
