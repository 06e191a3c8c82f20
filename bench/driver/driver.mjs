// bench/driver/driver.mjs: a second opinion on natter-bench (issue 22 item 6). One scenario,
// driven over the official clients (socket.io-client for natter-sio and sio-peer, ws for natter,
// ws-peer and floor), with natter-bench's semantics: the same layout (rooms: R rooms x C clients,
// all publishing; fanout: one room, S subscribers + P publishers), the same body stamp
// `t=<send ns>;s=<sender>;n=<counter>;` padded to 64 bytes, the same open-loop schedule (each
// publisher at rate/publishers, phases spread by the golden ratio), the same delivery checks
// (expected = sends x room size, sender included; lost, duplicated, out of order per sender,
// misrouted) and the same figures (distinct deliveries per second of the window from the first
// measured send until everything arrived; server CPU from /proc/PID/stat per delivery).
// One difference: a warm-up (default 1 s) precedes the measured window; its messages are
// checked for loss but not timed or counted in the rates.
//
//   node bench/driver/driver.mjs --target natter|natter-sio|sio-peer|ws-peer|floor
//     --url http://127.0.0.1:PORT --scenario rooms|fanout
//     [--rooms 100 --clients 10 | --subscribers 1000 --publishers 10] --rate MSG_PER_SEC
//     --duration-secs S [--warmup-secs 1] [--drain-secs 5] [--conns-per-user 10]
//     [--body-bytes 64] [--server-pid PID] [--out result.json]
//
// Prints a one-line summary on stderr and the result (JSON) on stdout or to --out. Exit status
// 0 when every connection opened and nothing was lost, duplicated, reordered or misrouted.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import WebSocket from 'ws';
import { io } from 'socket.io-client';

const TARGETS = ['natter', 'natter-sio', 'sio-peer', 'ws-peer', 'floor'];
const PASSWORD = 'driver-password-1';
/** A send this far behind its schedule counts as late (as in natter-bench). */
const LATE_NS = 10_000_000n;

// --- arguments ------------------------------------------------------------------------------

function parseArgs(argv) {
  const a = {
    target: '', url: '', scenario: 'rooms', rooms: 100, clients: 10, subscribers: 1000,
    publishers: 10, rate: 100, durationSecs: 10, warmupSecs: 1, drainSecs: 5,
    connsPerUser: 10, bodyBytes: 64, concurrency: 64, timeoutSecs: 15, serverPid: 0, out: '',
  };
  const numeric = {
    '--rooms': 'rooms', '--clients': 'clients', '--subscribers': 'subscribers',
    '--publishers': 'publishers', '--rate': 'rate', '--duration-secs': 'durationSecs',
    '--warmup-secs': 'warmupSecs', '--drain-secs': 'drainSecs',
    '--conns-per-user': 'connsPerUser', '--body-bytes': 'bodyBytes',
    '--concurrency': 'concurrency', '--timeout-secs': 'timeoutSecs', '--server-pid': 'serverPid',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '-h' || flag === '--help') {
      const text = readFileSync(new URL(import.meta.url), 'utf8').split('\n');
      console.log(text.slice(0, text.findIndex((l) => l.startsWith('import'))).join('\n'));
      process.exit(0);
    }
    const value = argv[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    if (flag === '--target') a.target = value;
    else if (flag === '--url') a.url = value;
    else if (flag === '--scenario') a.scenario = value;
    else if (flag === '--out') a.out = value;
    else if (numeric[flag]) {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) usage(`${flag}: not a number >= 0: ${value}`);
      a[numeric[flag]] = n;
    } else usage(`unknown option ${flag}`);
  }
  if (!TARGETS.includes(a.target)) usage(`--target is one of ${TARGETS.join(', ')}`);
  if (!/^https?:\/\/[^/]+/.test(a.url)) usage('--url is http://HOST:PORT');
  if (!['rooms', 'fanout'].includes(a.scenario)) usage('--scenario is rooms or fanout');
  if (a.rate <= 0 || a.durationSecs <= 0) usage('--rate and --duration-secs must be > 0');
  return a;
}

function usage(problem) {
  console.error(`driver: ${problem} (--help for usage)`);
  process.exit(2);
}

