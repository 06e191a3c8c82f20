// connection.js — the one WebSocket to /ws. Owns: the `auth` handshake with `resume`, matching
// replies to requests by `ref`, reconnecting with backoff, a heartbeat that notices a dead link,
// and the outbox: every `message.send` stays queued (same `client_id`) until the server answers,
// across any number of reconnects, so a message reaches the server once.
// Knows the protocol's frames; knows nothing of the DOM or of the store's shape.

import { Req, closeNeedsSignIn } from './protocol.js';

/** Waits between reconnect attempts; the last one repeats. A random 0-30% is added. */
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const CONNECT_TIMEOUT_MS = 10000;
const REQUEST_TIMEOUT_MS = 15000;
const HEARTBEAT_MS = 25000;
/** How many `message.send` requests may wait for their reply at once. */
const MAX_SENDS_IN_FLIGHT = 8;

/** A request that failed: `code` is the protocol's error code, or `disconnected` / `timeout`. */
export class RequestError extends Error {
  constructor(code, message, detail = {}) {
    super(message || code);
    this.code = code;
    /** the server's whole `error` object (e.g. `retry_after_ms` for `rate_limited`) */
    this.detail = detail;
  }
}

function wsUrl() {
  const url = new URL('/ws', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/**
 * Status, as `connection.status`:
 * - `connecting`: the first attempt since start
 * - `reconnecting`: an attempt after the link was lost
 * - `waiting`: lost; the next attempt is at `retryAt` (backoff)
 * - `offline`: as `waiting`, and the browser says it has no network
 * - `online`: authenticated; requests can be sent
 * - `stopped`: signed out or stopped by the app; no more attempts
 */
export class Connection {
  /**
   * @param {object} opts
   * @param {string} opts.token session token from the HTTP API
   * @param {() => Record<string, number>} opts.resume room id -> last seq seen, asked at each auth
   */
  constructor({ token, resume }) {
    this.token = token;
    this.resume = resume;
    this.status = 'idle';
    /** failed attempts since the last successful auth */
    this.attempt = 0;
    /** when the next attempt starts (ms since the epoch), while `waiting`/`offline` */
    this.retryAt = 0;
    this.everOnline = false;
    this.socket = null;
    this.nextRef = 1;
    /** ref -> {resolve, reject, timer} for requests on the current socket */
    this.inflight = new Map();
    /** sends not yet answered, oldest first: {room, body, client_id, sentOn, resolve, reject} */
    this.outbox = [];
    /** no sends before this time (after `rate_limited`) */
    this.pausedUntil = 0;
    this.listeners = new Map();
    this.timers = { retry: 0, connect: 0, heartbeat: 0, pump: 0 };
    this.onBrowserOnline = () => this.retryNow();
    this.onBrowserOffline = () => {
      if (this.status === 'waiting') this.setStatus('offline');
    };
  }

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, detail) {
    for (const fn of this.listeners.get(type) ?? []) {
      try {
        fn(detail);
      } catch (err) {
        console.error(`natter: ${type} listener failed`, err);
      }
    }
  }

  setStatus(status) {
    this.status = status;
    this.emit('status', { status, attempt: this.attempt, retryAt: this.retryAt, everOnline: this.everOnline });
  }

  start() {
    window.addEventListener('online', this.onBrowserOnline);
    window.addEventListener('offline', this.onBrowserOffline);
    this.connect();
  }

  /** Stop for good: close the socket, fail whatever is still waiting. */
  stop() {
    window.removeEventListener('online', this.onBrowserOnline);
    window.removeEventListener('offline', this.onBrowserOffline);
    const ws = this.socket;
    this.setStatus('stopped');
    this.teardown();
    if (ws) ws.close(1000, 'bye');
    for (const item of this.outbox.splice(0)) {
      item.reject(new RequestError('disconnected', 'stopped'));
    }
  }

  /** Try now instead of waiting for the backoff (the banner's "Retry now", the browser's `online`). */
  retryNow() {
    if (this.status === 'waiting' || this.status === 'offline') this.connect();
  }

  connect() {
    clearTimeout(this.timers.retry);
    if (this.status === 'stopped') return;
    this.setStatus(this.everOnline || this.attempt > 0 ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (err) {
      console.error('natter: cannot open WebSocket', err);
      this.scheduleReconnect();
      return;
    }
    this.socket = ws;
    this.timers.connect = setTimeout(() => this.drop(ws, 'connect timeout'), CONNECT_TIMEOUT_MS);
    ws.onopen = () => this.authenticate(ws);
    ws.onmessage = (e) => this.receive(ws, e.data);
    ws.onclose = (e) => this.lost(ws, e.code);
    ws.onerror = () => {}; // a close event always follows
  }

  async authenticate(ws) {
    const data = { token: this.token, resume: this.resume(), presence: true };
    let reply;
    try {
      reply = await this.requestOn(ws, Req.AUTH, data, CONNECT_TIMEOUT_MS);
    } catch (err) {
      if (err.code === 'unauthenticated') this.signedOut(4001);
      else this.drop(ws, `auth failed: ${err.code}`);
      return;
    }
    if (ws !== this.socket) return;
    clearTimeout(this.timers.connect);
    this.attempt = 0;
    this.everOnline = true;
    this.status = 'online';
    // `ready` first: the store takes the auth reply before resumed messages are read.
    this.emit('ready', reply);
    this.setStatus('online');
    this.timers.heartbeat = setInterval(() => this.heartbeat(ws), HEARTBEAT_MS);
    this.pump();
  }

  receive(ws, raw) {
    if (ws !== this.socket) return;
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      console.warn('natter: a frame that is not JSON', raw);
      return;
    }
    if (frame.type === 'ok' || frame.type === 'error') {
      this.settle(frame);
    } else {
      this.emit('event', frame);
    }
  }

  settle(frame) {
    if (frame.ref == null) {
      console.warn('natter: error without ref', frame.error);
      return;
    }
    const waiting = this.inflight.get(frame.ref);
    if (!waiting) return;
    this.inflight.delete(frame.ref);
    clearTimeout(waiting.timer);
    if (frame.type === 'ok') {
      waiting.resolve(frame.data ?? {});
    } else {
      const error = frame.error ?? {};
      waiting.reject(new RequestError(error.code ?? 'internal', error.message, error));
    }
  }

  /** One request on the authenticated link; rejects with `disconnected` when there is none. */
  request(type, data, timeout = REQUEST_TIMEOUT_MS) {
    if (this.status !== 'online' || !this.socket) {
      return Promise.reject(new RequestError('disconnected', 'not connected'));
    }
    return this.requestOn(this.socket, type, data, timeout);
  }

  requestOn(ws, type, data, timeout) {
    const ref = String(this.nextRef++);
    const frame = data === undefined ? { type, ref } : { type, ref, data };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.inflight.delete(ref);
        reject(new RequestError('timeout', `${type} got no reply`));
        // Every request gets exactly one reply; none means the link is dead.
        this.drop(ws, `${type} timed out`);
      }, timeout);
      this.inflight.set(ref, { resolve, reject, timer });
      try {
        ws.send(JSON.stringify(frame));
      } catch (err) {
        this.inflight.delete(ref);
        clearTimeout(timer);
        reject(new RequestError('disconnected', String(err)));
      }
    });
  }

  /**
   * Queue a `message.send`. Resolves with the reply's data (`{message, duplicate}`) once the
   * server has stored it, however many reconnects that takes; rejects only with an error that a
   * resend cannot fix by itself (`internal` included: the person decides to retry).
   */
  sendMessage({ room, body, client_id }) {
    return new Promise((resolve, reject) => {
      this.outbox.push({ room, body, client_id, sentOn: null, resolve, reject });
      this.pump();
    });
  }

  /** Number of sends not yet acknowledged. */
  get unsent() {
    return this.outbox.length;
  }

  pump() {
    clearTimeout(this.timers.pump);
    if (this.status !== 'online' || !this.socket) return;
    const wait = this.pausedUntil - Date.now();
    if (wait > 0) {
      this.timers.pump = setTimeout(() => this.pump(), wait);
      return;
    }
    const ws = this.socket;
    let flying = this.outbox.filter((item) => item.sentOn === ws).length;
    for (const item of this.outbox) {
      if (flying >= MAX_SENDS_IN_FLIGHT) break;
      if (item.sentOn === ws) continue;
      item.sentOn = ws;
      flying++;
      const { room, body, client_id } = item;
      this.requestOn(ws, Req.SEND, { room, body, client_id }, REQUEST_TIMEOUT_MS).then(
        (data) => this.sent(item, ws, data),
        (err) => this.sendFailed(item, ws, err),
      );
    }
  }

  sent(item, ws, data) {
    if (item.sentOn !== ws) return;
    this.outbox = this.outbox.filter((other) => other !== item);
    item.resolve(data);
    this.pump();
  }

  sendFailed(item, ws, err) {
    if (item.sentOn !== ws) return;
    if (err.code === 'disconnected' || err.code === 'timeout') {
      item.sentOn = null; // sent again, same client_id, after the next auth
      return;
    }
    if (err.code === 'rate_limited') {
      item.sentOn = null;
      this.pausedUntil = Date.now() + (err.detail.retry_after_ms ?? 1000);
      this.pump();
      return;
    }
    this.outbox = this.outbox.filter((other) => other !== item);
    item.reject(err);
    this.pump();
  }

  heartbeat(ws) {
    if (ws !== this.socket || this.status !== 'online') return;
    this.requestOn(ws, Req.PING, undefined, 10000).catch(() => {});
  }

  /** Give up on a socket that is stuck (no open, no reply) and go through the lost path. */
  drop(ws, why) {
    if (ws !== this.socket) return;
    console.info(`natter: dropping connection (${why})`);
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close();
    } catch {
      // already closing
    }
    this.lost(ws, 0);
  }

  lost(ws, code) {
    if (ws !== this.socket) return;
    this.teardown();
    if (closeNeedsSignIn(code)) {
      this.signedOut(code);
      return;
    }
    if (this.status === 'stopped') return;
    this.scheduleReconnect();
  }

  /** Forget the socket: fail its requests (sends stay in the outbox), stop its timers. */
  teardown() {
    this.socket = null;
    clearTimeout(this.timers.connect);
    clearInterval(this.timers.heartbeat);
    clearTimeout(this.timers.pump);
    clearTimeout(this.timers.retry);
    const waiting = [...this.inflight.values()];
    this.inflight.clear();
    for (const item of this.outbox) item.sentOn = null;
    for (const w of waiting) {
      clearTimeout(w.timer);
      w.reject(new RequestError('disconnected', 'connection lost'));
    }
  }

  scheduleReconnect() {
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = Math.round(base * (1 + Math.random() * 0.3));
    this.attempt++;
    this.retryAt = Date.now() + delay;
    this.setStatus(navigator.onLine === false ? 'offline' : 'waiting');
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  signedOut(code) {
    if (this.status === 'stopped') return;
    const ws = this.socket;
    this.setStatus('stopped');
    this.teardown();
    if (ws) ws.close(1000);
    this.emit('unauthorized', { code });
  }
}
