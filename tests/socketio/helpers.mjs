// Test helpers for the Socket.IO suite: accounts over the HTTP API, Socket.IO clients (the
// official socket.io-client) and native /ws clients (the `ws` package), each with an inbox of
// the events it received. The server's URL comes from NATTER_URL (the Rust harness in
// crates/natter-server/tests/socketio.rs starts a server and sets it).

import assert from "node:assert/strict";
import { io } from "socket.io-client";
import WebSocket from "ws";

export const URL = process.env.NATTER_URL;
if (!URL) throw new Error("set NATTER_URL to a running natter server (http://127.0.0.1:PORT)");

/** How long to wait for anything the server should send. */
export const WAIT = 5000;

let counter = 0;
export function unique(prefix) {
  return `${prefix}${process.pid % 10000}x${Date.now() % 1000000}x${counter++}`;
}

export async function api(path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const resp = await fetch(URL + path, { method: "POST", headers, body: JSON.stringify(body ?? {}) });
  const text = await resp.text();
  return { status: resp.status, body: text ? JSON.parse(text) : null };
}

/** A new account: `{token, user}`. */
export async function register(prefix = "u") {
  const { status, body } = await api("/api/register", { username: unique(prefix), password: "correct horse" });
  assert.equal(status, 201, JSON.stringify(body));
  return body;
}

/** Events received, in order, and waits for the ones a test expects. */
export class Inbox {
  constructor() {
    this.items = [];
    this.waiters = new Set();
  }

  push(name, data) {
    this.items.push({ name, data });
    for (const waiter of this.waiters) waiter();
  }

  #find(name, pred) {
    const names = Array.isArray(name) ? name : [name];
    return this.items.findIndex((e) => names.includes(e.name) && pred(e.data));
  }

  /** The first `name` event (or one of several names) matching `pred`, removed from the inbox. */
  async take(name, pred = () => true, ms = WAIT) {
    return (await this.#takeItem(name, pred, ms)).data;
  }

  /** The first event named one of `names` matching `pred`, removed: `{name, data}`. */
  takeAny(names, pred = () => true, ms = WAIT) {
    return this.#takeItem(names, pred, ms);
  }

  #takeItem(name, pred, ms) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.#find(name, pred);
        if (i < 0) return false;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(this.items.splice(i, 1)[0]);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const seen = this.items.map((e) => e.name).join(", ");
        reject(new Error(`no \`${name}\` event in ${ms} ms (inbox: ${seen})`));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  /** Fails if a matching event arrives within `ms`. */
  async none(name, pred = () => true, ms = 500) {
    await new Promise((r) => setTimeout(r, ms));
    const i = this.#find(name, pred);
    assert.equal(i, -1, `unexpected \`${name}\` event: ${JSON.stringify(this.items[i]?.data)}`);
  }

  /** Every `name` event so far (not removed). */
  all(name, pred = () => true) {
    return this.items.filter((e) => e.name === name && pred(e.data)).map((e) => e.data);
  }
}

/**
 * A connected Socket.IO client. `auth` defaults to `{token}`; `options` go to `io()`.
 * Resolves once connected and the `auth` event (the welcome) has arrived.
 */
export async function sio(token, options = {}, auth = { token }) {
  const socket = io(URL, { auth, reconnection: false, forceNew: true, ...options });
  const inbox = new Inbox();
  socket.onAny((name, data) => inbox.push(name, data));
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  const welcome = await inbox.take("auth");
  const request = (name, ...args) => socket.timeout(WAIT).emitWithAck(name, ...args);
  /** A request that must succeed: its `data`. */
  const ok = async (name, data) => {
    const reply = await request(name, data);
    assert.equal(reply.ok, true, `${name} ${JSON.stringify(data)}: ${JSON.stringify(reply)}`);
    return reply.data;
  };
  return { socket, inbox, welcome, user: welcome.user, request, ok };
}