// --- layout (natter-bench's Layout::grid) -----------------------------------------------------

/** Members of `rooms` rooms of `perRoom` connections; the first `publishing` of each publish. */
function grid(rooms, perRoom, publishing) {
  const members = [];
  for (let room = 0; room < rooms; room++) {
    for (let i = 0; i < perRoom; i++) members.push({ room, publishes: i < publishing });
  }
  return { rooms, members };
}

function layoutOf(a) {
  return a.scenario === 'rooms'
    ? grid(a.rooms, a.clients, a.clients)
    : grid(1, a.subscribers + a.publishers, a.publishers);
}

// --- the body stamp (natter-bench's payload.rs) ---------------------------------------------------

function encodeBody(sentNs, sender, counter, bodyBytes) {
  const stamp = `t=${sentNs};s=${sender};n=${counter};`;
  return stamp.length >= bodyBytes ? stamp : stamp + 'x'.repeat(bodyBytes - stamp.length);
}

const STAMP = /^t=(\d+);s=(\d+);n=(\d+);/;

// --- accounts and rooms on Natter targets ---------------------------------------------------------

function isNatter(target) {
  return target === 'natter' || target === 'natter-sio' || target === 'floor';
}

function runId() {
  let n = (Date.now() ^ process.pid) >>> 0;
  let id = '';
  for (let i = 0; i < 8; i++) {
    id += (n % 36).toString(36);
    n = Math.floor(n / 36) + (i === 3 ? Date.now() % 9973 : 0);
  }
  return id;
}

async function register(base, username) {
  const res = await fetch(`${base}/api/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== 201 && res.status !== 200) {
    throw new Error(`POST /api/register ${username}: ${res.status} ${text.slice(0, 200)}`);
  }
  return JSON.parse(text).token;
}

/** `n` tokens, registered four at a time (argon2id makes each take tens of milliseconds). */
async function accounts(base, n, id) {
  const tokens = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      tokens[i] = await register(base, `nd${id}u${i}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, n) }, worker));
  return tokens;
}

/** Users a layout needs: each user's connections share one room (natter-bench's users_needed). */
function usersNeeded(layout, perUser) {
  const perRoom = new Array(layout.rooms).fill(0);
  for (const m of layout.members) perRoom[m.room]++;
  return perRoom.reduce((sum, n) => sum + Math.ceil(n / perUser), 0);
}

/** Token per member: token 0 made the rooms; the rest are dealt out room by room. */
function assignTokens(layout, tokens, perUser) {
  let nextUser = 1;
  const roomUser = new Array(layout.rooms).fill(null);
  return layout.members.map((m) => {
    let slot = roomUser[m.room];
    if (!slot || slot.used >= perUser) slot = roomUser[m.room] = { user: nextUser++, used: 0 };
    slot.used++;
    return tokens[Math.min(slot.user, tokens.length - 1)];
  });
}

// --- connections: one class per protocol family, one interface --------------------------------------
//
// open() resolves when signed in; request(type, data) resolves with the reply's data (Natter
// targets) or rejects with its error; join(room); publish(room, body, clientId, counter);
// onDelivery(room, body) is called for every chat message; onClose(reason) once.

