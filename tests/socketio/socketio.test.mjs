// Natter over Socket.IO with the official socket.io-client (docs/socketio.md): handshake auth,
// requests with acknowledgements, events, both Engine.IO transports, resume, and interplay
// with native /ws clients in the same rooms.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import { io } from "socket.io-client";
import {
  applyStream, disconnected, historyView, native, newRoom, refusal, register, send, sio, STREAM_EVENTS, unique, URL, WAIT,
} from "./helpers.mjs";

test("connects with a good token and gets the auth reply as the `auth` event", async () => {
  const { token, user } = await register("ana");
  const c = await sio(token);
  try {
    assert.deepEqual(c.welcome.user, user);
    assert.ok(c.welcome.rooms.some((r) => r.name === "general" && r.joined));
    assert.ok(c.welcome.online.some((u) => u.id === user.id));
    assert.deepEqual(c.welcome.limits, { max_message_chars: 4000, max_frame_bytes: 65536, rate_per_sec: 20, rate_burst: 40 });
  } finally {
    c.socket.close();
  }
});

test("over WebSocket, the longest message (16 KB of UTF-8, many read chunks) arrives intact", async () => {
  const { token } = await register("long");
  const c = await sio(token, { transports: ["websocket"] });
  try {
    const room = await newRoom(c);
    const body = "\u{1F600}".repeat(3999) + "!"; // 4000 characters, 15,997 bytes
    const reply = await c.request("message.send", { room: room.id, body, client_id: unique("long") });
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    assert.equal(reply.data.message.body, body);
    assert.equal((await c.inbox.take("message", (m) => m.room === room.id)).body, body);
  } finally {
    c.socket.close();
  }
});

test("refuses a bad token with a connect_error the client can read", async () => {
  for (const auth of [{ token: "not-a-token" }, {}, undefined]) {
    const err = await refusal(auth);
    assert.match(err.message, /^unauthenticated: /, `auth ${JSON.stringify(auth)}`);
  }
  const err = await refusal({ token: 42 });
  assert.match(err.message, /^invalid_request: /);
  // A revoked token is refused too.
  const { token } = await register("gone");
  assert.equal((await api_logout(token)).status, 204);
  assert.match((await refusal({ token })).message, /^unauthenticated: invalid or revoked token/);
});

async function api_logout(token) {
  return fetch(URL + "/api/logout", { method: "POST", headers: { authorization: `Bearer ${token}` } });
}

test("sends with an acknowledgement: the native ok shape, the event, retries stored once", async () => {
  const { token } = await register("ana");
  const c = await sio(token);
  try {
    const room = await newRoom(c);
    const sent = { room: room.id, body: "hello", client_id: unique("c") };
    const reply = await c.request("message.send", sent);
    assert.equal(reply.ok, true);
    assert.equal(reply.data.duplicate, false);
    const message = reply.data.message;
    assert.equal(message.body, "hello");
    assert.equal(message.seq, 1);
    assert.deepEqual(await c.inbox.take("message", (m) => m.room === room.id), message);

    const again = await c.request("message.send", sent);
    assert.deepEqual(again, { ok: true, data: { message, duplicate: true } });
    await c.inbox.none("message", (m) => m.room === room.id);

    const history = await c.ok("history", { room: room.id });
    assert.deepEqual(history, { messages: [message], has_more: false });
  } finally {
    c.socket.close();
  }
});

