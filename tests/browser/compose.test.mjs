// The composer's journeys: an outbox that survives closing the tab, the keyboard, mentions, and
// media (drag and drop, paste, an upload's progress and cancel, video and audio inline).
import { test } from "node:test";
import assert from "node:assert/strict";

import { bubble, chatWith, conversation, person, reopen, say, server, texts } from "./helpers.mjs";

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

test("@ in a group lists its members as they are typed; the one picked is mentioned, and the owner may mention all", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
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