class NativeConn {
  // Natter's /ws (docs/protocol.md) and the floor: {"type","ref","data"} with ok/error replies.
  constructor(target, wsBase, token, timeoutMs) {
    Object.assign(this, { target, wsBase, token, timeoutMs, nextRef: 1, pending: new Map() });
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${this.wsBase}/ws`, { perMessageDeflate: false });
      this.ws = ws;
      const timer = setTimeout(() => { ws.terminate(); reject(new Error('connect timed out')); }, this.timeoutMs);
      ws.on('error', (e) => { clearTimeout(timer); reject(e); });
      ws.on('close', (code, reason) => {
        for (const p of this.pending.values()) p.reject(new Error(`closed ${code}`));
        this.pending.clear();
        this.onClose?.(`close ${code} ${reason}`);
      });
      ws.on('message', (data) => this.frame(data.toString()));
      ws.on('open', () => {
        this.request('auth', { token: this.token, presence: false }).then(
          () => { clearTimeout(timer); resolve(); },
          (e) => { clearTimeout(timer); reject(e); },
        );
      });
    });
  }

  frame(text) {
    let f;
    try { f = JSON.parse(text); } catch { this.onMalformed?.(); return; }
    if (f.type === 'message') {
      this.onDelivery?.(f.data?.room, f.data?.body);
    } else if (f.type === 'ok' || f.type === 'error') {
      const p = this.pending.get(f.ref);
      if (!p) return;
      this.pending.delete(f.ref);
      if (f.type === 'ok') p.resolve(f.data ?? {});
      else p.reject(new Error(`${f.error?.code}: ${f.error?.message}`));
    }
  }

  request(type, data) {
    const ref = String(this.nextRef++);
    return new Promise((resolve, reject) => {
      this.pending.set(ref, { resolve, reject });
      this.ws.send(JSON.stringify({ type, ref, data }));
    });
  }

  createRoom(name) { return this.request('room.create', { name }).then((d) => d.room.id); }

  join(room) { return this.request('room.join', { room }); }

  publish(room, body, clientId) { return this.request('message.send', { room, body, client_id: clientId }); }

  close() { this.ws?.terminate(); }
}

class NatterSioConn {
  // Natter's /socket.io/ (docs/socketio.md): the token in the handshake, requests as events
  // with acks {ok, data | error}, deliveries as `message` events.
  constructor(target, base, token, timeoutMs) {
    Object.assign(this, { target, base, token, timeoutMs });
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = io(this.base, {
        transports: ['websocket'], reconnection: false, forceNew: true, timeout: this.timeoutMs,
        perMessageDeflate: false, auth: { token: this.token, presence: false },
      });
      this.socket = socket;
      socket.on('connect', resolve);
      socket.on('connect_error', (e) => { socket.close(); reject(e); });
      socket.on('disconnect', (reason) => this.onClose?.(`disconnect ${reason}`));
      socket.on('message', (m) => this.onDelivery?.(m?.room, m?.body));
    });
  }

  request(type, data) {
    return new Promise((resolve, reject) => {
      this.socket.emit(type, data, (ack) => {
        if (ack?.ok) resolve(ack.data ?? {});
        else reject(new Error(`${ack?.error?.code}: ${ack?.error?.message}`));
      });
    });
  }

  createRoom(name) { return this.request('room.create', { name }).then((d) => d.room.id); }

  join(room) { return this.request('room.join', { room }); }

  publish(room, body, clientId) { return this.request('message.send', { room, body, client_id: clientId }); }

  close() { this.socket?.close(); }
}

class SioPeerConn {
  // The Express + Socket.IO peer: `join` (acked), `chat` {room, body} both ways, no acks.
  constructor(target, base, _token, timeoutMs) {
    Object.assign(this, { target, base, timeoutMs });
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = io(this.base, {
        transports: ['websocket'], reconnection: false, forceNew: true, timeout: this.timeoutMs,
        perMessageDeflate: false,
      });
      this.socket = socket;
      socket.on('connect', resolve);
      socket.on('connect_error', (e) => { socket.close(); reject(e); });
      socket.on('disconnect', (reason) => this.onClose?.(`disconnect ${reason}`));
      socket.on('chat', (m) => this.onDelivery?.(m?.room, m?.body));
    });
  }

  join(room) {
    return new Promise((resolve, reject) => {
      this.socket.emit('join', room, (ack) => (ack?.ok ? resolve() : reject(new Error('join refused'))));
    });
  }

  publish(room, body) { this.socket.emit('chat', { room, body }); return null; }

  close() { this.socket?.close(); }
}

class WsPeerConn {
  // The plain ws peer: {"type":"join","room","ref"} -> "joined"; {"type":"chat","room","body"}.
  constructor(target, wsBase, _token, timeoutMs) {
    Object.assign(this, { target, wsBase, timeoutMs, nextRef: 1, pending: new Map() });
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${this.wsBase}/`, { perMessageDeflate: false });
      this.ws = ws;
      const timer = setTimeout(() => { ws.terminate(); reject(new Error('connect timed out')); }, this.timeoutMs);
      ws.on('error', (e) => { clearTimeout(timer); reject(e); });
      ws.on('close', (code) => this.onClose?.(`close ${code}`));
      ws.on('open', () => { clearTimeout(timer); resolve(); });
      ws.on('message', (data) => {
        let f;
        try { f = JSON.parse(data.toString()); } catch { this.onMalformed?.(); return; }
        if (f.type === 'chat') this.onDelivery?.(f.room, f.body);
        else if (f.type === 'joined') {
          this.pending.get(f.ref)?.();
          this.pending.delete(f.ref);
        }
      });
    });
  }

  join(room) {
    const ref = String(this.nextRef++);
    return new Promise((resolve) => {
      this.pending.set(ref, resolve);
      this.ws.send(JSON.stringify({ type: 'join', room, ref }));
    });
  }

  publish(room, body) { this.ws.send(JSON.stringify({ type: 'chat', room, body })); return null; }

  close() { this.ws?.terminate(); }
}