for (const transports of [["websocket"], ["polling"]]) {
  test(`pipelined sends: stored in emit order, acks in order with their ids (${transports})`, async () => {
    // Thirty sends emitted back to back (none waits for its acknowledgement), a retry of the
    // fifth among them and a request that must wait for those before it (`room.members`);
    // within the rate limit's burst (40).
    const { token } = await register("pip");
    const c = await sio(token, { transports });
    try {
      const room = await newRoom(c);
      const sends = Array.from({ length: 30 }, (_, i) => ({
        room: room.id, body: `pipelined ${i}`, client_id: unique(`p${i}`),
      }));
      const order = [];
      const track = (what, promise) => promise.then((reply) => { order.push(what); return reply; });
      const pending = sends.slice(0, 15).map((m, i) => track(i, c.request("message.send", m)));
      pending.push(track("members", c.request("room.members", { room: room.id })));
      pending.push(track("retry", c.request("message.send", sends[4])));
      for (const [i, m] of sends.slice(15).entries()) pending.push(track(15 + i, c.request("message.send", m)));
      const replies = await Promise.all(pending);
      assert.deepEqual(order, [...Array(15).keys(), "members", "retry", ...Array.from({ length: 15 }, (_, i) => 15 + i)],
        "acknowledgements come back in the order the requests were emitted");
      const sent = [...replies.slice(0, 15), ...replies.slice(17)];
      for (const [i, reply] of sent.entries()) {
        assert.equal(reply.ok, true, JSON.stringify(reply));
        assert.equal(reply.data.duplicate, false);
        assert.equal(reply.data.message.body, `pipelined ${i}`, "each ack answers its own request");
        assert.equal(reply.data.message.seq, i + 1, "stored in the order they were emitted");
      }
      assert.equal(replies[15].ok, true);
      assert.deepEqual(replies[16], { ok: true, data: { message: replies[4].data.message, duplicate: true } });
      const history = await c.ok("history", { room: room.id, limit: 100 });
      assert.deepEqual(history.messages.map((m) => m.body), sends.map((m) => m.body));
    } finally {
      c.socket.close();
    }
  });
}

test("joins and leaves a room: replies and member events on both sides", async () => {
  const a = await sio((await register("ana")).token);
  const b = await sio((await register("bob")).token);
  try {
    const room = await newRoom(a);
    await a.inbox.take("member_joined", (e) => e.room === room.id && e.user.id === a.user.id);
    const joined = await b.ok("room.join", { room: room.id });
    assert.equal(joined.room.joined, true);
    assert.equal(joined.room.member_count, 2);
    for (const c of [a, b]) {
      const e = await c.inbox.take("member_joined", (e) => e.room === room.id && e.user.id === b.user.id);
      assert.equal(e.member_count, 2);
    }
    const members = await a.ok("room.members", { room: room.id });
    assert.deepEqual(members.members.map((m) => m.user.id).sort(), [a.user.id, b.user.id].sort());
    assert.deepEqual(await b.ok("room.leave", { room: room.id }), {});
    for (const c of [a, b]) {
      await c.inbox.take("member_left", (e) => e.room === room.id && e.user.id === b.user.id);
    }
    const notMember = await b.request("message.send", { room: room.id, body: "hi", client_id: "x" });
    assert.deepEqual(notMember.error.code, "not_member");
  } finally {
    a.socket.close();
    b.socket.close();
  }
});

test("read markers: room.read is answered, room_read reaches every connection of the user", async () => {
  const { token } = await register("reader");
  const s = await sio(token);
  const n = await native(token);
  let later;
  try {
    const room = await newRoom(s);
    await send(s, room.id, "one");
    await send(s, room.id, "two");
    const marker = { room: room.id, read_seq: 2, unread: 0, mentions: 0 };
    assert.deepEqual(await s.ok("room.read", { room: room.id, seq: 2 }), marker);
    for (const c of [s, n]) {
      const event = await c.inbox.take("room_read", (e) => e.room === room.id);
      assert.deepEqual(event, marker);
    }
    assert.deepEqual(await s.ok("room.read", { room: room.id, seq: 1 }), marker);
    later = await sio(token);
    assert.equal(later.welcome.read[String(room.id)], 2, "a new socket finds the marker in its auth event");
    const unknown = await s.request("room.read", { room: 999999, seq: 1 });
    assert.equal(unknown.error.code, "unknown_room");
  } finally {
    s.socket.close();
    later?.socket.close();
    await n.close();
  }
});