/** The connect_error a handshake with this `auth` ends in. */
export function refusal(auth, options = {}) {
  const socket = io(URL, { auth, reconnection: false, forceNew: true, ...options });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => {
      socket.close();
      reject(new Error("connected, but should have been refused"));
    });
    socket.once("connect_error", (err) => {
      socket.close();
      resolve(err);
    });
  });
}

/** A native /ws client, authenticated. */
export async function native(token, authData = {}) {
  const ws = new WebSocket(URL.replace(/^http/, "ws") + "/ws");
  const inbox = new Inbox();
  const pending = new Map();
  let ref = 0;
  ws.on("message", (raw) => {
    const frame = JSON.parse(raw.toString());
    if ((frame.type === "ok" || frame.type === "error") && pending.has(frame.ref)) {
      pending.get(frame.ref)(frame);
      pending.delete(frame.ref);
    } else {
      inbox.push(frame.type, frame.data);
    }
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const request = (type, data) =>
    new Promise((resolve, reject) => {
      const r = String(++ref);
      const timer = setTimeout(() => reject(new Error(`no reply to ${type}`)), WAIT);
      pending.set(r, (frame) => {
        clearTimeout(timer);
        resolve(frame);
      });
      ws.send(JSON.stringify({ type, ref: r, data }));
    });
  const ok = async (type, data) => {
    const frame = await request(type, data);
    assert.equal(frame.type, "ok", `${type}: ${JSON.stringify(frame)}`);
    return frame.data;
  };
  const welcome = await ok("auth", { token, ...authData });
  const close = () =>
    new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      ws.once("close", resolve);
      ws.close();
    });
  return { ws, inbox, welcome, user: welcome.user, request, ok, close };
}

/** A public room with a unique name, created by `owner` (a sio or native client). */
export async function newRoom(owner, prefix = "r") {
  const data = await owner.ok("room.create", { name: unique(prefix) });
  return data.room;
}

export function send(client, room, body) {
  return client.ok("message.send", { room, body, client_id: unique("c") });
}

/** Resolves on the socket's next `disconnect`, with its reason. */
export function disconnected(socket) {
  return new Promise((resolve) => socket.once("disconnect", resolve));
}

/** The stream events of a room (docs/protocol.md section 6). */
export const STREAM_EVENTS = ["message", "message_edited", "message_deleted", "reaction"];

/**
 * Applies a stream event to `view` (seq -> message as shown) as a client does: new messages
 * are added, changes applied to their target, idempotently.
 */
export function applyStream(view, name, data) {
  if (name === "message") {
    view.set(data.seq, { body: data.body, deleted: !!data.deleted, reactions: [], replies: data.replies ?? 0, thread: data.thread ?? null });
    const parent = data.thread != null ? view.get(data.thread) : undefined;
    if (parent) parent.replies = Math.max(parent.replies, data.replies ?? 0);
    return;
  }
  const target = view.get(data.change?.target);
  if (!target) return;
  if (name === "message_edited") target.body = data.body;
  if (name === "message_deleted") Object.assign(target, { deleted: true, body: "", reactions: [] });
  if (name === "reaction") {
    const { emoji, add } = data.change;
    let r = target.reactions.find((x) => x.emoji === emoji);
    if (add && !r) target.reactions.push((r = { emoji, users: [] }));
    if (r && add && !r.users.includes(data.sender.id)) r.users.push(data.sender.id);
    if (r && !add) r.users = r.users.filter((u) => u !== data.sender.id);
    target.reactions = target.reactions.filter((x) => x.users.length > 0);
  }
}

/** A view built from `history` messages (their current state). */
export function historyView(messages) {
  const view = new Map();
  for (const m of messages) {
    view.set(m.seq, {
      body: m.body,
      deleted: !!m.deleted,
      reactions: (m.reactions ?? []).map((r) => ({ emoji: r.emoji, users: r.users.map((u) => u.id) })),
      replies: m.replies ?? 0,
      thread: m.thread ?? null,
    });
  }
  return view;
}
