// The view follows the conversation, at desktop and at phone size: at the bottom it stays there
// as messages and pictures arrive; older history loads above without moving what is read; and a
// conversation list answered late, with older data, never takes the state back.
import { test } from "node:test";
import assert from "node:assert/strict";

import { SIZES, bubble, conversation, person, png, server } from "./helpers.mjs";

/** Sends `text` from `who` to `to` over HTTP, as another device of theirs would. */
function send(who, to, content, kind = "text", key = Math.random().toString(36).slice(2)) {
  return server.call(who.token, "/message/send", { chatType: "single", to: to.id, kind, content, clientMsgId: key });
}

/** Sends `n` texts from `bob` to `alice`, which she reads on another device; her page hears of both. */
async function readBacklog(alice, bob, n, label) {
  let last;
  for (let i = 1; i <= n; i++) last = await send(bob, alice, { text: `${label} ${i}` });
  await server.call(alice.token, "/conversation/read", { conversationId: last.message.conversationId, seq: last.message.seq });
  const item = conversation(alice.page, bob.name).filter({ hasText: `${label} ${n}` });
  await item.waitFor();
  await item.getByTestId("unread").waitFor({ state: "detached" });
}

/** The open chat's text that is `text` exactly (a bubble's time would extend "line 8" to "line 801:05"). */
function exactly(page, text) {
  return page.getByTestId("messages").locator(".text", { hasText: new RegExp(`^${text}$`) });
}

/** Whether `el` is wholly inside the message list's visible box. */
async function inView(page, locator) {
  const list = await page.getByTestId("messages").boundingBox();
  const box = await locator.boundingBox();
  return box.y >= list.y - 1 && box.y + box.height <= list.y + list.height + 1;
}

for (const [size, viewport] of SIZES) {
  test(`at the bottom, the view stays there as texts and a tall picture arrive (${size})`, async () => {
    const alice = await person("alice", viewport);
    const bob = await person("bob");
    await readBacklog(alice, bob, 30, "filler");
    const page = alice.page;
    await conversation(page, bob.name).click();
    await exactly(page, "filler 30").waitFor();
    await send(bob, alice, { text: "a new one" });
    await bubble(page, "a new one").waitFor();
    assert.ok(await inView(page, bubble(page, "a new one")), "a new message scrolls into view");

    const upload = await fetch(`${server.base}/file/upload`, { method: "POST", headers: { authorization: `Bearer ${bob.token}` }, body: png(120, 600) });
    const file = (await upload.json()).data;
    await send(bob, alice, { url: file.url, width: 120, height: 600, size: file.size, mime: file.mime }, "image");
    await send(bob, alice, { text: "after the picture" });
    await bubble(page, "after the picture").waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=image]")].every((img) => img.complete && img.naturalHeight > 0));
    assert.ok(await inView(page, bubble(page, "after the picture")), "the message after the picture is in view, not below the fold");
    for (const p of [alice, bob]) await p.context.close();
  });
}

test("scrolling up loads older history above, and what was in view stays where it was", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await readBacklog(alice, bob, 80, "line");
  const page = alice.page;
  await conversation(page, bob.name).click();
  await exactly(page, "line 80").waitFor();
  const shownBefore = await page.getByTestId("message").count();
  assert.ok(shownBefore < 80, `a page at first, not all: ${shownBefore}`);
  const oldest = page.getByTestId("messages").getByTestId("message").first();
  const anchorText = await oldest.locator(".text").textContent();
  const anchor = page.getByTestId("messages").locator(".text", { hasText: new RegExp(`^${anchorText}$`) });
  await page.getByTestId("messages").evaluate((l) => { l.scrollTop = 0; });
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=message]").length > n, shownBefore);
  const list = await page.getByTestId("messages").boundingBox();
  const box = await anchor.boundingBox();
  assert.ok(box.y >= list.y - 2 && box.y < list.y + 60, `the message that was at the top stays near it: ${box.y} in ${list.y}`);
  await page.getByTestId("messages").evaluate((l) => { l.scrollTop = 0; });
  await page.getByTestId("messages").locator(".text", { hasText: /^line 1$/ }).waitFor();
  for (const p of [alice, bob]) await p.context.close();
});

test("a conversation list answered late, with what was true before a read, leaves the read chat at 0 unread", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const carol = await person("carol");
  await send(bob, alice, { text: "hello" });
  // A chat the page knows already: a message there doesn't make it ask for the list again.
  await send(carol, alice, { text: "known" });
  const page = alice.page;
  // Between the page and the server: the second list reply (the one after a reconnect) is held
  // back until released, as a slow server would answer it.
  let replies = 0;
  let sockets = [];
  let hold;
  const held = new Promise((r) => { hold = r; });
  await page.routeWebSocket(/\/ws/, (ws) => {
    const up = ws.connectToServer();
    sockets.push(ws);
    const lists = new Set();
    ws.onMessage((frame) => {
      if (typeof frame === "string" && frame.includes('"/conversation/list"')) lists.add(JSON.parse(frame).id);
      up.send(frame);
    });
    up.onMessage((frame) => {
      const reply = typeof frame === "string" && frame.startsWith("{") ? JSON.parse(frame) : null;
      if (reply?.type === "res" && lists.has(reply.id) && ++replies === 2) return hold(() => ws.send(frame));
      ws.send(frame);
    });
  });
  await page.reload();
  const item = conversation(page, bob.name);
  await item.getByTestId("unread").filter({ hasText: "1" }).waitFor();
  // The socket drops; the page reconnects and asks for the list again, whose answer says 1 unread.
  await sockets[0].close();
  const deliver = await held;
  // Meanwhile the person reads the chat.
  await item.click();
  await bubble(page, "hello").waitFor();
  await item.getByTestId("unread").waitFor({ state: "detached" });
  // The late answer arrives, then a message in another chat: by then the page has seen the answer.
  deliver();
  await send(carol, alice, { text: "barrier" });
  await conversation(page, carol.name).filter({ hasText: "barrier" }).waitFor();
  assert.equal(await item.getByTestId("unread").count(), 0, "the late list took the read chat back to unread");
  for (const p of [alice, bob, carol]) await p.context.close();
});
