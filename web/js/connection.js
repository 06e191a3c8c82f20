// connection.js — the one WebSocket to /ws. Owns: the `auth` handshake with `resume`, matching
// replies to requests by `ref`, reconnecting with capped backoff, noticing a dead link (the
// browser's `offline`/`online` events, an idle `ping` with a short deadline, a check when the tab
// comes back), and the outbox: every `message.send` and every change (edit, delete, reaction)
// stays queued (same `client_id`) until the server answers, across any number of reconnects,
// so it reaches the server once. A close that reconnecting cannot help (`4001`, `4003`, and
// `4010`: the account was deactivated) stops it and says so (`unauthorized`).
// Knows the protocol's frames; knows nothing of the DOM or of the store's shape.

import { Req, closeNeedsSignIn } from './protocol.js';

/** The connection's timings (ms). The app uses these; tests may pass shorter ones. */
export const TIMING = Object.freeze({
  /** the wait before the first reconnect attempt; it doubles with each failed attempt... */
  backoffFirstMs: 500,
  /** ...up to this. Each wait is drawn at random from [wait/2, wait] (jitter: a server that
   *  comes back is not hit by every client at once). So a server that is back is found within
   *  5 s at worst. Without a network (`navigator.onLine` false) attempts wait this long. */
  backoffMaxMs: 5000,
  /** an opened socket must be authenticated within this */
  connectTimeoutMs: 10000,
  /** a request unanswered this long means the link is dead */
  requestTimeoutMs: 15000,
  /** after this long without any frame from the server, a `ping` asks whether the link lives */
  idlePingMs: 15000,
  /** a liveness `ping` unanswered this long: the link is dead, reconnect */
  pingDeadlineMs: 7000,
  /** the tab shown or focused again after this long without a frame: check the link at once
   *  (a laptop waking from sleep holds a socket that has long been dead) */
  wakeCheckMs: 5000,
});
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
   * @param {Partial<typeof TIMING>} [opts.timing] overrides of TIMING (tests)
   */
  constructor({ token, resume, timing = {} }) {
    this.token = token;
    this.resume = resume;
    this.timing = { ...TIMING, ...timing };
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
    /** sends and changes not yet answered, oldest first:
     *  {type, data (with its client_id), client_id, sentOn, resolve, reject} */
    this.outbox = [];
    /** no sends before this time (after `rate_limited`) */
    this.pausedUntil = 0;
    this.listeners = new Map();
    this.timers = { retry: 0, connect: 0, idle: 0, pump: 0 };
    /** when the current socket last brought a frame (ms since the epoch) */
    this.lastFrameAt = 0;
    /** a liveness `ping` is waiting for its reply on the current socket */
    this.pinging = false;
    this.onBrowserOnline = () => this.networkBack();
    this.onBrowserOffline = () => this.networkLost();
    this.onVisible = () => {
      if (document.visibilityState === 'visible') this.wake();
    };
    this.onFocus = () => this.wake();
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
    document.addEventListener('visibilitychange', this.onVisible);
    window.addEventListener('focus', this.onFocus);
    this.connect();
  }

  /** Stop for good: close the socket, fail whatever is still waiting. */
  stop() {
    window.removeEventListener('online', this.onBrowserOnline);
    window.removeEventListener('offline', this.onBrowserOffline);
    document.removeEventListener('visibilitychange', this.onVisible);
    window.removeEventListener('focus', this.onFocus);
    const ws = this.socket;
    this.setStatus('stopped');
    this.teardown();
    if (ws) ws.close(1000, 'bye');
    for (const item of this.outbox.splice(0)) {
      item.reject(new RequestError('disconnected', 'stopped'));
    }
  }

  /** Try now instead of waiting for the backoff (the banner's "Retry now", the tab shown again). */
  retryNow() {
    if (this.status === 'waiting' || this.status === 'offline') this.connect();
  }

  /**
   * The browser's `offline` event: there is no network, so the socket is dead even if it has not
   * noticed. Let it go at once (its unanswered sends stay in the outbox, same `client_id`) and
   * say so; attempts go on every few seconds in case the browser is wrong (a server on this very
   * machine is reachable without a network).
   */
  networkLost() {
    if (this.status === 'stopped' || this.status === 'idle') return;
    if (this.socket) {
      this.drop(this.socket, 'the browser is offline');
    } else {
      clearTimeout(this.timers.retry);
      this.scheduleReconnect();
    }
  }

  /**
   * The browser's `online` event: the network is back. Reconnect now with the backoff reset; an
   * attempt begun while the network was down may hang until its timeout, so it is replaced.
   * Already online (the `offline` was missed): check the link instead.
   */
  networkBack() {
    if (this.status === 'stopped' || this.status === 'idle') return;
    this.attempt = 0;
    if (this.status === 'online') {
      this.checkLink(0);
      return;
    }
    this.connect();
  }

  /** The tab is shown or focused again: retry at once while disconnected, else check the link. */
  wake() {
    if (this.status === 'waiting' || this.status === 'offline') this.connect();
    else if (this.status === 'online') this.checkLink(this.timing.wakeCheckMs);
  }

  connect() {
    clearTimeout(this.timers.retry);
    if (this.status === 'stopped') return;
    if (this.socket) {
      // an attempt still under way (e.g. begun while the network was down) is replaced
      this.release(this.socket);
      this.teardown();
    }
    if (navigator.onLine === false) this.setStatus('offline');
    else this.setStatus(this.everOnline || this.attempt > 0 ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (err) {
      console.error('natter: cannot open WebSocket', err);
      this.scheduleReconnect();
      return;
    }
    this.socket = ws;
    this.timers.connect = setTimeout(() => this.drop(ws, 'connect timeout'), this.timing.connectTimeoutMs);
    ws.onopen = () => this.authenticate(ws);
    ws.onmessage = (e) => this.receive(ws, e.data);
    ws.onclose = (e) => this.lost(ws, e.code);
    ws.onerror = () => {}; // a close event always follows
  }

  async authenticate(ws) {
    const data = { token: this.token, resume: this.resume(), presence: true };
    let reply;
    try {
      reply = await this.requestOn(ws, Req.AUTH, data, this.timing.connectTimeoutMs);
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
    this.armIdleCheck(ws);
    this.pump();
  }

  receive(ws, raw) {
    if (ws !== this.socket) return;
    this.armIdleCheck(ws);
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
  request(type, data, timeout = this.timing.requestTimeoutMs) {
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
   * Queue a `message.send` (`thread`, `also_room` for a thread reply; `files`: upload ids). Resolves with the reply's
   * data (`{message, duplicate}`) once the server has stored it, however many reconnects that
   * takes; rejects only with an error that a resend cannot fix by itself (`internal` included:
   * the person decides to retry).
   */
  sendMessage({ room, body, client_id, thread, also_room, files }) {
    const data = { room, body, client_id };
    if (files?.length) data.files = files;
    if (thread != null) {
      data.thread = thread;
      if (also_room) data.also_room = true;
    }
    return this.enqueue(Req.SEND, data);
  }

  /**
   * Queue a change (`message.edit`, `message.delete`, `reaction.add`, `reaction.remove`; `data`
   * carries its `client_id`). Kept and resent with the same `client_id` across reconnects, like
   * a send, so the server stores it once. Resolves with `{entry, duplicate}`.
   */
  sendChange(type, data) {
    return this.enqueue(type, data);
  }

  enqueue(type, data) {
    return new Promise((resolve, reject) => {
      this.outbox.push({ type, data, client_id: data.client_id, sentOn: null, resolve, reject });
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
      this.requestOn(ws, item.type, item.data, this.timing.requestTimeoutMs).then(
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

  /** A frame came (or the link just opened): the next liveness check is `idlePingMs` from now. */
  armIdleCheck(ws) {
    this.lastFrameAt = Date.now();
    clearTimeout(this.timers.idle);
    this.timers.idle = setTimeout(() => this.checkLink(0), this.timing.idlePingMs);
  }

  /**
   * Ask the server `ping` when nothing has come for `minIdleMs`; no reply within
   * `pingDeadlineMs` drops the link (requestOn's timeout) and reconnects.
   */
  checkLink(minIdleMs) {
    const ws = this.socket;
    if (!ws || this.status !== 'online' || this.pinging) return;
    if (Date.now() - this.lastFrameAt < minIdleMs) return;
    this.pinging = true;
    this.requestOn(ws, Req.PING, undefined, this.timing.pingDeadlineMs)
      .catch(() => {})
      .finally(() => {
        if (ws === this.socket) this.pinging = false;
      });
  }

  /** Stop listening to a socket and close it (best effort: with no network, nothing is sent). */
  release(ws) {
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close();
    } catch {
      // already closing
    }
  }

  /** Give up on a socket that is stuck (no open, no reply, no network) and go through the lost path. */
  drop(ws, why) {
    if (ws !== this.socket) return;
    console.info(`natter: dropping connection (${why})`);
    this.release(ws);
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
    this.pinging = false;
    clearTimeout(this.timers.connect);
    clearTimeout(this.timers.idle);
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
    // Without a network an attempt fails at once; waiting the longest keeps that from spinning.
    const base = navigator.onLine === false
      ? this.timing.backoffMaxMs
      : Math.min(this.timing.backoffMaxMs, this.timing.backoffFirstMs * 2 ** Math.min(this.attempt, 10));
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
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
