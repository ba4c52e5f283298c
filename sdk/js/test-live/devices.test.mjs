// Two devices of one user (a phone on JSON, a laptop on MessagePack) and a peer, against the
// real server: sends, edits, reactions, recalls, deletes for everyone and reads, in a one-to-one
// conversation and a group, while the server is killed mid-stream and restarted on the same port
// and data dir, with more made while it is down. Every request made is acknowledged; the two
// devices end holding the same thing, which is what the server's history says, and each saw
// every message once.
import { test } from "node:test";
import assert from "node:assert/strict";

import { createText, singleConversation } from "../chatgate.js";
import { LiveServer, PASSWORD, device, holds, next, sameAs, settle } from "./live.mjs";

test("two devices of a user and a peer end alike, and as the server says, through a server killed mid-stream", async (t) => {
  const server = await LiveServer.start();
  const started = Date.now();
  const phone = device(server, "json");
  const laptop = device(server, "msgpack");
  const peer = device(server, "json");
  const all = [phone, laptop, peer];
  try {
    const name = `alice${process.pid}`;
    await phone.register(name, PASSWORD);
    await laptop.login(name, PASSWORD);
    await peer.register(`bob${process.pid}`, PASSWORD);
    await Promise.all(all.map((d) => d.connect()));
    // How often each device was told of each message.
    const told = all.map((d) => {
      const counts = new Map();
      d.on("message", (m) => counts.set(m.id, (counts.get(m.id) || 0) + 1));
      return counts;
    });
    const alice = phone.user.id;
    const bob = peer.user.id;
    const group = await peer.createGroup({ name: "Climbing", members: [alice] });
    const S = singleConversation(alice, bob);
    const G = `g:${group.id}`;
    const made = [];
    const make = (promise) => {
      made.push(promise);
      return promise;
    };
    const sends = (d, chatType, to, texts) => Promise.all(texts.map((text) => make(d.send(chatType, to, createText(text)))));

    // Before: some of everything, acknowledged.
    const [b, bg, p, pg, l] = await Promise.all([
      sends(peer, "single", alice, ["b1", "b2", "b3", "b4", "b5", "b6"]),
      sends(peer, "group", group.id, ["bg1", "bg2", "bg3", "bg4"]),
      sends(phone, "single", bob, ["p1", "p2", "p3", "p4"]),
      sends(phone, "group", group.id, ["pg1", "pg2"]),
      sends(laptop, "single", bob, ["l1", "l2", "l3"]),
    ]);
    await Promise.all([
      phone.edit(p[0].id, "p1, edited"), phone.react(b[0].id, "👍"), laptop.react(b[0].id, "🎉"), laptop.react(p[1].id, "❤️"),
      laptop.edit(l[0].id, "l1, edited"), peer.react(p[0].id, "👍"), peer.edit(b[1].id, "b2, edited"), peer.recall(b[2].id),
      peer.deleteForEveryone(bg[0].id), peer.react(pg[0].id, "👀"),
    ].map(make));
    await make(phone.markRead(S, phone.held(S).lastSeq));

    // Mid-stream: the server is killed once the stream is under way, with requests in flight.
    const stream = [
      sends(peer, "single", alice, ["b7", "b8", "b9", "b10", "b11", "b12"]),
      sends(peer, "group", group.id, ["bg5", "bg6", "bg7", "bg8"]),
      sends(phone, "single", bob, ["p5", "p6", "p7", "p8"]),
      sends(laptop, "group", group.id, ["lg1", "lg2", "lg3"]),
      ...[phone.react(bg[1].id, "😀"), phone.unreact(b[0].id, "👍"), phone.edit(p[1].id, "p2, edited"), laptop.recall(l[1].id),
        laptop.deleteForEveryone(l[2].id), laptop.react(b[1].id, "👍"), peer.unreact(pg[0].id, "👀")].map(make),
    ];
    await next(phone, "message", (m) => m.content.text === "b8");
    const away = all.map((d) => next(d, "state", (s) => s === "reconnecting"));
    await server.kill();
    assert.ok(all.some((d) => d.queued > 0), "the kill caught requests unacknowledged");
    await Promise.all(away);

    // While it is down: queued, not failed.
    const down = [
      sends(phone, "single", bob, ["p9, offline", "p10, offline"]),
      make(phone.markRead(G, phone.held(G).lastSeq)),
      make(laptop.react(bg[2].id, "👍")),
      make(laptop.edit(l[0].id, "l1, edited twice")),
      make(laptop.updateConversation(S, { pinned: true })),
      sends(peer, "single", alice, ["b13, offline"]),
      make(peer.react(p[0].id, "❤️")),
      make(peer.deleteForEveryone(b[3].id)),
    ];
    const back = all.map((d) => next(d, "ready"));
    await server.start();
    await Promise.all(back);
    await Promise.all([...stream, ...down]);

    // After: more of it, then every request made is acknowledged.
    const [b14] = await sends(peer, "single", alice, ["b14"]);
    const [b13] = await down[5];
    await Promise.all([peer.recall(b13.id), phone.react(b14.id, "👍"), laptop.markRead(S, laptop.held(S).lastSeq)].map(make));
    await Promise.all(made);

    const truth = {
      alice: { [S]: await server.truth(phone.token, S), [G]: await server.truth(phone.token, G) },
      bob: { [S]: await server.truth(peer.token, S), [G]: await server.truth(peer.token, G) },
    };
    const expected = [[phone, truth.alice], [laptop, truth.alice], [peer, truth.bob]];
    await settle(all, () => expected.every(([d, want]) => sameAs(d, S, want[S]) && sameAs(d, G, want[G])), () => {
      for (const [d, want] of expected) for (const id of [S, G]) assert.deepEqual(holds(d, id), want[id], `${d.format} ${id}`);
    });
    assert.deepEqual(holds(phone, S), holds(laptop, S));
    assert.deepEqual(holds(phone, G), holds(laptop, G));
    for (const id of [S, G]) assert.deepEqual(all.map((d) => d.held(id).pos), Array(3).fill(phone.held(id).pos), `${id}: one position`);
    assert.equal(truth.alice[S].pinned, true, "pinned on the laptop while the server was down");

    // What the scenario covered, so that a change to it cannot quietly make it trivial.
    const statuses = truth.alice[S].messages.map((m) => m.status).concat(truth.alice[G].messages.map((m) => m.status));
    assert.ok(statuses.includes("recalled") && statuses.includes("deleted"), statuses.join(","));
    assert.ok(truth.alice[S].messages.some((m) => m.editedAt && m.reactions.length), "an edited message with reactions");
    assert.equal(truth.alice[S].messages.length, 14 + 10 + 3, "b1-b14, p1-p10, l1-l3, each stored once");
    assert.equal(truth.alice[G].messages.length, 1 + 8 + 2 + 3, "created, bg1-bg8, pg1-pg2, lg1-lg3");
    const ids = [...truth.alice[S].messages, ...truth.alice[G].messages].map((m) => m.id).sort();
    for (const [i, counts] of told.entries()) {
      assert.deepEqual([...counts.keys()].sort(), ids, `${all[i].format} device ${i} was told of every message`);
      assert.ok([...counts.values()].every((n) => n === 1), `device ${i} was told of each message once`);
    }
    t.diagnostic(`scenario took ${Date.now() - started} ms, server restart included`);
  } finally {
    for (const d of all) d.close();
    await server.stop();
  }
});
