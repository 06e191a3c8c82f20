// harness.mjs — what every browser test shares: finding the natter binary and Chromium,
// starting a server on port 0 with a fresh data dir (and again on the same port, for restarts),
// launching headless Chromium through playwright-core, and driving the UI as a person would.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { describe, test } from 'node:test';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../..');

/** The Chromium executable; the tests skip (visibly) without it. */
export const BROWSER = process.env.NATTER_BROWSER || '';
export const SKIP = BROWSER
  ? false
  : 'NATTER_BROWSER unset: set it to a Chromium executable (e.g. /usr/bin/chromium) to run the browser tests';

/**
 * `describe`, or when there is no browser one test reported as skipped with the reason, so a
 * run without NATTER_BROWSER says "skipped" in its summary rather than passing quietly.
 */
export function browserSuite(name, options, fn) {
  if (SKIP) return test(name, { skip: SKIP }, () => {});
  return describe(name, options, fn);
}

/** Bound on every single wait in the tests. */
export const WAIT_MS = 10000;

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The natter binary: $NATTER_BIN, else target/debug/natter, else $CARGO_TARGET_DIR/debug/natter. */
export function natterBin() {
  const candidates = [];
  if (process.env.NATTER_BIN) return path.resolve(process.env.NATTER_BIN);
  candidates.push(path.join(REPO, 'target/debug/natter'));
  if (process.env.CARGO_TARGET_DIR) candidates.push(path.join(process.env.CARGO_TARGET_DIR, 'debug/natter'));
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(`natter binary not found (tried ${candidates.join(', ')}); build it with `
      + '`cargo build -p natter-server` or set NATTER_BIN');
  }
  return found;
}

/**
 * A fresh data dir. In memory (/dev/shm) where there is one: these tests are of the web
 * client, and a disk that stalls an fsync for seconds (a busy CI machine) would time out their
 * waits; durability through fsync and kill -9 is the Rust suites' subject.
 */
export function tempDir(prefix = 'natter-browser-') {
  let base = os.tmpdir();
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    base = '/dev/shm';
  } catch {
    // no shared memory file system: the temp dir
  }
  return fs.mkdtempSync(path.join(base, prefix));
}

/** One running natter process. */
export class NatterServer {
  /**
   * Start natter and wait for its "natter listening on http://..." line.
   * @param {object} [opts]
   * @param {string} [opts.dataDir] default: a fresh temp dir
   * @param {number} [opts.port] default 0 (any free port)
   * @param {string[]} [opts.extraArgs]
   */
  static async start({ dataDir = tempDir(), port = 0, extraArgs = [] } = {}) {
    const args = ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir];
    // Every browser signs up and in from 127.0.0.1: lift the per-address account limits
    // (the Rust suite's tests/abuse.rs tests them).
    args.push('--register-per-hour-per-address', '1000000', '--login-per-minute-per-address', '1000000',
      '--login-per-minute-per-user', '1000000', '--guest-per-hour-per-address', '1000000',
      '--hash-waiting-per-address', '100000', '--hash-wait-ms', '600000');
    // Serve web/ from disk (the files under test) unless asked to test the embedded copy.
    if (!process.env.NATTER_WEB_EMBEDDED) args.push('--web-dir', path.join(REPO, 'web'));
    const child = spawn(natterBin(), [...args, ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { RUST_LOG: 'warn', ...process.env },
    });
    const server = new NatterServer(child, dataDir);
    await server.listening;
    return server;
  }

  constructor(child, dataDir) {
    this.child = child;
    this.dataDir = dataDir;
    this.stderr = '';
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-8000);
    });
    this.listening = new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`natter did not print its address within 20 s\n${this.stderr}`));
      }, 20000);
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const m = out.match(/natter listening on (http:\/\/[^\s]+)/);
        if (m && !this.url) {
          clearTimeout(timer);
          this.url = m[1].replace(/\/$/, '');
          this.port = Number(new URL(this.url).port);
          resolve();
        }
      });
      this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        if (!this.url) reject(new Error(`natter exited (${code ?? signal}) before listening\n${this.stderr}`));
      });
    });
  }

  /** SIGTERM, and SIGKILL if it has not exited within 10 s. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(killer);
  }

  /** Stop this process and start a new one on the same port and data dir. */
  async restart() {
    await this.stop();
    return NatterServer.start({ dataDir: this.dataDir, port: this.port });
  }
}

