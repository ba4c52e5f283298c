// End-to-end journeys of the web client in headless Chromium, against a real chatgate binary
// ($CHATGATE_BIN) that the helpers start, stop and restart on a temp data dir. Run by
// `cargo test` (tests/it/browser.rs). Screenshots of each journey go to ./screenshots/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { WAIT, browser, bubble, chatWith, conversation, dataDir, dialog, person, png, say, server, shot, texts } from "./helpers.mjs";
test("two users chat both ways, live, with read receipts", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await chatWith(alice.page, bob.name);
  await say(alice.page, "hello bob");
  // Bob's page has it, not yet open: Alice sees it delivered.
  await alice.page.getByTestId("delivered").filter({ hasText: "Delivered" }).waitFor();
  // Bob sees it arrive in his list, opens it: Alice sees her message read.
  await conversation(bob.page, alice.name).click();
  await bubble(bob.page, "hello bob").waitFor();
  await alice.page.getByTestId("receipt").waitFor();
  await say(bob.page, "hi alice");
  // Alice has the conversation open: the reply comes live and she reads it at once.
  await bubble(alice.page, "hi alice").waitFor();
  await bob.page.getByTestId("receipt").waitFor();
  assert.deepEqual(await texts(alice.page), ["hello bob", "hi alice"]);
  assert.deepEqual(await texts(bob.page), ["hello bob", "hi alice"]);
  // Typing shows on the other side.
  await bob.page.getByTestId("text").fill("typing something");
  await alice.page.getByTestId("typing").filter({ hasText: "is typing" }).waitFor();
  // A recall reaches the peer.
  await alice.page.getByTestId("messages").getByRole("button", { name: "Recall" }).first().click();
  await bob.page.getByTestId("messages").getByText("Message recalled").waitFor();
  await shot(alice.page, "chat-alice");
  await shot(bob.page, "chat-bob");
  await alice.context.close();
  await bob.context.close();
});


test("an uploaded image renders in the peer's view, and a file comes as a link", async () => {
  const alice = await person("carol");
  const bob = await person("dave");
  await chatWith(alice.page, bob.name);
  await say(alice.page, "a picture for you");
  await alice.page.getByTestId("file").setInputFiles({ name: "dots.png", mimeType: "image/png", buffer: png(64, 48) });
  await alice.page.getByTestId("image").waitFor();
  await alice.page.getByTestId("file").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("some notes") });
  await alice.page.getByTestId("file-link").waitFor();
  await conversation(bob.page, alice.name).click();
  const image = bob.page.getByTestId("image");
  await image.waitFor();
  await bob.page.waitForFunction(() => {
    const img = document.querySelector("[data-testid=image]");
    return img && img.complete && img.naturalWidth === 64 && img.naturalHeight === 48;
  });
  // A picture opens larger, and Esc closes it.
  await bob.page.getByRole("button", { name: "Open the picture" }).click();
  const big = bob.page.getByTestId("lightbox-image");
  await big.waitFor();
  assert.equal(await big.getAttribute("src"), await image.getAttribute("src"));
  await bob.page.keyboard.press("Escape");
  await big.waitFor({ state: "hidden" });
  const link = bob.page.getByTestId("file-link");
  assert.equal(await link.textContent(), "notes.txt");
  const fetched = await bob.page.evaluate(async (href) => (await fetch(href)).text(), await link.getAttribute("href"));
  assert.equal(fetched, "some notes");
  for (const who of [alice, bob]) {
    assert.ok(who.urls.some((u) => u.includes("/ws?ticket=")), `${who.name} opened no socket by ticket`);
    assert.ok(who.urls.some((u) => /\/file\/[0-9a-f]{32}\?exp=\d+&sig=/.test(u)), `${who.name} fetched no signed link`);
    const leaked = who.urls.filter((u) => u.includes(who.token) || u.includes("token="));
    assert.deepEqual(leaked, [], `${who.name}'s token went into a URL`);
  }
  await shot(bob.page, "image-peer");
  await alice.context.close();
  await bob.context.close();
});

