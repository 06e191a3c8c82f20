// Relay mode (docs/socketio.md, "Relay mode"): the Socket.IO "Get started" chat client, unchanged,
// against a server started with `--relay --allow-guests` (crates/natter-server/tests/socketio.rs
// runs this file on such a server, then restarts it and checks that what was said here is
// still in `history`). NATTER_RELAY_MARK prefixes the messages that check looks for.

import assert from "node:assert/strict";
import { test } from "node:test";
import { io } from "socket.io-client";
import { Inbox, native, register, unique, URL, WAIT } from "./helpers.mjs";

const MARK = process.env.NATTER_RELAY_MARK || "relay";

/**
 * The tutorial's client (https://socket.io/docs/v4/tutorial/step-3 and on), as written there:
 * `const socket = io()`, `socket.emit('chat message', input.value)`,
 * `socket.on('chat message', (msg) => { ...append msg... })`. Only the URL is given, as a
 * page served from elsewhere would.
 */
function tutorialClient() {
  const messages = [];
  const socket = io(URL);
  socket.on("chat message", (msg) => {
    messages.push(msg);
  });
  const send = (text) => socket.emit("chat message", text);
  return { socket, messages, send };
}

/** Resolves once `messages` holds `count` items (or fails after WAIT). */
function until(messages, count) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      if (messages.length >= count) return resolve(messages.slice());
      if (Date.now() - started > WAIT) {
        return reject(new Error(`${messages.length} of ${count} messages: ${JSON.stringify(messages)}`));
      }
      setTimeout(check, 10);
    };
    check();
  });
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}

test("the tutorial chat, unchanged: every client gets every message, in one order, stored", async () => {
  const { token } = await register("watch");
  const watcher = await native(token);
  const clients = [tutorialClient(), tutorialClient(), tutorialClient()];
  try {
    // `connect` comes once the guest is signed in and in the room.
    await Promise.all(clients.map((c) => connected(c.socket)));
    const PER_CLIENT = 5;
    for (let n = 0; n < PER_CLIENT; n++) {
      for (const [i, c] of clients.entries()) c.send(`${MARK} ${i}.${n}`);
    }
    // Each gets its own messages and the others', all in one order.
    const total = clients.length * PER_CLIENT;
    const seen = await Promise.all(clients.map((c) => until(c.messages, total)));
    for (const list of seen) assert.deepEqual(list, seen[0], "one order for all");
    for (const [i] of clients.entries()) {
      const mine = seen[0].filter((m) => m.startsWith(`${MARK} ${i}.`));
      assert.deepEqual(mine, [...Array(PER_CLIENT).keys()].map((n) => `${MARK} ${i}.${n}`), "sender order kept");
    }
    // Stored: a native client in general saw them as messages from guests, in the same order.
    const general = watcher.welcome.rooms.find((r) => r.name === "general").id;
    const page = await watcher.ok("history", { room: general, limit: 100 });
    const stored = page.messages.filter((m) => m.body.startsWith(`${MARK} `));
    assert.deepEqual(stored.map((m) => m.body), seen[0]);
    assert.ok(stored.every((m) => m.sender.guest && m.sender.name.startsWith("guest-")));
  } finally {
    for (const c of clients) c.socket.close();
    await watcher.close();
  }
});

test("a native message reaches tutorial clients as `chat message` with its text", async () => {
  const { token } = await register("nat");
  const n = await native(token);
  const c = tutorialClient();
  try {
    await connected(c.socket);
    c.send(`${MARK} ready`);
    await until(c.messages, 1);
    const general = n.welcome.rooms.find((r) => r.name === "general").id;
    await n.ok("message.send", { room: general, body: `${MARK} from native`, client_id: unique("c") });
    const got = await until(c.messages, 2);
    assert.ok(got.includes(`${MARK} from native`), JSON.stringify(got));
  } finally {
    c.socket.close();
    await n.close();
  }
});

test("`join` by room name, and a custom event with an object payload", async () => {
  const room = unique("game");
  const a = io(URL);
  const b = io(URL);
  const inboxA = new Inbox();
  const inboxB = new Inbox();
  a.onAny((name, data) => inboxA.push(name, data));
  b.onAny((name, data) => inboxB.push(name, data));
  const { token } = await register("obs");
  const observer = await native(token);
  try {
    await Promise.all([connected(a), connected(b)]);
    const joinedA = await a.timeout(WAIT).emitWithAck("join", room);
    assert.equal(joinedA.ok, true, JSON.stringify(joinedA));
    // A native client in that room sees normal messages: the JSON text as the body.
    await observer.ok("room.join", { room: joinedA.data.room });
    b.emit("join", room); // no acknowledgement asked: it still joins, in order
    b.emit("ready", room);
    // b's `ready` went to general and the room, so b has joined once a sees it in the room.
    await inboxA.take("ready", (x) => x === room);
    a.emit("move", { x: 1, y: [2, 3], who: "a" });
    assert.deepEqual(await inboxB.take("move"), { x: 1, y: [2, 3], who: "a" });
    assert.deepEqual(await inboxA.take("move"), { x: 1, y: [2, 3], who: "a" }, "echoed to the sender");
    a.emit("score", 42);
    assert.equal(await inboxB.take("score"), 42);
    // b may have been handed the copy in general first (one event goes to every room of its
    // sender): the copy in this room is stored once the observer sees it there.
    const inRoom = (m) => m.room === joinedA.data.room && m.body === "42";
    await observer.inbox.take("message", inRoom);
    const page = await observer.ok("history", { room: joinedA.data.room });
    const bodies = page.messages.map((m) => m.body);
    // The body is the payload's JSON text (object keys in sorted order).
    assert.ok(bodies.includes('{"who":"a","x":1,"y":[2,3]}'), JSON.stringify(bodies));
    assert.ok(bodies.includes("42"), JSON.stringify(bodies));
    // A reserved name is refused, told through `error` (no acknowledgement asked).
    a.emit("close", "x");
    const error = await inboxA.take("error");
    assert.equal(error.error.code, "invalid_request");
  } finally {
    a.close();
    b.close();
    await observer.close();
  }
});

test("a socket with a token still speaks the full protocol", async () => {
  const { token, user } = await register("full");
  const socket = io(URL, { auth: { token }, forceNew: true });
  try {
    const welcome = await new Promise((resolve, reject) => {
      socket.once("auth", resolve);
      socket.once("connect_error", reject);
    });
    assert.deepEqual(welcome.user, user);
    const reply = await socket.timeout(WAIT).emitWithAck("chat message", "hi");
    assert.equal(reply.error.code, "unknown_type");
  } finally {
    socket.close();
  }
});