test("receives what a native /ws client sends, and the other way round", async () => {
  const s = await sio((await register("sio")).token);
  const n = await native((await register("nat")).token);
  try {
    const room = await newRoom(s);
    await n.ok("room.join", { room: room.id });

    const fromNative = await send(n, room.id, "from native");
    const atSio = await s.inbox.take("message", (m) => m.room === room.id);
    assert.deepEqual(atSio, fromNative.message);
    assert.deepEqual(await n.inbox.take("message", (m) => m.room === room.id), fromNative.message);

    const fromSio = await send(s, room.id, "from socket.io");
    assert.deepEqual(await n.inbox.take("message", (m) => m.room === room.id), fromSio.message);
    assert.deepEqual(await s.inbox.take("message", (m) => m.room === room.id), fromSio.message);
    assert.equal(fromSio.message.seq, fromNative.message.seq + 1);
  } finally {
    s.socket.close();
    await n.close();
  }
});

test("works over HTTP long-polling alone", async () => {
  const { token } = await register("poll");
  const s = await sio(token, { transports: ["polling"] });
  const n = await native((await register("nat")).token);
  try {
    assert.equal(s.socket.io.engine.transport.name, "polling");
    const room = await newRoom(s);
    await n.ok("room.join", { room: room.id });
    const mine = await send(s, room.id, "polled");
    assert.deepEqual(await n.inbox.take("message", (m) => m.room === room.id), mine.message);
    assert.deepEqual(await s.inbox.take("message", (m) => m.room === room.id), mine.message);
    const theirs = await send(n, room.id, "to the poller");
    assert.deepEqual(await s.inbox.take("message", (m) => m.room === room.id), theirs.message);
    await s.inbox.take("member_joined", (e) => e.room === room.id && e.user.id === n.user.id);
    assert.equal(s.socket.io.engine.transport.name, "polling", "never upgraded");
  } finally {
    s.socket.close();
    await n.close();
  }
});

test("over long-polling, a reply larger than max_frame_bytes still arrives", async () => {
  const s = await sio((await register("big")).token, { transports: ["polling"] });
  try {
    const room = await newRoom(s);
    for (let i = 0; i < 20; i++) await send(s, room.id, `${i}`.padEnd(4000, "x"));
    const { messages } = await s.ok("history", { room: room.id, limit: 100 });
    assert.equal(messages.length, 20);
    assert.ok(JSON.stringify(messages).length > 65536);
    assert.deepEqual(await s.request("ping"), { ok: true, data: {} });
  } finally {
    s.socket.close();
  }
});

test("upgrades from polling to WebSocket without losing anything", async () => {
  const { token } = await register("upg");
  const s = await sio(token, { transports: ["polling", "websocket"], upgrade: true });
  const n = await native((await register("nat")).token);
  try {
    const room = await newRoom(s);
    await n.ok("room.join", { room: room.id });
    const sent = [];
    for (let i = 0; i < 20; i++) sent.push((await send(n, room.id, `m${i}`)).message.seq);
    if (s.socket.io.engine.transport.name !== "websocket") {
      await new Promise((resolve) => s.socket.io.engine.once("upgrade", resolve));
    }
    for (let i = 20; i < 25; i++) sent.push((await send(n, room.id, `m${i}`)).message.seq);
    const got = [];
    for (let i = 0; i < sent.length; i++) got.push((await s.inbox.take("message", (m) => m.room === room.id)).seq);
    assert.deepEqual(got, sent);
    assert.equal(s.socket.io.engine.transport.name, "websocket");
  } finally {
    s.socket.close();
    await n.close();
  }
});

/** A Socket.IO client that resumes: `auth` is a function, evaluated at every (re)connect. */
async function resumingClient(token, options = {}) {
  const lastSeq = {};
  const c = await sio(token, options, (cb) => cb({ token, resume: lastSeq }));
  c.socket.on("message", (m) => {
    lastSeq[m.room] = m.seq;
  });
  return { ...c, lastSeq };
}

