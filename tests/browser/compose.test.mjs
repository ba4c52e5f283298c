// The composer's journeys: an outbox that survives closing the tab, the keyboard, mentions, and
// media (drag and drop, paste, an upload's progress and cancel, video and audio inline).
import { test } from "node:test";
import assert from "node:assert/strict";

import { SIZES, bubble, chatWith, conversation, person, png, reopen, say, server, texts, wav } from "./helpers.mjs";

test("what is typed offline survives closing the tab: reopened, it goes once, in the order typed", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await chatWith(alice.page, bob.name);
  await say(alice.page, "before");
  await server.stop();
  const page = alice.page;
  for (const text of ["one", "two", "three"]) {
    await page.getByLabel("Message").fill(text);
    await page.getByRole("button", { name: "Send" }).click();
  }
  await page.locator("[data-pending=sending][data-kept=yes]").nth(2).waitFor();
  await page.close();
  await server.start();

  const again = await reopen(alice);
  await bubble(again, "three").waitFor();
  await again.waitForFunction(() => !document.querySelector("[data-pending]"));
  const conversationId = `s:${[alice.id, bob.id].sort((a, b) => a - b).join(":")}`;
  const stored = await fetch(`${server.base}/message/history?conversationId=${conversationId}`, { headers: { authorization: `Bearer ${bob.token}` } });
  // The server holds each once, in order; and the page shows that.
  assert.deepEqual((await stored.json()).data.messages.map((m) => m.content.text), ["before", "one", "two", "three"]);
  assert.deepEqual(await texts(again), ["before", "one", "two", "three"]);
  await conversation(bob.page, alice.name).click();
  await bubble(bob.page, "three").waitFor();
  assert.deepEqual(await texts(bob.page), ["before", "one", "two", "three"]);
  // Opened once more, nothing is sent again.
  await again.close();
  const third = await reopen(alice);
  await bubble(third, "three").waitFor();
  assert.deepEqual(await texts(third), ["before", "one", "two", "three"]);
  for (const p of [alice, bob]) await p.context.close();
});

test("Enter sends, Shift+Enter starts a new line, and the text keeps its lines for both", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await chatWith(alice.page, bob.name);
  const page = alice.page;
  const box = page.getByRole("textbox", { name: "Message" });
  await box.click();
  await page.keyboard.type("first line");
  await page.keyboard.press("Shift+Enter");
  await page.keyboard.type("second line");
  assert.equal(await box.inputValue(), "first line\nsecond line");
  assert.equal(await page.getByTestId("message").count(), 0, "Shift+Enter sends nothing");
  const oneLine = (await box.boundingBox()).height;
  await page.keyboard.press("Enter");
  await bubble(page, "second line").waitFor();
  assert.equal(await box.inputValue(), "");
  assert.ok((await box.boundingBox()).height <= oneLine, "the emptied composer shrinks back");
  await conversation(bob.page, alice.name).click();
  await bubble(bob.page, "second line").waitFor();
  assert.deepEqual(await texts(bob.page), ["first line\nsecond line"]);
  const shown = await bubble(bob.page, "second line").locator(".text").evaluate((el) => el.getClientRects().length && el.innerText);
  assert.equal(shown, "first line\nsecond line", "shown on two lines");
  for (const p of [alice, bob]) await p.context.close();
});

for (const [size, viewport] of SIZES) test(`@ in a group lists its members as they are typed; the one picked is mentioned, and the owner may mention all (${size})`, async () => {
  const alice = await person("alice", viewport);
  const bob = await person("bob", viewport);
  const carol = await person("carol");
  await server.call(alice.token, "/group/room/add", { name: "Picks", members: [bob.id, carol.id] });
  const page = alice.page;
  await conversation(page, "Picks").click();
  await page.getByTestId("member").nth(2).waitFor({ state: "attached" });
  const box = page.getByRole("textbox", { name: "Message" });
  const list = page.getByRole("listbox", { name: "Mention a member" });
  await box.click();
  await page.keyboard.type("hi @");
  // Everyone but oneself, and "all" for the owner.
  await list.waitFor();
  const offered = await list.getByRole("option").allTextContents();
  assert.equal(offered.length, 3, `offered ${offered}`);
  assert.ok(offered[0].startsWith("@all"));
  await page.keyboard.type(bob.name.slice(0, 3));
  await list.getByRole("option").filter({ hasText: bob.name }).waitFor();
  await page.keyboard.press("Enter");
  assert.equal(await box.inputValue(), `hi @${bob.name} `, "Enter picks, and sends nothing");
  await list.waitFor({ state: "hidden" });
  await page.keyboard.type("look");
  await page.keyboard.press("Enter");
  await bubble(page, "look").waitFor();

  await conversation(bob.page, "Picks").getByTestId("mention-badge").filter({ hasText: "@1" }).waitFor();
  await conversation(carol.page, "Picks").getByTestId("unread").filter({ hasText: "1" }).waitFor();
  assert.equal(await conversation(carol.page, "Picks").getByTestId("mention-badge").count(), 0);

  // A click picks too; @all reaches everyone.
  await page.keyboard.type("@a");
  await list.getByRole("option").filter({ hasText: "@all" }).click();
  await page.keyboard.type("meeting");
  await page.keyboard.press("Enter");
  await bubble(page, "meeting").waitFor();
  await conversation(carol.page, "Picks").getByTestId("mention-badge").filter({ hasText: "@1" }).waitFor();
  await conversation(carol.page, "Picks").click();
  await bubble(carol.page, "meeting").filter({ hasText: "mentions you" }).waitFor();
  for (const p of [alice, bob, carol]) await p.context.close();
});

