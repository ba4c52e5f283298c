// The conversation log in the web client: an edit, a reaction, a reply and a recall, made in
// one browser and seen live in another, and by a third that was closed meanwhile once it is
// opened again. Run by `cargo test` (tests/it/browser.rs), in headless Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";

import { WAIT, browser, bubble, chatWith, conversation, person, say, server } from "./helpers.mjs";

/** The open chat's message whose text is `text`, exactly. */
function message(page, text) {
  return page.getByTestId("message").filter({ has: page.locator(".text", { hasText: new RegExp(`^${text}$`) }) });
}

const DESKTOP = { width: 1100, height: 760 };
const PHONE = { width: 390, height: 800 };

/** Logs `name` in on a page of a fresh browser context: another device of theirs. */
async function device(name, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  await page.goto(server.base);
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill("a long enough password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByTestId("me").waitFor();
  return { context, page };
}

for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) test(`an edit, a reaction, a reply and a recall are seen live by the other, and by a device that was closed (${size})`, async () => {
  const alice = await person("alice", viewport);
  const bob = await person("bob", viewport);
  await chatWith(alice.page, bob.name);
  await say(alice.page, "first draft");
  await say(alice.page, "a slip");
  await conversation(bob.page, alice.name).click();
  await message(bob.page, "a slip").waitFor();
  // Bob's other device has seen it all so far, then is closed.
  const away = await device(bob.name, viewport);
  await conversation(away.page, alice.name).click();
  await message(away.page, "a slip").waitFor();
  await away.page.close();

  // Alice edits her first message.
  await message(alice.page, "first draft").getByRole("button", { name: "Edit" }).click();
  await alice.page.getByTestId("mode").filter({ hasText: "Editing your message" }).waitFor();
  assert.equal(await alice.page.getByLabel("Message").inputValue(), "first draft");
  await alice.page.getByLabel("Message").fill("first, edited");
  await alice.page.getByRole("button", { name: "Send" }).click();
  await message(alice.page, "first, edited").filter({ hasText: "edited ·" }).waitFor();
  await message(bob.page, "first, edited").filter({ hasText: "edited ·" }).waitFor();
  // Either can see what it said before.
  await message(bob.page, "first, edited").getByRole("button", { name: "Edited: show the earlier versions" }).click();
  const history = bob.page.getByRole("dialog", { name: "Edit history" });
  await history.getByRole("listitem").filter({ hasText: "first, edited (now)" }).waitFor();
  assert.match((await history.getByRole("listitem").allTextContents())[0], /^first draft \(until /);
  await history.getByRole("button", { name: "Close" }).click();
  await history.waitFor({ state: "hidden" });

  // Bob reacts to it, and replies to it.
  await message(bob.page, "first, edited").getByRole("button", { name: "👍" }).click();
  await message(alice.page, "first, edited").getByTestId("reaction").filter({ hasText: "👍 1" }).waitFor();
  // More reactions come from the picker.
  await message(bob.page, "first, edited").getByRole("button", { name: "More reactions" }).click();
  await bob.page.getByRole("dialog", { name: "Pick a reaction" }).getByRole("button", { name: "React with 🎉" }).click();
  await message(alice.page, "first, edited").getByTestId("reaction").filter({ hasText: "🎉 1" }).waitFor();
  await message(alice.page, "first, edited").getByRole("button", { name: "Who reacted" }).click();
  const reactions = alice.page.getByRole("dialog", { name: "Reactions" });
  await reactions.getByRole("listitem").filter({ hasText: `👍 ${bob.name}` }).waitFor();
  await reactions.getByRole("listitem").filter({ hasText: `🎉 ${bob.name}` }).waitFor();
  await reactions.getByRole("button", { name: "Close" }).click();
  await message(bob.page, "first, edited").getByRole("button", { name: "Reply" }).click();
  await bob.page.getByTestId("mode").filter({ hasText: "Replying to" }).waitFor();
  await say(bob.page, "a reply");
  const reply = message(alice.page, "a reply");
  await reply.getByTestId("quote").filter({ hasText: "first, edited" }).waitFor();

  // Alice recalls her slip.
  await message(alice.page, "a slip").getByRole("button", { name: "Recall" }).click();
  await bob.page.getByTestId("messages").getByText("Message recalled").waitFor();

  // The closed device, opened again, shows all four.
  const back = await away.context.newPage();
  back.setDefaultTimeout(WAIT);
  await back.goto(server.base);
  await back.getByTestId("chat-title").filter({ hasText: alice.name }).waitFor();
  await message(back, "first, edited").filter({ hasText: "edited ·" }).getByTestId("reaction").filter({ hasText: "👍 1" }).waitFor();
  await message(back, "a reply").getByTestId("quote").filter({ hasText: "first, edited" }).waitFor();
  await back.getByTestId("messages").getByText("Message recalled").waitFor();
  assert.equal(await message(back, "a slip").count(), 0);
  for (const c of [alice.context, bob.context, away.context]) await c.close();
});

test("in a group, the sender sees how many read each message, and who", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const carol = await person("carol");
  await server.call(alice.token, "/group/room/add", { name: "Readers", members: [bob.id, carol.id] });
  await conversation(alice.page, "Readers").click();
  await say(alice.page, "who reads this");
  const count = message(alice.page, "who reads this").getByTestId("read-count");
  for (const [reader, n] of [[bob, 1], [carol, 2]]) {
    await conversation(reader.page, "Readers").click();
    await message(reader.page, "who reads this").waitFor();
    await count.filter({ hasText: `Read by ${n}` }).waitFor();
  }
  await count.click();
  const list = alice.page.getByTestId("readers-list");
  await list.getByText(bob.name).waitFor();
  await list.getByText(carol.name).waitFor();
  assert.equal(await list.locator("li").count(), 2);
  for (const p of [alice, bob, carol]) await p.context.close();
});