for (const transports of [["websocket"], ["polling"]]) {
  test(`disconnects and reconnects with resume: no gap, no duplicate (${transports})`, async () => {
    const { token } = await register("res");
    const s = await resumingClient(token, { transports });
    const n = await native((await register("nat")).token);
    try {
      const room = await newRoom(s);
      await n.ok("room.join", { room: room.id });
      const first = await send(n, room.id, "before");
      await s.inbox.take("message", (m) => m.seq === first.message.seq && m.room === room.id);

      const gone = disconnected(s.socket);
      s.socket.disconnect();
      assert.equal(await gone, "io client disconnect");
      const missed = [];
      for (let i = 0; i < 5; i++) missed.push((await send(n, room.id, `while away ${i}`)).message);

      s.socket.connect();
      await s.inbox.take("auth");
      const after = await send(n, room.id, "after");
      const got = [];
      for (let i = 0; i < 6; i++) got.push(await s.inbox.take("message", (m) => m.room === room.id));
      assert.deepEqual(got, [...missed, after.message]);
      await s.inbox.none("message", (m) => m.room === room.id);
      assert.equal(s.lastSeq[room.id], after.message.seq);
    } finally {
      s.socket.close();
      await n.close();
    }
  });
}

for (const transports of [["websocket"], ["polling"]]) {
  test(`edits, deletes, reactions and thread replies resume into the online state (${transports})`, async () => {
    const { token } = await register("chg");
    const lastSeq = {};
    const s = await sio(token, { transports }, (cb) => cb({ token, resume: lastSeq }));
    const n = await native((await register("nat")).token);
    const offline = new Map();
    const online = new Map();
    /** Applies `client`'s stream events of `room` to `view` until `seq` is reached. */
    const follow = async (client, room, view, seq) => {
      let at = -1;
      while (at < seq) {
        const { name, data } = await client.inbox.takeAny(STREAM_EVENTS, (d) => d.room === room);
        applyStream(view, name, data);
        at = data.seq;
        if (client === s) lastSeq[room] = data.seq;
      }
    };
    const change = async (kind, data) => {
      const reply = await n.ok(kind, { ...data, client_id: unique("x") });
      assert.ok(reply.entry, `${kind} stored`);
      return reply.entry;
    };
    try {
      const room = await newRoom(s);
      await n.ok("room.join", { room: room.id });
      const zero = await send(n, room.id, "zero");
      await follow(s, room.id, offline, zero.message.seq);
      await follow(n, room.id, online, zero.message.seq);

      const gone = disconnected(s.socket);
      s.socket.disconnect();
      assert.equal(await gone, "io client disconnect");
      const m1 = (await send(n, room.id, "helo")).message;
      await change("message.edit", { room: room.id, seq: m1.seq, body: "hello" });
      await change("reaction.add", { room: room.id, seq: m1.seq, emoji: "👍" });
      await change("reaction.add", { room: room.id, seq: zero.message.seq, emoji: "🎉" });
      const reply = await n.ok("message.send", { room: room.id, body: "threaded", client_id: unique("c"), thread: m1.seq });
      assert.equal(reply.message.replies, 1);
      const m2 = (await send(n, room.id, "gone soon")).message;
      await change("message.delete", { room: room.id, seq: m2.seq });
      const last = await change("message.edit", { room: room.id, seq: zero.message.seq, body: "zero, edited" });
      await follow(n, room.id, online, last.seq);

      s.socket.connect();
      await s.inbox.take("auth");
      await follow(s, room.id, offline, last.seq);
      const sorted = (view) => [...view].sort((a, b) => a[0] - b[0]);
      assert.deepEqual(sorted(offline), sorted(online), "resumed over Socket.IO = stayed online");
      const page = await s.ok("history", { room: room.id });
      const thread = await s.ok("history", { room: room.id, thread: m1.seq });
      const current = historyView([...page.messages, ...thread.messages]);
      assert.deepEqual(sorted(current), sorted(online), "and both are history's current state");
      assert.equal(online.get(m1.seq).body, "hello");
      assert.equal(online.get(m1.seq).replies, 1);
      assert.equal(online.get(m2.seq).deleted, true);
    } finally {
      s.socket.close();
      await n.close();
    }
  });
}

