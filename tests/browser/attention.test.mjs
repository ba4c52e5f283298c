// Attention and access: desktop notifications asked for by a visible control, raised with the
// tab hidden and opening their chat when clicked; every control reachable by Tab and named.
import { test } from "node:test";
import assert from "node:assert/strict";

import { SIZES, chatWith, person, say, server } from "./helpers.mjs";

/** Records what the page asks of the Notification API, passing everything on to Chromium's own. */
function spyOnNotifications() {
  window.__asked = 0;
  window.__shown = [];
  const Real = window.Notification;
  const ask = Real.requestPermission.bind(Real);
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__shown.push({ title, body: options?.body, tag: options?.tag, notification: this });
    }
  }
  Recorded.requestPermission = (...args) => { window.__asked += 1; return ask(...args); };
  window.Notification = Recorded;
}

/** What the browser reports of the tab: hidden (another tab in front) or visible again. */
async function tabHidden(page, hidden) {
  await page.evaluate((h) => {
    Object.defineProperty(document, "visibilityState", { value: h ? "hidden" : "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

test("notifications are asked for by a button, never on load; a hidden tab is notified of what isn't muted, and a click opens the chat", async () => {
  const bob = await person("bob");
  const carol = await person("carol");
  const alice = await person("alice");
  const page = alice.page;
  await page.addInitScript(spyOnNotifications);
  await page.reload();
  const button = page.getByRole("button", { name: "Turn on notifications" });
  await button.waitFor();
  assert.equal(await page.evaluate(() => window.__asked), 0, "nothing is asked on load");
  await alice.context.grantPermissions(["notifications"], { origin: server.base });
  await button.click();
  await button.waitFor({ state: "hidden" });
  assert.equal(await page.evaluate(() => window.__asked), 1);

  await chatWith(bob.page, alice.name);
  await chatWith(carol.page, alice.name);
  await say(carol.page, "first from carol");
  const quiet = `s:${[alice.id, carol.id].sort((a, b) => a - b).join(":")}`;
  await page.getByTestId("conversation").filter({ hasText: carol.name }).waitFor();
  await server.call(alice.token, "/conversation/update", { conversationId: quiet, muted: true });
  await tabHidden(page, true);
  await say(carol.page, "muted, so silent");
  await say(bob.page, "are you there?");
  const shown = await page.waitForFunction(() => window.__shown.length > 0 && window.__shown.map((n) => [n.title, n.body]));
  assert.deepEqual(await shown.jsonValue(), [[bob.name, "are you there?"]]);
  // Visible, nothing is raised.
  await tabHidden(page, false);
  await say(bob.page, "never mind");
  await page.getByTestId("conversation").filter({ hasText: "never mind" }).waitFor();
  assert.equal(await page.evaluate(() => window.__shown.length), 1);

  await page.evaluate(() => window.__shown[0].notification.dispatchEvent(new Event("click")));
  await page.getByTestId("chat-title").filter({ hasText: bob.name }).waitFor();
  for (const p of [alice, bob, carol]) await p.context.close();
});

/** The controls Chromium's accessibility tree finds without a name. */
async function unnamed(page) {
  const cdp = await page.context().newCDPSession(page);
  const { nodes } = await cdp.send("Accessibility.getFullAXTree");
  const controls = new Set(["button", "textbox", "link", "combobox", "checkbox", "listbox", "searchbox", "progressbar", "slider", "option"]);
  return nodes
    .filter((n) => !n.ignored && controls.has(n.role?.value) && !String(n.name?.value ?? "").trim())
    .map((n) => n.role.value);
}

for (const [size, viewport] of SIZES) test(`every control on the page is reachable by Tab and has an accessible name; Esc closes a dialog (${size})`, async () => {
  const alice = await person("alice", viewport);
  const bob = await person("bob");
  await chatWith(alice.page, bob.name);
  await say(alice.page, "one for the tools");
  await bob.page.getByTestId("conversation").filter({ hasText: alice.name }).click();
  await say(bob.page, "warm-up");
  const page = alice.page;
  await page.getByTestId("message").filter({ hasText: "one for the tools" }).getByRole("button", { name: "👍" }).click();
  await page.getByTestId("reaction").waitFor();
  assert.deepEqual(await unnamed(page), [], "controls without a name");

  // Every visible control, in the order Tab should reach them.
  const count = await page.evaluate(() => {
    const all = [...document.querySelectorAll("button, input, textarea, select, a[href], [tabindex]")];
    const shown = all.filter((el) => el.tabIndex >= 0 && !el.disabled && !el.closest("dialog:not([open])") && el.getClientRects().length > 0
      && getComputedStyle(el).visibility !== "hidden");
    shown.forEach((el, i) => { el.dataset.reach = String(i); });
    return shown.length;
  });
  assert.ok(count > 15, `found ${count} controls`);
  const reached = new Set();
  await page.evaluate(() => document.activeElement?.blur());
  for (let i = 0; i < count + 10 && reached.size < count; i++) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate(() => document.activeElement?.dataset?.reach);
    if (at !== undefined) reached.add(at);
  }
  const missed = await page.evaluate((got) => [...document.querySelectorAll("[data-reach]")]
    .filter((el) => !got.includes(el.dataset.reach)).map((el) => el.outerHTML.slice(0, 80)), [...reached]);
  assert.deepEqual(missed, [], "controls Tab never reaches");

  // Attaching is a control of its own, just before the message box.
  await page.getByRole("textbox", { name: "Message" }).focus();
  await page.keyboard.press("Shift+Tab");
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute("aria-label")), "Attach a file");

  // On a phone the list (and its New chat) is behind Back.
  if (await page.getByRole("button", { name: "Back" }).isVisible()) await page.getByRole("button", { name: "Back" }).click();
  await page.getByRole("button", { name: "New chat" }).click();
  const box = page.getByRole("dialog");
  await box.waitFor();
  await page.keyboard.press("Escape");
  await box.waitFor({ state: "hidden" });
  for (const p of [alice, bob]) await p.context.close();
});