test("the list filters by name as the person types, and the page follows a dark colour scheme", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const carol = await person("carol");
  for (const [from, key] of [[bob, "s1"], [carol, "s2"]]) {
    await server.call(from.token, "/message/send", { chatType: "single", to: alice.id, kind: "text", content: { text: "hi" }, clientMsgId: key });
  }
  await conversation(alice.page, carol.name).waitFor();
  await conversation(alice.page, bob.name).waitFor();
  await alice.page.getByLabel("Search chats").fill(carol.name.slice(0, 5).toUpperCase());
  await conversation(alice.page, bob.name).waitFor({ state: "detached" });
  await conversation(alice.page, carol.name).waitFor();
  await alice.page.getByLabel("Search chats").fill("");
  await conversation(alice.page, bob.name).waitFor();

  const dark = await browser.newContext({ colorScheme: "dark" });
  const page = await dark.newPage();
  await page.goto(server.base);
  assert.equal(await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor), "rgb(15, 17, 21)");
  for (const c of [alice.context, bob.context, carol.context, dark]) await c.close();
});

test("↑ in an empty composer edits one's last message; Esc leaves it", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await chatWith(alice.page, bob.name);
  await say(alice.page, "typo hre");
  const input = alice.page.getByLabel("Message");
  await input.press("ArrowUp");
  await alice.page.getByTestId("mode").filter({ hasText: "Editing your message" }).waitFor();
  assert.equal(await input.inputValue(), "typo hre");
  await input.press("Escape");
  await alice.page.getByTestId("mode").waitFor({ state: "hidden" });
  assert.equal(await input.inputValue(), "");
  await input.press("ArrowUp");
  await input.fill("typo here");
  await input.press("Enter");
  await message(alice.page, "typo here").filter({ hasText: "edited ·" }).waitFor();
  for (const p of [alice, bob]) await p.context.close();
});

test("a message is forwarded to another chat, which shows it as forwarded", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const carol = await person("carol");
  await server.call(carol.token, "/message/send", { chatType: "single", to: alice.id, kind: "text", content: { text: "hello" }, clientMsgId: "c1" });
  await conversation(alice.page, carol.name).waitFor();
  await chatWith(alice.page, bob.name);
  await say(alice.page, "pass it on");
  await message(alice.page, "pass it on").getByRole("button", { name: "Forward" }).click();
  const box = alice.page.getByRole("dialog", { name: "Forward" });
  await box.getByLabel("To").selectOption({ label: carol.name });
  await box.getByRole("button", { name: "Forward" }).click();
  await conversation(carol.page, alice.name).click();
  await message(carol.page, "pass it on").filter({ hasText: "Forwarded" }).waitFor();
  for (const p of [alice, bob, carol]) await p.context.close();
});
