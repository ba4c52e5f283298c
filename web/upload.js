// Sending files: picked with "+", dropped on the chat, or pasted into the composer. Each upload
// shows its progress and can be cancelled; pictures, videos and audio are sent as such (with
// their size and duration, read in the browser), anything else as a file.
import { createAudio, createFile, createImage, createVideo } from "/sdk/chatgate.js";
import { target } from "/compose.js";

const $ = (id) => document.getElementById(id);

let ctx;
/** Uploads go one after another, so that files dropped together arrive in their order. */
let queue = Promise.resolve();

/** Wires uploads to the page: `{state, adoptIfNew, alertError}`. */
export function uploads(page) {
  ctx = page;
  $("file").addEventListener("change", () => {
    const files = [...$("file").files];
    $("file").value = "";
    sendFiles(files);
  });
  const chat = $("chat");
  const carriesFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  chat.addEventListener("dragover", (e) => {
    if (!carriesFiles(e) || !ctx.state.open) return;
    e.preventDefault();
    chat.classList.add("dropping");
  });
  chat.addEventListener("dragleave", (e) => { if (!chat.contains(e.relatedTarget)) chat.classList.remove("dropping"); });
  chat.addEventListener("drop", (e) => {
    chat.classList.remove("dropping");
    if (!carriesFiles(e)) return;
    e.preventDefault();
    sendFiles([...e.dataTransfer.files]);
  });
  // A pasted picture (a screenshot, an image copied) is sent; pasted text stays text.
  $("text").addEventListener("paste", (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (!files.length) return;
    e.preventDefault();
    sendFiles(files);
  });
}

/** Sends each file, in order, to the conversation open now. */
function sendFiles(files) {
  const c = ctx.state.open;
  if (!c) return;
  for (const file of files) queue = queue.then(() => sendFile(c, file));
}

async function sendFile(c, file) {
  const cancel = new AbortController();
  const bar = $("upload");
  $("upload-name").textContent = file.name || "pasted picture";
  $("upload-progress").value = 0;
  bar.hidden = false;
  const stop = () => cancel.abort();
  $("upload-cancel").addEventListener("click", stop);
  try {
    const onProgress = (sent, total) => { $("upload-progress").value = Math.round((100 * sent) / (total || 1)); };
    const up = await ctx.state.client.upload(file, { onProgress, signal: cancel.signal });
    await ctx.state.client.send(...target(c), await built(file, up));
    await ctx.adoptIfNew();
  } catch (err) {
    ctx.alertError(err.reason === "aborted" ? `Upload of “${file.name || "the picture"}” cancelled: nothing was sent.` : err);
  } finally {
    $("upload-cancel").removeEventListener("click", stop);
    bar.hidden = true;
  }
}

/** The message for an uploaded file, by the type the server sniffed. */
async function built(file, up) {
  const name = file.name.slice(0, 255) || "file";
  const common = { url: up.url, size: up.size, mime: up.mime };
  if (up.mime.startsWith("image/")) {
    const { width, height } = await probe(file, "img");
    return createImage({ ...common, width, height });
  }
  const kind = up.mime.startsWith("video/") ? "video" : up.mime.startsWith("audio/") ? "audio" : null;
  const media = kind && (await probe(file, kind));
  if (media && kind === "video") return createVideo({ ...common, duration: media.duration, width: media.width, height: media.height });
  if (media && kind === "audio") return createAudio({ ...common, duration: media.duration });
  return createFile({ ...common, name });
}

/**
 * What the browser reads of a picture, video or audio file: its size and duration (0 when the
 * file doesn't say, as recordings often don't). Null when it can't play it: it goes as a file.
 */
function probe(file, tag) {
  return new Promise((resolve) => {
    const el = document.createElement(tag);
    const url = URL.createObjectURL(file);
    const end = (value) => { URL.revokeObjectURL(url); resolve(value); };
    const duration = () => (Number.isFinite(el.duration) ? Math.min(el.duration, 86_400) : 0);
    if (tag === "img") {
      el.onload = () => end({ width: el.naturalWidth, height: el.naturalHeight });
      el.onerror = () => end({ width: 0, height: 0 });
    } else {
      el.preload = "metadata";
      el.onloadedmetadata = () => end({ duration: duration(), width: el.videoWidth || 0, height: el.videoHeight || 0 });
      el.onerror = () => end(null);
    }
    el.src = url;
  });
}