const CONN = {
  natter: NativeConn, floor: NativeConn, 'natter-sio': NatterSioConn,
  'sio-peer': SioPeerConn, 'ws-peer': WsPeerConn,
};

function makeConn(a, token) {
  const base = a.url.replace(/\/+$/, '');
  const wsBase = base.replace(/^http/, 'ws');
  const Kind = CONN[a.target];
  const useWs = Kind === NativeConn || Kind === WsPeerConn;
  return new Kind(a.target, useWs ? wsBase : base, token, a.timeoutSecs * 1000);
}

// --- receiving: the checks of natter-bench's check.rs ---------------------------------------------

class Receiver {
  constructor(roomKey, wireRoom, senderRooms, run) {
    Object.assign(this, { roomKey, wireRoom, senderRooms, run, seen: new Map() });
  }

  deliver(room, body) {
    const now = process.hrtime.bigint();
    const c = this.run.counts;
    c.received++;
    const m = typeof body === 'string' ? STAMP.exec(body) : null;
    if (!m) { c.unparsable++; return; }
    const sentNs = BigInt(m[1]);
    const sender = Number(m[2]);
    const counter = Number(m[3]);
    if (String(room) !== String(this.wireRoom) || this.senderRooms[sender] !== this.roomKey) {
      c.misrouted++;
      return;
    }
    let track = this.seen.get(sender);
    if (!track) this.seen.set(sender, (track = { max: -1, counters: new Set() }));
    if (track.counters.has(counter)) { c.duplicates++; return; }
    track.counters.add(counter);
    c.distinct++;
    if (counter < track.max) c.outOfOrder++;
    else track.max = counter;
    if (sentNs >= this.run.measureStartNs) {
      c.measuredDistinct++;
      this.run.latenciesNs.push(Number(now - sentNs));
    }
  }
}

// --- CPU readings ---------------------------------------------------------------------------------

let clockTicks = 0;
/** Clock ticks per second (getconf CLK_TCK; 100 when it cannot be read). */
function ticksPerSec() {
  if (!clockTicks) {
    try { clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { clockTicks = 100; }
  }
  return clockTicks;
}

/** utime + stime of the server, nanoseconds, from /proc/PID/stat; null without a pid. */
function serverCpuNs(pid) {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) * (1e9 / ticksPerSec());
  } catch {
    return null;
  }
}

/** Busy time of all CPUs (everything but idle and iowait), nanoseconds, from /proc/stat. */
function machineBusyNs() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('cpu '));
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const busy = v.reduce((s, x) => s + x, 0) - v[3] - v[4];
    return busy * (1e9 / ticksPerSec());
  } catch {
    return null;
  }
}

function driverCpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

// --- the run ---------------------------------------------------------------------------------------