/** The reset link the server wrote to its outbox for `username`, once it is there. */
async function resetLink(username) {
  const end = Date.now() + WAIT;
  for (;;) {
    let text = "";
    try { text = readFileSync(join(dataDir, "outbox.jsonl"), "utf8"); } catch {}
    const line = text.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((n) => n.username === username);
    if (line) return line.resetUrl;
    if (Date.now() > end) throw new Error(`no reset notice for ${username}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function logsIn(username, password) {
  const r = await fetch(`${server.base}/user/login`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }),
  });
  return (await r.json()).code === 0;
}

test("a password-reset link opens a page that sets the new password, once", async () => {
  const erin = await person("erin");
  const asked = await fetch(`${server.base}/user/changePassword`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: erin.name }),
  });
  assert.equal((await asked.json()).code, 0);
  const link = await resetLink(erin.name);
  const page = await erin.context.newPage();
  page.setDefaultTimeout(WAIT);
  await page.goto(link);
  await page.getByTestId("new-password").fill("a brand new password");
  assert.ok(!page.url().includes("token"), `the secret left the address bar: ${page.url()}`);
  await page.getByTestId("new-password-again").fill("a brand new password");
  await page.getByTestId("reset-submit").click();
  await page.getByTestId("reset-done").waitFor();
  await shot(page, "reset-done");
  assert.equal(await logsIn(erin.name, "a brand new password"), true);
  assert.equal(await logsIn(erin.name, "a long enough password"), false);
  // The same link again: spent, and the page says so.
  const again = await erin.context.newPage();
  again.setDefaultTimeout(WAIT);
  await again.goto(link);
  await again.getByTestId("new-password").fill("yet another password");
  await again.getByTestId("new-password-again").fill("yet another password");
  await again.getByTestId("reset-submit").click();
  await again.waitForFunction(() => document.querySelector("[data-testid=reset-error]").textContent.includes("expired or was used"));
  await erin.context.close();
});

test("unread badges count up, and clear when the conversation is opened", async () => {
  const alice = await person("erin");
  const bob = await person("frank");
  for (const text of ["one", "two", "three"]) {
    await server.call(alice.token, "/message/send", { chatType: "single", to: bob.id, kind: "text", content: { text }, clientMsgId: `badge-${text}` });
  }
  const item = conversation(bob.page, alice.name);
  await item.getByTestId("unread").filter({ hasText: "3" }).waitFor();
  await bob.page.getByTestId("total-unread").filter({ hasText: "3" }).waitFor();
  // The tab says so too.
  await bob.page.waitForFunction(() => document.title === "(3) chatgate");
  await bob.page.waitForFunction(() => {
    const icon = document.querySelector("link[rel=icon]");
    return icon.href.startsWith("data:image/png") && icon.dataset.unread === "3";
  });
  await shot(bob.page, "unread-badges");
  await item.click();
  await bubble(bob.page, "three").waitFor();
  await item.getByTestId("unread").waitFor({ state: "detached" });
  await bob.page.getByTestId("total-unread").waitFor({ state: "hidden" });
  await bob.page.waitForFunction(() => document.title === "chatgate");
  // Read on this device is read everywhere: a fresh page shows no badge either.
  const again = await bob.context.newPage();
  await again.goto(server.base);
  await conversation(again, alice.name).waitFor();
  assert.equal(await conversation(again, alice.name).getByTestId("unread").count(), 0);
  await alice.context.close();
  await bob.context.close();
});

test("a group is created, a message is sent to it, and every member sees it", async () => {
  const owner = await person("gina");
  const member = await person("hank");
  // The third member is on a phone-sized screen.
  const phone = await person("ivy", { width: 390, height: 800 });
  await owner.page.getByTestId("new-group").click();
  await dialog(owner.page, "Climbing club", `${member.name}, ${phone.name}`);
  await owner.page.getByTestId("chat-title").filter({ hasText: "Climbing club" }).waitFor();
  await owner.page.getByTestId("show-members").click();
  const roles = await owner.page.getByTestId("member").allTextContents();
  assert.equal(roles.length, 3, roles.join(" | "));
  assert.ok(roles.some((r) => r.includes(owner.name) && r.includes("owner")), roles.join(" | "));
  assert.ok(roles.some((r) => r.includes(phone.name) && r.includes("member")), roles.join(" | "));
  await say(owner.page, "first climb on saturday");
  for (const someone of [member, phone]) {
    await conversation(someone.page, "Climbing club").click();
    await bubble(someone.page, "first climb on saturday").waitFor();
  }
  await say(phone.page, "count me in");
  await bubble(owner.page, "count me in").waitFor();
  await bubble(member.page, "count me in").waitFor();
  await shot(owner.page, "group-owner");
  await shot(phone.page, "group-phone");
  // Back to the list on the phone: the conversation is there, the chat hidden.
  await phone.page.getByLabel("Back").click();
  await conversation(phone.page, "Climbing club").waitFor();
  for (const p of [owner, member, phone]) await p.context.close();
});

test("the server restarts mid-conversation: the client shows it, reconnects, and shows what came meanwhile once, in order", async () => {
  const alice = await person("judy");
  const bob = await person("karl");
  await chatWith(alice.page, bob.name);
  await say(alice.page, "before the restart");
  await server.stop();
  await alice.page.getByTestId("reconnecting").waitFor();
  await shot(alice.page, "reconnecting");
  await server.start();
  // Sent while Alice's client is still away (or just back): she must get each once, in order.
  const sent = ["while away 1", "while away 2", "while away 3"];
  for (const [i, text] of sent.entries()) {
    await server.call(bob.token, "/message/send", { chatType: "single", to: alice.id, kind: "text", content: { text }, clientMsgId: `away-${i}` });
  }
  await alice.page.getByTestId("reconnecting").waitFor({ state: "hidden" });
  await bubble(alice.page, "while away 3").waitFor();
  await say(alice.page, "and after");
  assert.deepEqual(await texts(alice.page), ["before the restart", ...sent, "and after"]);
  const seqs = await alice.page.getByTestId("messages").getByTestId("message").evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, [1, 2, 3, 4, 5]);
  await shot(alice.page, "after-restart");
  await alice.context.close();
  await bob.context.close();
});

test("an earlier login error goes as soon as the person registers anew or types", async () => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  await page.goto(server.base);
  const form = page.locator("#login-form");
  await form.getByLabel("Username").fill(`stale${process.pid % 10000}`);
  await form.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  const alert = form.getByRole("alert");
  await alert.filter({ hasText: /wrong username or password/i }).waitFor();
  // Too short a password: the browser's own hint speaks, and the old answer is gone.
  await form.getByLabel("Password").fill("12345");
  await page.getByRole("button", { name: "Create account" }).click();
  assert.equal((await alert.textContent()).trim(), "");
  await context.close();
});

test("new chat, new group and join say what is wrong in the dialog, which stays open", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const carol = await person("carol");
  const page = alice.page;
  const box = page.getByRole("dialog");
  const problem = box.getByRole("alert");
  await page.getByRole("button", { name: "New chat" }).click();
  await box.getByLabel("Username").fill("nobody-here");
  await box.getByRole("button", { name: "OK" }).click();
  await problem.filter({ hasText: "No user named “nobody-here”." }).waitFor();
  assert.ok(await box.isVisible(), "the dialog stays open");
  // Names are trimmed, and found whatever their case, as the server treats them.
  await box.getByLabel("Username").fill(`  ${alice.name.toUpperCase()}  `);
  await box.getByRole("button", { name: "OK" }).click();
  await problem.filter({ hasText: "That is you" }).waitFor();
  await box.getByLabel("Username").fill(` ${bob.name[0].toUpperCase()}${bob.name.slice(1)} `);
  await box.getByRole("button", { name: "OK" }).click();
  await box.waitFor({ state: "hidden" });
  assert.equal(await page.getByTestId("chat-title").textContent(), bob.name);

  await page.getByRole("button", { name: "New group" }).click();
  await box.getByLabel("Name").fill("Errands");
  await box.getByLabel("Members").fill(`${bob.name}, ghost-one, ghost-two`);
  await box.getByRole("button", { name: "OK" }).click();
  await problem.filter({ hasText: "No user named “ghost-one”, “ghost-two”." }).waitFor();
  await box.getByLabel("Members").fill(bob.name.toUpperCase());
  await box.getByRole("button", { name: "OK" }).click();
  await box.waitFor({ state: "hidden" });
  // The group's id shows with it: what someone else types to join.
  const subtitle = await page.locator("#chat-subtitle").filter({ hasText: "group id" }).textContent();
  const id = subtitle.match(/group id (\d+)/)[1];

  const other = carol.page;
  const otherBox = other.getByRole("dialog");
  await other.getByRole("button", { name: "Join" }).click();
  await otherBox.getByLabel("Group id").fill("Errands");
  await otherBox.getByRole("button", { name: "OK" }).click();
  await otherBox.getByRole("alert").filter({ hasText: "Type the group's id, a number" }).waitFor();
  await otherBox.getByLabel("Group id").fill("999999");
  await otherBox.getByRole("button", { name: "OK" }).click();
  await otherBox.getByRole("alert").filter({ hasText: "No group with id 999999." }).waitFor();
  await otherBox.getByLabel("Group id").fill(id);
  await otherBox.getByRole("button", { name: "OK" }).click();
  await otherBox.waitFor({ state: "hidden" });
  await other.getByTestId("chat-title").filter({ hasText: "Errands" }).waitFor();
  for (const p of [alice, bob, carol]) await p.context.close();
});

test("a text over the length limit is refused before sending, with its count, and never cut", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await chatWith(alice.page, bob.name);
  const long = "x".repeat(6000);
  const input = alice.page.getByLabel("Message");
  await input.fill(long);
  await alice.page.getByRole("status").filter({ hasText: "6000 / 5000" }).waitFor();
  await alice.page.getByRole("button", { name: "Send" }).click();
  await alice.page.getByTestId("typing").filter({ hasText: "Too long to send: 6000 characters, at most 5000" }).waitFor();
  assert.equal((await input.inputValue()).length, 6000, "the text is kept whole");
  assert.equal(await alice.page.getByTestId("message").count(), 0, "nothing was sent");
  // Shortened, it goes.
  await input.fill("x".repeat(5000));
  await alice.page.getByRole("button", { name: "Send" }).click();
  await alice.page.getByTestId("message").waitFor();
  assert.ok(await alice.page.getByRole("status").isHidden());
  for (const p of [alice, bob]) await p.context.close();
});

test("offline, the banner says so and covers no control; messages show at once as sending, in order, and go once back", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await chatWith(alice.page, bob.name);
  await say(alice.page, "before");
  const page = alice.page;
  const banner = page.getByRole("status").filter({ hasText: /Offline|Reconnecting/ });
  // The browser goes offline: the banner says it at once, and the bar under it still works.
  await alice.context.setOffline(true);
  await banner.filter({ hasText: "Offline" }).waitFor();
  await page.getByRole("button", { name: "Log out" }).click({ trial: true, timeout: 2000 });
  await alice.context.setOffline(false);
  await banner.waitFor({ state: "hidden" });

  // The server goes away: what is typed shows at once, as sending, in the order typed.
  await server.stop();
  await banner.filter({ hasText: "Reconnecting" }).waitFor();
  await page.getByRole("button", { name: "Log out" }).click({ trial: true, timeout: 2000 });
  for (const text of ["one", "two", "three"]) {
    await page.getByLabel("Message").fill(text);
    await page.getByRole("button", { name: "Send" }).click();
  }
  assert.equal(await page.getByLabel("Message").inputValue(), "");
  await page.locator("[data-pending=sending]").nth(2).waitFor();
  assert.deepEqual(await texts(page), ["before", "one", "two", "three"]);
  await server.start();
  await page.locator("[data-pending]").first().waitFor({ state: "detached" });
  await page.waitForFunction(() => !document.querySelector("[data-pending]"));
  assert.deepEqual(await texts(page), ["before", "one", "two", "three"]);
  await conversation(bob.page, alice.name).click();
  await bubble(bob.page, "three").waitFor();
  assert.deepEqual(await texts(bob.page), ["before", "one", "two", "three"]);
  for (const p of [alice, bob]) await p.context.close();
});

test("a reload brings back the open chat and its draft; a new chat is listed at once; 40 quick sends keep their order", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const page = alice.page;
  await chatWith(page, bob.name);
  await conversation(page, bob.name).waitFor();
  const sent = Array.from({ length: 40 }, (_, i) => `quick ${String(i + 1).padStart(2, "0")}`);
  for (const text of sent) {
    await page.getByLabel("Message").fill(text);
    await page.getByRole("button", { name: "Send" }).click();
  }
  await bubble(page, "quick 40").waitFor();
  await page.waitForFunction(() => !document.querySelector("[data-pending]"));
  assert.deepEqual(await texts(page), sent);
  await conversation(bob.page, alice.name).click();
  await bubble(bob.page, "quick 40").waitFor();
  assert.deepEqual(await texts(bob.page), sent);

  await page.getByLabel("Message").fill("half-written");
  await page.reload();
  await page.getByTestId("chat-title").filter({ hasText: bob.name }).waitFor();
  assert.equal(await page.getByLabel("Message").inputValue(), "half-written");
  await bubble(page, "quick 40").waitFor();
  const atEnd = () => page.getByTestId("messages").evaluate((l) => l.scrollHeight - l.scrollTop - l.clientHeight < 80);
  assert.ok(await atEnd(), "opened at the newest message");
  for (const p of [alice, bob]) await p.context.close();
});

test("a chat opens at its first unread message, and a message below the view shows a hint that scrolls to it", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  for (let i = 1; i <= 40; i++) {
    await server.call(bob.token, "/message/send", { chatType: "single", to: alice.id, kind: "text", content: { text: `unread ${i}` }, clientMsgId: `u${i}` });
  }
  await conversation(alice.page, bob.name).getByTestId("unread").filter({ hasText: "40" }).waitFor();
  await conversation(alice.page, bob.name).click();
  const first = alice.page.getByTestId("messages").locator(".text", { hasText: /^unread 1$/ });
  await first.waitFor();
  const list = await alice.page.getByTestId("messages").boundingBox();
  const box = await first.boundingBox();
  assert.ok(box.y >= list.y - 1 && box.y < list.y + list.height, "the first unread message is in view");
  const hint = alice.page.getByRole("button", { name: "New messages ↓" });
  assert.ok(await hint.isHidden());
  await server.call(bob.token, "/message/send", { chatType: "single", to: alice.id, kind: "text", content: { text: "fresh" }, clientMsgId: "fresh" });
  await hint.waitFor();
  await hint.click();
  await hint.waitFor({ state: "hidden" });
  const atEnd = await alice.page.getByTestId("messages").evaluate((l) => l.scrollHeight - l.scrollTop - l.clientHeight < 80);
  assert.ok(atEnd, "the hint scrolled to the newest");
  for (const p of [alice, bob]) await p.context.close();
});

test("a mention is counted apart in the list and marked in the chat, live and after a reload", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const { group } = await server.call(alice.token, "/group/room/add", { name: "Mentions", members: [bob.id] });
  const send = (text, mentions, key) => server.call(bob.token, "/message/send", {
    chatType: "group", to: group.id, kind: "text", content: { text, mentions }, clientMsgId: key,
  });
  await send("for alice", [alice.id], "m1");
  await send("for no one", [], "m2");
  const item = conversation(alice.page, "Mentions");
  await item.getByTestId("unread").filter({ hasText: "2" }).waitFor();
  await item.getByTestId("mention-badge").filter({ hasText: "@1" }).waitFor();
  await alice.page.reload();
  await item.getByTestId("mention-badge").filter({ hasText: "@1" }).waitFor();
  await item.click();
  await bubble(alice.page, "for alice").filter({ hasText: "mentions you" }).waitFor();
  assert.equal(await bubble(alice.page, "for no one").filter({ hasText: "mentions you" }).count(), 0);
  await item.getByTestId("mention-badge").waitFor({ state: "detached" });
  for (const p of [alice, bob]) await p.context.close();
});