for (const transports of [["websocket"], ["polling"]]) {
  test(`room events resume in order; a kick removes the socket from the room (${transports})`, async () => {
    const { token, user } = await register("mod");
    const lastSeq = {};
    const s = await sio(token, { transports }, (cb) => cb({ token, resume: lastSeq }));
    const owner = await native((await register("own")).token);
    const bob = await register("bob");
    const events = ["message", "room_event"];
    /** The room's entries `client` receives, as (seq, op), until `seq`. */
    const follow = async (client, room, seq) => {
      const got = [];
      let at = -1;
      while (at < seq) {
        const { data } = await client.inbox.takeAny(events, (d) => d.room === room);
        got.push([data.seq, data.change?.op ?? "message"]);
        at = data.seq;
        if (client === s) lastSeq[room] = data.seq;
      }
      return got;
    };
    const roomEvent = async (kind, data) => {
      const reply = await owner.ok(kind, { ...data, client_id: unique("m") });
      assert.ok(reply.entry, `${kind} stored`);
      return reply.entry;
    };
    try {
      const room = await newRoom(owner);
      const me = (await s.ok("room.join", { room: room.id })).room;
      assert.equal(me.role, "member");
      const b = await native(bob.token);
      await b.ok("room.join", { room: room.id });
      const zero = await send(owner, room.id, "zero");
      await follow(s, room.id, zero.message.seq);
      await follow(owner, room.id, zero.message.seq);

      const gone = disconnected(s.socket);
      s.socket.disconnect();
      assert.equal(await gone, "io client disconnect");
      await roomEvent("room.update", { room: room.id, topic: "Friday" });
      // Joins and leaves are room events too: bob leaves and comes back while s is away.
      await b.ok("room.leave", { room: room.id });
      await b.ok("room.join", { room: room.id });
      await roomEvent("room.role", { room: room.id, user: bob.user.name, role: "moderator" });
      const last = await roomEvent("room.mute", { room: room.id, user: bob.user.name, minutes: 5 });
      const online = await follow(owner, room.id, last.seq);

      s.socket.connect();
      await s.inbox.take("auth");
      const resumed = await follow(s, room.id, last.seq);
      assert.deepEqual(resumed, online, "resumed over Socket.IO = stayed online");
      assert.deepEqual(online.map(([, op]) => op), ["settings", "leave", "join", "role", "mute"]);
      // A reload reads the same entries back: `history` with `events`, over Socket.IO.
      const page = await s.ok("history", { room: room.id, after: zero.message.seq, events: true });
      assert.deepEqual(page.messages.map((m) => [m.seq, m.change?.op ?? "message"]), online);
      assert.ok(page.messages.every((m) => m.body === ""), "a room event's body is empty");
      const plain = await s.ok("history", { room: room.id, after: zero.message.seq });
      assert.deepEqual(plain.messages, [], "without `events`, no room events");

      const kick = await roomEvent("room.kick", { room: room.id, user: user.name });
      const seen = await s.inbox.take("room_event", (d) => d.room === room.id && d.change.op === "kick");
      assert.equal(seen.seq, kick.seq);
      assert.deepEqual(await s.inbox.take("room_removed"), { room: room.id });
      const refused = await s.socket.emitWithAck("message.send", { room: room.id, body: "hi", client_id: unique("c") });
      assert.equal(refused.error.code, "not_member");
      await b.close();
    } finally {
      s.socket.close();
      await owner.close();
    }
  });
}

