// The plain parts of chatgate's JavaScript SDK: its error type and the builders of each kind of
// message content. chatgate.js re-exports all of them; nothing here talks to the network.

/** A refusal from the server, or a failure of the connection. */
export class ChatgateError extends Error {
  constructor(reason, message, extra = {}) {
    super(message || reason);
    this.name = "ChatgateError";
    /** The stable reason, such as `validation.text`, `forbidden` or `timeout`. */
    this.reason = reason;
    /** For `rate_limited`: milliseconds to wait. */
    this.retryAfter = extra.retryAfter;
    /** The HTTP status, for HTTP calls. */
    this.status = extra.status;
  }
}

// ---- message builders ----

/** A text message, optionally mentioning user ids (or "all") and replying to a message. */
export function createText(text, { mentions, replyTo } = {}) {
  const content = { text };
  if (mentions !== undefined) content.mentions = mentions;
  if (replyTo !== undefined) content.replyTo = String(replyTo);
  return { kind: "text", content };
}

/** An image: `url` is an upload's `/file/...` url or an http(s) URL. */
export function createImage({ url, width, height, size, mime, thumbnail }) {
  return { kind: "image", content: strip({ url, width, height, size, mime, thumbnail }) };
}

/** A video: `duration` in seconds. */
export function createVideo({ url, duration, width, height, size, mime, cover }) {
  return { kind: "video", content: strip({ url, duration, width, height, size, mime, cover }) };
}

/** An audio clip: `duration` in seconds. */
export function createAudio({ url, duration, size, mime }) {
  return { kind: "audio", content: strip({ url, duration, size, mime }) };
}

/** A file. */
export function createFile({ url, name, size, mime }) {
  return { kind: "file", content: strip({ url, name, size, mime }) };
}

/** A location. */
export function createLocation({ latitude, longitude, title }) {
  return { kind: "location", content: strip({ latitude, longitude, title }) };
}

/** Any JSON the app defines. */
export function createCustom(data) {
  return { kind: "custom", content: { data } };
}

/** The object without its undefined fields. */
export function strip(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined));
}

/** The id of the one-to-one conversation of two users. */
export function singleConversation(a, b) {
  const [x, y] = [Number(a), Number(b)].sort((p, q) => p - q);
  return `s:${x}:${y}`;
}