export function launchBrowser() {
  return chromium.launch({ executablePath: BROWSER, args: CHROMIUM_ARGS, timeout: 30000 });
}

/**
 * A new browser context (its own storage, like a separate person) with one page, opened at
 * the server. The page's uncaught errors and CSP violations are collected in `page.problems`.
 * With `relay: true` its WebSocket goes through `relaySocket` (as `page.relay`); `initScript`
 * (a function) runs in the page before its own scripts, on every load; `contextOptions` go to
 * `browser.newContext` (e.g. `hasTouch`).
 */
export async function openPage(browser, server, { viewport = { width: 1280, height: 800 }, colorScheme = 'light', relay = false, initScript = null, contextOptions = {} } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, ...contextOptions });
  context.setDefaultTimeout(WAIT_MS);
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content Security Policy|Refused to/i.test(text)) page.problems.push(`csp: ${text}`);
    else if (msg.type() === 'error' && text.startsWith('natter:')) page.problems.push(text);
  });
  if (relay) page.relay = await relaySocket(page);
  await page.goto(server.url);
  return page;
}

/** Sign up (or in) through the form and wait until the chat is connected. */
export async function signUp(page, name, password = 'correct horse battery', mode = 'signup') {
  await page.locator('#auth-screen').waitFor({ state: 'visible' });
  await page.click(mode === 'signup' ? '#mode-signup' : '#mode-signin');
  await page.fill('#auth-username', name);
  await page.fill('#auth-password', password);
  await page.click('#auth-submit');
  await waitOnline(page);
}

/** The chat is shown, authenticated, and a room is open with its history loaded. */
export async function waitOnline(page) {
  await page.locator('#chat').waitFor({ state: 'visible' });
  await page.locator('#composer-input').waitFor({ state: 'visible' });
  await page.waitForFunction(() => {
    const status = document.getElementById('history-status')?.textContent ?? '';
    return document.getElementById('me-status')?.textContent === 'Online' && !status.startsWith('Loading messages');
  }, null, { timeout: WAIT_MS });
}

/** Open a room or DM from the sidebar by its shown name. */
export async function openRoom(page, title) {
  await page.locator('.nav-item', { has: page.locator('.nav-label', { hasText: new RegExp(`^${escapeRe(title)}$`) }) }).click();
  await page.locator('#room-name', { hasText: title }).waitFor();
}

/** Type into the composer and press Enter. */
export async function send(page, text) {
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
}

/** Wait until a confirmed (not pending) message with exactly this text is in the list. */
export async function waitForMessage(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#message-list .msg:not(.pending):not(.failed) .msg-text')]
      .some((el) => el.textContent === t),
    text,
    { timeout: WAIT_MS },
  );
}

/** The texts of the messages in the open room, top to bottom (confirmed and pending). */
export function messageTexts(page) {
  return page.$$eval('#message-list .msg .msg-text', (els) => els.map((el) => el.textContent));
}