test("a dropped transport reconnects by itself and resumes", async () => {
  const { token } = await register("drop");
  const s = await resumingClient(token, { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
  const n = await native((await register("nat")).token);
  try {
    const room = await newRoom(s);
    await n.ok("room.join", { room: room.id });
    const first = await send(n, room.id, "before");
    await s.inbox.take("message", (m) => m.seq === first.message.seq && m.room === room.id);
    const gone = disconnected(s.socket);
    s.socket.io.engine.close(); // the Engine.IO connection ends under the socket
    assert.equal(await gone, "forced close");
    const missed = [];
    for (let i = 0; i < 3; i++) missed.push((await send(n, room.id, `gap ${i}`)).message);
    await s.inbox.take("auth", () => true, WAIT * 2);
    const got = [];
    for (let i = 0; i < 3; i++) got.push(await s.inbox.take("message", (m) => m.room === room.id));
    assert.deepEqual(got, missed);
    await s.inbox.none("message", (m) => m.room === room.id);
  } finally {
    s.socket.close();
    await n.close();
  }
});

test("bad payloads get error acknowledgements, and the socket carries on", async () => {
  const c = await sio((await register("bad")).token);
  try {
    const room = await newRoom(c);
    const cases = [
      [["message.send", "not an object"], "invalid_request"],
      [["message.send", { room: room.id }], "invalid_request"],
      [["message.send", { room: "one", body: "x", client_id: "y" }], "invalid_request"],
      [["message.send", { room: room.id, body: "   ", client_id: "y" }], "empty_message"],
      [["message.send", { room: room.id, body: "x".repeat(4001), client_id: "y" }], "message_too_long"],
      [["message.send", { room: 999999, body: "x", client_id: "y" }], "unknown_room"],
      [["history", { room: room.id, limit: 1000 }], "invalid_request"],
      [["no.such.request", {}], "unknown_type"],
      // An unknown name whatever its argument (a tutorial client's emit, without relay mode).
      [["chat message", "hello"], "unknown_type"],
      [["chat message", 5], "unknown_type"],
      [["ping", {}, {}], "invalid_request"],
      [["auth", { token: "x" }], "already_authenticated"],
      [["message.send", { room: room.id, body: Buffer.from("bin"), client_id: "y" }], "binary_unsupported"],
    ];
    for (const [args, code] of cases) {
      const reply = await c.request(...args);
      assert.equal(reply.ok, false, JSON.stringify(args).slice(0, 80));
      assert.equal(reply.error.code, code, JSON.stringify(args).slice(0, 80));
      assert.equal(typeof reply.error.message, "string");
    }
    assert.deepEqual(await c.request("ping"), { ok: true, data: {} });
    assert.equal(c.socket.connected, true);
  } finally {
    c.socket.close();
  }
});

test("a request without an acknowledgement still runs; its failure is an `error` event", async () => {
  const c = await sio((await register("noack")).token);
  try {
    const room = await newRoom(c);
    c.socket.emit("message.send", { room: room.id, body: "fire and forget", client_id: unique("c") });
    const m = await c.inbox.take("message", (m) => m.room === room.id);
    assert.equal(m.body, "fire and forget");
    c.socket.emit("message.send", { room: room.id, body: "" });
    const e = await c.inbox.take("error");
    assert.equal(e.event, "message.send");
    assert.equal(e.error.code, "invalid_request");
  } finally {
    c.socket.close();
  }
});

test("the rate limit is the native one", async () => {
  const c = await sio((await register("rate")).token);
  try {
    const replies = await Promise.all(Array.from({ length: 60 }, () => c.request("ping")));
    const limited = replies.filter((r) => !r.ok);
    assert.ok(replies.slice(0, 40).every((r) => r.ok), "the burst of 40 passes");
    assert.ok(limited.length > 0, "beyond the burst is limited");
    for (const r of limited) {
      assert.equal(r.error.code, "rate_limited");
      assert.ok(r.error.retry_after_ms > 0);
    }
    assert.equal(c.socket.connected, true);
  } finally {
    c.socket.close();
  }
});

test("presence, typing, join and leave cross between native and Socket.IO clients", async () => {
  const n = await native((await register("nat")).token);
  const s = await sio((await register("sio")).token);
  try {
    // Presence: the Socket.IO user came online; the native one is in the welcome.
    await n.inbox.take("presence", (p) => p.user.id === s.user.id && p.online === true);
    assert.ok(s.welcome.online.some((u) => u.id === n.user.id));

    // Join: each sees the other join.
    const room = await newRoom(n);
    await s.ok("room.join", { room: room.id });
    await n.inbox.take("member_joined", (e) => e.room === room.id && e.user.id === s.user.id);
    const nat2 = await newRoom(s);
    await n.ok("room.join", { room: nat2.id });
    await s.inbox.take("member_joined", (e) => e.room === nat2.id && e.user.id === n.user.id);

    // Typing, both ways; never echoed to the typist.
    assert.deepEqual(await s.ok("typing", { room: room.id, active: true }), {});
    const typing = await n.inbox.take("typing", (t) => t.room === room.id);
    assert.deepEqual(typing, { room: room.id, user: s.user, active: true });
    await n.ok("typing", { room: room.id, active: true });
    assert.deepEqual(await s.inbox.take("typing", (t) => t.room === room.id), { room: room.id, user: n.user, active: true });
    await s.inbox.none("typing", (t) => t.user.id === s.user.id);
    await s.ok("typing", { room: room.id, active: false });
    await n.inbox.take("typing", (t) => t.room === room.id && t.active === false);

    // Leave: the native client sees the Socket.IO user go.
    await s.ok("room.leave", { room: room.id });
    await n.inbox.take("member_left", (e) => e.room === room.id && e.user.id === s.user.id);
    await n.ok("room.leave", { room: nat2.id });
    await s.inbox.take("member_left", (e) => e.room === nat2.id && e.user.id === n.user.id);

    // Presence: the Socket.IO user goes offline when its socket closes.
    s.socket.close();
    await n.inbox.take("presence", (p) => p.user.id === s.user.id && p.online === false);
  } finally {
    s.socket.close();
    await n.close();
  }
});

test("presence: false is honoured in the handshake", async () => {
  const { token } = await register("quiet");
  const q = await sio(token, {}, { token, presence: false });
  try {
    const other = await sio((await register("loud")).token);
    other.socket.close();
    await q.inbox.none("presence", () => true, 500);
  } finally {
    q.socket.close();
  }
});

test("a direct message opened natively reaches the Socket.IO user as room_added", async () => {
  const s = await sio((await register("dmsio")).token);
  const n = await native((await register("dmnat")).token);
  try {
    const { room } = await n.ok("dm.open", { user: s.user.name });
    const added = await s.inbox.take("room_added", (e) => e.room.id === room.id);
    assert.equal(added.room.kind, "dm");
    assert.deepEqual(added.room.peer, n.user);
    const m = await send(n, room.id, "psst");
    assert.deepEqual(await s.inbox.take("message", (x) => x.room === room.id), m.message);
  } finally {
    s.socket.close();
    await n.close();
  }
});

test("signing out closes the socket with a `close` event (4003)", async () => {
  const { token } = await register("out");
  const c = await sio(token);
  const gone = disconnected(c.socket);
  await api_logout(token);
  assert.deepEqual(await c.inbox.take("close"), { code: 4003, reason: "session revoked" });
  assert.equal(await gone, "io server disconnect");
});

test("the documented example runs", async () => {
  const { token } = await register("example");
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, ["example.mjs"], {
    env: { ...process.env, NATTER_URL: URL, NATTER_TOKEN: token },
    timeout: WAIT * 2,
  });
  assert.match(stdout, /signed in as example/);
  assert.match(stdout, /stored as seq \d+/);
});

test("only the main namespace exists", async () => {
  const { token } = await register("ns");
  const socket = io(URL + "/admin", { auth: { token }, reconnection: false, forceNew: true });
  const err = await new Promise((resolve) => socket.once("connect_error", resolve));
  socket.close();
  assert.equal(err.message, "Invalid namespace");
});
