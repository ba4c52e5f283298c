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