/** Runs `fn` over `items`, `limit` at a time, collecting settled results in order. */
async function pool(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try { results[i] = { ok: true, value: await fn(items[i], i) }; } catch (e) { results[i] = { ok: false, error: e }; }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx] / 1e6;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const base = a.url.replace(/\/+$/, '');
  const layout = layoutOf(a);
  const id = runId();
  const perUser = Math.max(1, a.connsPerUser);
  const setup = { accounts: 0, accounts_s: 0, connections: 0, connections_failed: 0, connection_errors: [], connect_s: 0 };

  // Accounts and rooms.
  let tokens = [];
  let wireRooms;
  const t0 = Date.now();
  if (isNatter(a.target)) {
    tokens = await accounts(base, usersNeeded(layout, perUser) + 1, id);
    setup.accounts = tokens.length;
    setup.accounts_s = (Date.now() - t0) / 1000;
    const admin = makeConn(a, tokens[0]);
    await admin.open();
    wireRooms = [];
    for (let i = 0; i < layout.rooms; i++) wireRooms.push(await admin.createRoom(`nd${id}r${i}`));
    admin.close();
  } else {
    wireRooms = Array.from({ length: layout.rooms }, (_, i) => `nd${id}r${i}`);
  }
  const memberTokens = isNatter(a.target) ? assignTokens(layout, tokens, perUser) : [];

  // Senders are numbered in layout order, as natter-bench does.
  const senderRooms = [];
  for (const m of layout.members) if (m.publishes) senderRooms.push(m.room);

  const run = {
    measureStartNs: 1n << 62n,
    latenciesNs: [],
    counts: { received: 0, distinct: 0, measuredDistinct: 0, duplicates: 0, outOfOrder: 0, misrouted: 0, unparsable: 0 },
    malformed: 0,
    disconnects: 0,
    disconnectReasons: [],
    replies: 0,
    refused: 0,
    refusals: {},
    stopping: false,
  };

  // Connections, 64 at a time: open, sign in, join.
  const connStart = Date.now();
  let senderIndex = 0;
  const plan = layout.members.map((m, i) => ({ ...m, token: memberTokens[i], sender: m.publishes ? senderIndex++ : -1 }));
  const opened = await pool(plan, a.concurrency, async (m) => {
    const conn = makeConn(a, m.token);
    const receiver = new Receiver(m.room, wireRooms[m.room], senderRooms, run);
    conn.onDelivery = (room, body) => receiver.deliver(room, body);
    conn.onMalformed = () => { run.malformed++; };
    try {
      await conn.open();
      await conn.join(wireRooms[m.room]);
    } catch (e) {
      conn.close();
      throw e;
    }
    conn.onClose = (reason) => {
      if (run.stopping) return;
      run.disconnects++;
      if (run.disconnectReasons.length < 5) run.disconnectReasons.push(reason);
    };
    return conn;
  });
  setup.connect_s = (Date.now() - connStart) / 1000;
  const roomSizes = new Array(layout.rooms).fill(0);
  const publishers = [];
  const conns = [];
  opened.forEach((r, i) => {
    if (!r.ok) {
      setup.connections_failed++;
      if (setup.connection_errors.length < 5) setup.connection_errors.push(String(r.error?.message ?? r.error));
      return;
    }
    conns.push(r.value);
    roomSizes[plan[i].room]++;
    if (plan[i].publishes) {
      publishers.push({ conn: r.value, sender: plan[i].sender, room: plan[i].room, counter: 0, refused: 0, sentMeasured: 0 });
    }
  });
  setup.connections = conns.length;
  if (publishers.length === 0) {
    for (const conn of conns) conn.close();
    throw new Error(`no publishing connection opened (${setup.connections_failed} failed: ${setup.connection_errors[0] ?? 'none planned'})`);
  }

  // The schedule: each publisher at rate/publishers from a phase in [0, 1/rate), over the
  // warm-up and the measured window together (one open-loop stream, like natter-bench's steps).
  const perRate = a.rate / Math.max(1, publishers.length);
  const totalS = a.warmupSecs + a.durationSecs;
  const schedule = [];
  for (const [pi, p] of publishers.entries()) {
    const phase = ((p.sender * 0.61803398875) % 1) / perRate;
    for (let k = 0; ; k++) {
      const at = phase + k / perRate;
      if (at >= totalS) break;
      schedule.push({ at, pi });
    }
  }
  schedule.sort((x, y) => x.at - y.at);

  const acked = isNatter(a.target);
  let sentAll = 0;
  let sentMeasured = 0;
  let lateSends = 0;
  let maxLagNs = 0n;
  let maxWakeupLagNs = 0n;
  const startNs = process.hrtime.bigint();
  const warmupNs = BigInt(Math.round(a.warmupSecs * 1e9));
  run.measureStartNs = startNs + warmupNs;
  let cpuStart = null;
  let measureStartMs = 0;
  let publishEndNs = startNs;
  const onReply = (p) => () => { run.replies++; };
  const onRefusal = (p) => (e) => {
    run.replies++;
    run.refused++;
    p.refused++;
    const code = String(e?.message ?? e).split(':')[0];
    run.refusals[code] = (run.refusals[code] ?? 0) + 1;
  };

  for (let i = 0; i < schedule.length; i++) {
    const { at, pi } = schedule[i];
    const dueNs = startNs + BigInt(Math.round(at * 1e9));
    let now = process.hrtime.bigint();
    if (dueNs > now) {
      await sleep(Number(dueNs - now) / 1e6);
      now = process.hrtime.bigint();
      // The timer's own lateness (the event loop or the OS scheduler) is reported apart:
      // natter-bench's publishers do not count it either, only being behind schedule.
      if (now - dueNs > maxWakeupLagNs) maxWakeupLagNs = now - dueNs;
    } else {
      const lag = now - dueNs;
      if (lag > maxLagNs) maxLagNs = lag;
      if (lag > LATE_NS) lateSends++;
    }
    if (!cpuStart && now >= run.measureStartNs) {
      cpuStart = { server: serverCpuNs(a.serverPid), driver: driverCpuUs(), machine: machineBusyNs() };
      measureStartMs = performance.now();
    }
    const p = publishers[pi];
    const sentNs = process.hrtime.bigint();
    const measured = sentNs >= run.measureStartNs;
    const counter = p.counter++;
    const body = encodeBody(sentNs, p.sender, counter, a.bodyBytes);
    const reply = p.conn.publish(wireRooms[p.room], body, `c${p.sender}-${counter}`);
    if (reply) reply.then(onReply(p), onRefusal(p));
    sentAll++;
    if (measured) { sentMeasured++; p.sentMeasured++; }
  }
  publishEndNs = process.hrtime.bigint();
  if (!cpuStart) {
    cpuStart = { server: serverCpuNs(a.serverPid), driver: driverCpuUs(), machine: machineBusyNs() };
    measureStartMs = performance.now();
  }

  // Drain: until every expected delivery (and, on Natter targets, every reply) has arrived.
  const expectedOf = (measuredOnly) => publishers.reduce((sum, p) => {
    const sends = measuredOnly ? p.sentMeasured : p.counter;
    const refused = measuredOnly ? 0 : p.refused;
    return sum + Math.max(0, sends - refused) * roomSizes[p.room];
  }, 0);
  const deadline = performance.now() + a.drainSecs * 1000;
  let drained = false;
  for (;;) {
    drained = (!acked || run.replies >= sentAll) && run.counts.distinct >= expectedOf(false);
    if (drained || performance.now() >= deadline) break;
    await sleep(2);
  }
  const windowS = (performance.now() - measureStartMs) / 1000;
  const serverEnd = serverCpuNs(a.serverPid);
  const driverEnd = driverCpuUs();
  const machineEnd = machineBusyNs();
  const expected = expectedOf(false);
  const c = run.counts;
  const lat = Float64Array.from(run.latenciesNs).sort();
  const serverCpuS = cpuStart.server != null && serverEnd != null ? (serverEnd - cpuStart.server) / 1e9 : null;
  const publishMeasuredS = Math.max(1e-9, Number(publishEndNs - run.measureStartNs) / 1e9);
  const driverCpuS = (driverEnd - cpuStart.driver) / 1e6;
  const driverCpuPercent = (driverCpuS / Math.max(1e-9, windowS)) * 100;
  const serverUtil = serverCpuS != null ? serverCpuS / Math.max(1e-9, windowS) : null;
  // CPU the rest of the machine used meanwhile (natter-bench's others_util; 1.0 = a core).
  const othersUtil = cpuStart.machine != null && machineEnd != null
    ? Math.max(0, (machineEnd - cpuStart.machine) / 1e9 - driverCpuS - (serverCpuS ?? 0)) / Math.max(1e-9, windowS)
    : null;

  const result = {
    tool: 'bench/driver',
    target: a.target,
    scenario: a.scenario,
    params: a.scenario === 'rooms'
      ? { rooms: a.rooms, clients: a.clients, rate: a.rate, duration_secs: a.durationSecs, warmup_secs: a.warmupSecs, body_bytes: a.bodyBytes }
      : { subscribers: a.subscribers, publishers: a.publishers, rate: a.rate, duration_secs: a.durationSecs, warmup_secs: a.warmupSecs, body_bytes: a.bodyBytes },
    clients: { 'socket.io-client': isSio(a.target), ws: !isSio(a.target) },
    setup,
    sent: sentAll,
    sent_measured: sentMeasured,
    refused: run.refused,
    refusals: run.refusals,
    expected_deliveries: expected,
    received: c.received,
    distinct: c.distinct,
    lost: Math.max(0, expected - c.distinct),
    duplicated: c.duplicates,
    out_of_order: c.outOfOrder,
    misrouted: c.misrouted,
    unparsable: c.unparsable,
    malformed_frames: run.malformed,
    disconnects: run.disconnects,
    disconnect_reasons: run.disconnectReasons,
    drained,
    window_s: windowS,
    deliveries_per_sec: c.measuredDistinct / Math.max(1e-9, windowS),
    msgs_per_sec: sentMeasured / publishMeasuredS,
    latency: {
      count: lat.length,
      mean_ms: lat.length ? lat.reduce((s, x) => s + x, 0) / lat.length / 1e6 : 0,
      p50_ms: percentile(lat, 0.5),
      p90_ms: percentile(lat, 0.9),
      p99_ms: percentile(lat, 0.99),
      p999_ms: percentile(lat, 0.999),
      max_ms: lat.length ? lat[lat.length - 1] / 1e6 : 0,
    },
    server_cpu_s: serverCpuS,
    server_cpu_ns_per_delivery: serverCpuS != null && c.measuredDistinct > 0 ? (serverCpuS * 1e9) / c.measuredDistinct : null,
    driver_cpu_percent: driverCpuPercent,
    server_util: serverUtil,
    others_util: othersUtil,
    noisy: othersUtil != null && othersUtil > 0.25,
    late_sends: lateSends,
    max_schedule_lag_ms: Number(maxLagNs) / 1e6,
    max_wakeup_lag_ms: Number(maxWakeupLagNs) / 1e6,
    // As natter-bench's bench_limited: the driver's CPU saturated, or over 1% of sends more
    // than 10 ms behind schedule while the server was not saturated.
    driver_limited: driverCpuPercent >= 85
      || (lateSends * 100 > sentAll && (serverUtil == null || serverUtil < 0.85)),
  };
  result.ok = setup.connections_failed === 0 && result.lost === 0 && result.duplicated === 0
    && result.out_of_order === 0 && result.misrouted === 0 && result.unparsable === 0
    && result.disconnects === 0 && drained;

  run.stopping = true;
  for (const conn of conns) conn.close();

  const json = JSON.stringify(result, null, 2);
  if (a.out) writeFileSync(a.out, json + '\n');
  else console.log(json);
  console.error(
    `driver: ${a.target} ${a.scenario}: ${result.deliveries_per_sec.toFixed(0)} deliveries/s, `
    + `${result.msgs_per_sec.toFixed(1)} msg/s, p50 ${result.latency.p50_ms.toFixed(2)} ms, `
    + `p99 ${result.latency.p99_ms.toFixed(2)} ms, lost ${result.lost}, dup ${result.duplicated}, `
    + `ooo ${result.out_of_order}, server ${result.server_cpu_ns_per_delivery?.toFixed(0) ?? '-'} ns/delivery, `
    + `driver CPU ${driverCpuPercent.toFixed(0)}%${result.ok ? '' : ' FAILED'}`
    + (setup.connections_failed ? ` (${setup.connections_failed} connections failed: ${setup.connection_errors[0]})` : ''),
  );
  process.exit(result.ok ? 0 : 1);
}

function isSio(target) {
  return target === 'natter-sio' || target === 'sio-peer';
}

main().catch((e) => {
  const cause = e?.cause ? ` (${e.cause.message ?? e.cause})` : '';
  console.error(`driver: ${e?.message ?? e}${cause}`);
  process.exit(1);
});