export function exactly(text) {
  return new RegExp(`^${escapeRe(text)}$`);
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Put the page's WebSocket through a controllable relay (before the page opens it):
 * - `cut()` closes the page's socket (code 1001, as a server going away), so it reconnects;
 * - while `blocked` is true, new sockets are dropped at their first frame (no server there);
 * - while `muted` is true, frames from the server are dropped (replies lost on the way);
 * - `onClientFrame(frame, relay)` may look at each request first; returning true swallows it
 *   (relay.reply(obj) answers the page as the server would, relay.forward() passes it on);
 * - `onServerFrame(raw)` sees each frame from the server that reaches the page.
 * Counts every request the page sends by type in `sent`.
 */
export async function relaySocket(page) {
  const ctl = {
    blocked: false,
    muted: false,
    live: null,
    onClientFrame: null,
    onServerFrame: null,
    sent: {},
    /** every request the page sent, in order */
    frames: [],
    cut() {
      const live = ctl.live;
      ctl.live = null;
      if (!live) return;
      live.ws.close({ code: 1001, reason: 'test cut' });
      live.server.close({ code: 1000, reason: 'test cut' });
    },
  };
  await page.routeWebSocket(/\/ws$/, (ws) => {
    if (ctl.blocked) {
      // Accept, then drop at the first frame (the `auth`): closing before the page's socket is
      // fully open sometimes leaves the attempt hanging until the client's connect timeout.
      ws.onMessage(() => ws.close({ code: 1001, reason: 'test: server unreachable' }));
      return;
    }
    const server = ws.connectToServer();
    const live = { ws, server };
    ctl.live = live;
    ws.onMessage((raw) => {
      if (ctl.live !== live) return;
      const frame = JSON.parse(raw);
      ctl.frames.push(frame);
      ctl.sent[frame.type] = (ctl.sent[frame.type] ?? 0) + 1;
      const relay = {
        forward: () => server.send(raw),
        reply: (obj) => ws.send(JSON.stringify(obj)),
      };
      if (ctl.onClientFrame?.(frame, relay)) return;
      server.send(raw);
    });
    server.onMessage((raw) => {
      if (ctl.live !== live || ctl.muted) return;
      ctl.onServerFrame?.(raw);
      ws.send(raw);
    });
  });
  return ctl;
}

/** Close contexts and the browser; stop servers and remove their data dirs. Never throws. */
export async function cleanup({ browser, servers = [] }) {
  try {
    await browser?.close();
  } catch {
    // already gone
  }
  await Promise.all(servers.filter(Boolean).map(async (s) => {
    await s.stop().catch(() => {});
    fs.rmSync(s.dataDir, { recursive: true, force: true });
  }));
}

// ---- messages: actions, reactions, threads (issue 18) -------------------------------------------

/** The timeline item of the message with exactly this text (in `within`, default the room). */
export function msgItem(page, text, within = '#message-list') {
  return page.locator(`${within} .msg`, { has: page.locator('.msg-text', { hasText: exactly(text) }) });
}

/** Open a message's "…" menu and choose an entry (React, Reply in thread, Copy link, Edit, Delete). */
export async function messageAction(page, item, label) {
  await item.hover();
  await item.getByRole('button', { name: 'More actions' }).click();
  await page.getByRole('menuitem', { name: label, exact: true }).click();
}

/** Runs in the page: what the messages under `within` show, as plain data (see snapshotMessages). */
function messagesShown(within) {
  return [...document.querySelectorAll(`${within} .msg`)].map((el) => ({
    text: el.querySelector('.msg-tombstone') ? '[deleted]' : el.querySelector('.msg-text')?.textContent ?? null,
    pending: el.classList.contains('pending') || el.classList.contains('failed'),
    edited: !!el.querySelector('.msg-edited'),
    reactions: [...el.querySelectorAll('.reaction-chip:not(.reaction-add)')].map((c) => `${c.textContent}${c.classList.contains('mine') ? '*' : ''}`),
    thread: el.querySelector('.thread-summary')?.textContent ?? null,
    threadRef: !!el.querySelector('.msg-thread-ref'),
  }));
}

/**
 * What a list of messages shows, as plain data: per message its text (or "[deleted]"), whether
 * it says "(edited)", its reaction chips ("👍2", "*" when mine), its thread summary and
 * "replied to a thread" link. Two pages showing the same state give equal snapshots.
 */
export function snapshotMessages(page, within = '#message-list') {
  return page.evaluate(messagesShown, within);
}

/** Wait until `page` shows exactly `expected` (a snapshotMessages result). */
export async function waitForSnapshot(page, expected, within = '#message-list') {
  const want = JSON.stringify(expected);
  try {
    await page.waitForFunction(`JSON.stringify((${messagesShown.toString()})(${JSON.stringify(within)})) === ${JSON.stringify(want)}`, null, { timeout: WAIT_MS });
  } catch (err) {
    const shown = await snapshotMessages(page, within);
    throw new Error(`the page shows ${JSON.stringify(shown, null, 1)}\nnot ${JSON.stringify(expected, null, 1)}\n${err.message}`);
  }
}

// ---- a PNG made here (no fixtures) ------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A `width` x `height` RGB PNG (files and avatars: images made here, no fixtures): a gradient, so it compresses to a few KB. */
export function makePng(width, height) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      raw[row + 1 + x * 3] = (x * 255 / width) | 0;
      raw[row + 2 + x * 3] = (y * 255 / height) | 0;
      raw[row + 3 + x * 3] = 160;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