/** A file put on the page's side, where drag and drop and the clipboard carry them. */
function transfer(page, name, type, bytes) {
  return page.evaluateHandle(([n, t, b]) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(b)], n, { type: t }));
    return dt;
  }, [name, type, [...bytes]]);
}

for (const [size, viewport] of SIZES) test(`a file dropped on the chat is sent, and so is a picture pasted into the composer (${size})`, async () => {
  const alice = await person("alice", viewport);
  const bob = await person("bob", viewport);
  await chatWith(alice.page, bob.name);
  const page = alice.page;
  const dropped = await transfer(page, "dropped.txt", "text/plain", Buffer.from("dropped words"));
  await page.dispatchEvent("#chat", "dragover", { dataTransfer: dropped });
  assert.ok(await page.locator("#chat.dropping").count(), "the chat shows where to drop");
  await page.dispatchEvent("#chat", "drop", { dataTransfer: dropped });
  await page.getByTestId("file-link").filter({ hasText: "dropped.txt" }).waitFor();
  assert.equal(await page.locator("#chat.dropping").count(), 0);

  const picture = await transfer(page, "image.png", "image/png", png(30, 20));
  await page.getByRole("textbox", { name: "Message" }).focus();
  await page.evaluate((dt) => document.activeElement.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true })), picture);
  await page.getByTestId("image").waitFor();
  assert.equal(await page.getByRole("textbox", { name: "Message" }).inputValue(), "", "the picture is not pasted as text");
  await conversation(bob.page, alice.name).click();
  await bob.page.getByTestId("file-link").filter({ hasText: "dropped.txt" }).waitFor();
  await bob.page.waitForFunction(() => document.querySelector("[data-testid=image]")?.naturalWidth === 30);
  for (const p of [alice, bob]) await p.context.close();
});

test("an upload shows its progress and can be cancelled: nothing is sent until it is done again", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await chatWith(alice.page, bob.name);
  await say(alice.page, "a big one comes");
  const page = alice.page;
  // A slow line, so that the upload takes a while: 256 KiB/s for 2 MiB.
  const cdp = await alice.context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
  const big = Buffer.alloc(2 * 1024 * 1024, 7);
  await page.getByTestId("file").setInputFiles({ name: "big.bin", mimeType: "application/octet-stream", buffer: big });
  const progress = page.getByRole("progressbar", { name: "Upload progress" });
  await progress.waitFor();
  await page.waitForFunction(() => document.getElementById("upload-progress").value > 0);
  await page.getByRole("button", { name: "Cancel upload" }).click();
  await progress.waitFor({ state: "hidden" });
  await page.getByTestId("typing").filter({ hasText: "Upload of “big.bin” cancelled: nothing was sent." }).waitFor();
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await page.getByTestId("file").setInputFiles({ name: "big.bin", mimeType: "application/octet-stream", buffer: big });
  await page.getByTestId("file-link").filter({ hasText: "big.bin" }).waitFor();
  await conversation(bob.page, alice.name).click();
  await bob.page.getByTestId("file-link").filter({ hasText: "big.bin" }).waitFor();
  assert.equal(await bob.page.getByTestId("file-link").count(), 1, "the cancelled upload sent nothing");
  for (const p of [alice, bob]) await p.context.close();
});

for (const [size, viewport] of SIZES) test(`audio and video play inline, for the sender and the peer (${size})`, async () => {
  const alice = await person("alice", viewport);
  const bob = await person("bob", viewport);
  await chatWith(alice.page, bob.name);
  const page = alice.page;
  await page.getByTestId("file").setInputFiles({ name: "tone.wav", mimeType: "audio/wav", buffer: wav(1) });
  await page.getByTestId("audio").waitFor();
  // A short recording, made by the browser itself: VP8 in WebM.
  const webm = await page.evaluate(async () => {
    const canvas = Object.assign(document.createElement("canvas"), { width: 160, height: 120 });
    const g = canvas.getContext("2d");
    const recorder = new MediaRecorder(canvas.captureStream(15), { mimeType: "video/webm" });
    const chunks = [];
    recorder.ondataavailable = (e) => chunks.push(e.data);
    const stopped = new Promise((r) => { recorder.onstop = r; });
    recorder.start();
    for (let i = 0; i < 12; i++) {
      g.fillStyle = `hsl(${i * 30} 80% 50%)`;
      g.fillRect(0, 0, 160, 120);
      await new Promise((r) => setTimeout(r, 50));
    }
    recorder.stop();
    await stopped;
    return [...new Uint8Array(await new Blob(chunks).arrayBuffer())];
  });
  await page.getByTestId("file").setInputFiles({ name: "clip.webm", mimeType: "video/webm", buffer: Buffer.from(webm) });
  await page.getByTestId("video").waitFor();
  await conversation(bob.page, alice.name).click();
  await bob.page.getByTestId("video").waitFor();
  const played = await bob.page.waitForFunction(() => {
    const audio = document.querySelector("[data-testid=audio]");
    const video = document.querySelector("[data-testid=video]");
    return audio?.readyState >= 1 && video?.readyState >= 1 && { audio: audio.duration, width: video.videoWidth };
  });
  const { audio, width } = await played.jsonValue();
  assert.ok(Math.abs(audio - 1) < 0.05, `the tone lasts ${audio} s`);
  assert.equal(width, 160);
  for (const p of [alice, bob]) await p.context.close();
});
