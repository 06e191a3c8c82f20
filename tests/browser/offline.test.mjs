// offline.test.mjs — the client notices a dead network (issue 17, point 9): Chromium's offline
// emulation (`context.setOffline`) fires the page's `offline`/`online` events and fails every new
// connection, as a real network loss does. Gone: the banner says so at once, presence turns
// unknown (no green dots), a message written meanwhile waits as pending. Back: the page
// reconnects at once (not after a grown backoff) and sends the message exactly once.
// Then the connection module itself, driven directly with short timings: a link that stops
// answering is found by the idle `ping` and replaced; the tab shown or focused again retries at
// once; the reconnect wait is capped at 5 s, with jitter.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, messageTexts,
  openRoom, exactly, cleanup, WAIT_MS,
} from './harness.mjs';

/** Runs in the page before its scripts: records every socket opened and every frame sent. */
function recordSockets() {
  const log = { opened: 0, sent: [] };
  window.natterTestSockets = log;
  const Native = window.WebSocket;
  const nativeSend = Native.prototype.send;
  Native.prototype.send = function sendAndRecord(data) {
    try {
      log.sent.push(JSON.parse(data));
    } catch {
      // not JSON: not ours to count
    }
    return nativeSend.call(this, data);
  };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      log.opened++;
    }
  };
}

/** How many presence dots of this state the page shows (sidebar, header, everywhere). */
function dots(page, state, within = '') {
  return page.locator(`${within} .presence-dot.${state}`).count();
}

async function assertUnique(page, texts) {
  const shown = await messageTexts(page);
  assert.deepEqual(shown, texts, 'every message once, in order');
}

browserSuite('the browser goes offline and comes back', { timeout: 90000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    ana = await openPage(browser, server, { initScript: recordSockets });
    await signUp(ana, 'ana');
    bob = await openPage(browser, server);
    await signUp(bob, 'bob');
  });

  after(async () => {
    for (const page of [ana, bob]) if (page) assert.deepEqual(page.problems, [], 'no page errors or CSP violations');
    await cleanup({ browser, servers: [server] });
  });

  test('banner at once, presence unknown, a message written offline is sent once when back', async (t) => {
    await send(bob, 'hello');
    await waitForMessage(ana, 'hello');
    // Both online, both green in ana's list.
    await ana.locator('#people-list', { hasText: 'bob' }).waitFor();
    await ana.waitForFunction(() => document.querySelectorAll('#people-list .presence-dot.on').length === 2, null, { timeout: WAIT_MS });
    // A DM with bob, whose header says he is online; then back to general.
    await ana.locator('#people-list button[data-person="bob"]').click();
    await ana.locator('#room-meta', { hasText: exactly('Online') }).waitFor();
    await ana.locator('#dm-list .presence-dot.on').waitFor();
    await openRoom(ana, 'general');

    // The network goes: the banner says so within a second, and nothing looks online.
    const wentAt = Date.now();
    await ana.context().setOffline(true);
    await ana.locator('#banner[data-state="error"]', { hasText: 'You are offline.' }).waitFor({ timeout: 1000 });
    const bannerMs = Date.now() - wentAt;
    assert.equal(await ana.textContent('#me-status'), 'Offline');
    assert.equal(await dots(ana, 'on'), 0, 'no green dot anywhere while disconnected');
    assert.equal(await dots(ana, 'unknown', '#people-list'), 2, 'ana and bob shown as unknown');
    assert.ok(await ana.locator('#people-list.stale').isVisible());
    assert.equal(await ana.isVisible('#banner-retry'), true);
    assert.equal(await dots(ana, 'unknown', '#dm-list'), 1, 'the DM with bob too');
    await openRoom(ana, 'bob');
    await ana.locator('#room-meta', { hasText: exactly('Status unknown') }).waitFor();
    assert.equal(await dots(ana, 'unknown', '#room-name'), 1);
    await openRoom(ana, 'general');

    // Written while offline: pending, waiting for the connection, counted in the banner.
    await send(ana, 'written while offline');
    const pending = ana.locator('.msg.pending', { hasText: 'written while offline' });
    await pending.locator('.msg-state', { hasText: 'Waiting for connection' }).waitFor();
    await ana.locator('#banner', { hasText: '1 message will be sent' }).waitFor();

    // The page keeps trying (in case the browser is wrong); a failed attempt changes nothing
    // of the above: still offline, the message still pending, not failed.
    const opened = await ana.evaluate(() => window.natterTestSockets.opened);
    await ana.waitForFunction((n) => window.natterTestSockets.opened > n, opened, { timeout: WAIT_MS });
    await ana.waitForFunction(() => document.getElementById('banner').dataset.state === 'error', null, { timeout: WAIT_MS });
    assert.equal(await ana.locator('.msg.failed').count(), 0, 'nothing marked as failed');
    assert.equal(await pending.count(), 1);

    // The network is back: connected within 2 s, without waiting out a backoff.
    const backAt = Date.now();
    await ana.context().setOffline(false);
    await ana.waitForFunction(() => document.getElementById('me-status')?.textContent === 'Online', null, { timeout: 2000 });
    const reconnectMs = Date.now() - backAt;
    await waitForMessage(ana, 'written while offline');
    await waitForMessage(bob, 'written while offline');
    await pending.waitFor({ state: 'detached' });
    await ana.waitForFunction(() => document.querySelectorAll('#people-list .presence-dot.on').length === 2, null, { timeout: WAIT_MS });
    assert.equal(await dots(ana, 'unknown'), 0);
    assert.equal(await dots(ana, 'on', '#dm-list'), 1, 'bob is known online again');
    await ana.locator('#banner').waitFor({ state: 'hidden' });

    const sends = await ana.evaluate(() => window.natterTestSockets.sent
      .filter((f) => f.type === 'message.send' && f.data.body === 'written while offline').length);
    assert.equal(sends, 1, 'sent exactly once, after the reconnect');
    await send(bob, 'after');
    await waitForMessage(ana, 'after');
    const expected = ['hello', 'written while offline', 'after'];
    await assertUnique(ana, expected);
    await assertUnique(bob, expected);
    // What the server stored is the same: a fresh load shows it once.
    await bob.reload();
    await waitForMessage(bob, 'after');
    await assertUnique(bob, expected);
    t.diagnostic(`offline banner after ${bannerMs} ms; reconnected ${reconnectMs} ms after the network came back`);
  });
});

browserSuite('the connection notices a dead link', { timeout: 90000 }, () => {
  let server;
  let browser;
  let page;
  let token;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    page = await openPage(browser, server, { relay: true });
    await page.locator('#auth-screen').waitFor({ state: 'visible' });
    // An account for the connections below (the page's own app stays on the sign-in screen).
    token = await page.evaluate(async () => {
      const res = await fetch('/api/register', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: 'cy', password: 'correct horse battery' }),
      });
      return (await res.json()).token;
    });
    assert.equal(typeof token, 'string');
  });

  after(async () => {
    if (page) {
      await page.evaluate(() => window.testConn?.stop()).catch(() => {});
      assert.deepEqual(page.problems, [], 'no page errors or CSP violations');
    }
    await cleanup({ browser, servers: [server] });
  });

  /** A Connection on the page as `window.testConn`, with these timings, started and online. */
  async function connect(timing) {
    await page.evaluate(async ({ token, timing }) => {
      window.testConn?.stop();
      const { Connection } = await import('/js/connection.js');
      const conn = new Connection({ token, resume: () => ({}), timing });
      window.testConn = conn;
      window.testStatuses = [];
      conn.on('status', ({ status }) => window.testStatuses.push(status));
      conn.start();
    }, { token, timing });
    await waitStatus('online');
  }

  function waitStatus(status, timeout = WAIT_MS) {
    return page.waitForFunction((s) => window.testConn.status === s, status, { timeout });
  }

  test('an idle link is checked with ping; one that stops answering is dropped and replaced', async (t) => {
    const relay = page.relay;
    // (the first reconnect waits 1-2 s: time for the test to unmute the relay before it)
    await connect({ idlePingMs: 400, pingDeadlineMs: 600, backoffFirstMs: 2000 });
    // Idle: pings go out and are answered, the link stays.
    const pingsBefore = relay.sent.ping ?? 0;
    await waitUntil(() => (relay.sent.ping ?? 0) >= pingsBefore + 2);
    assert.equal(await page.evaluate(() => window.testStatuses.join(',')), 'connecting,online', 'answered pings keep the link');
    const auths = relay.sent.auth;

    // The server's frames stop arriving (a dead NAT mapping, a sleeping laptop): the next ping
    // goes unanswered, and after its deadline the link is dropped and the page reconnects.
    relay.muted = true;
    const mutedAt = Date.now();
    const framesAtMute = relay.frames.length;
    await page.waitForFunction(() => window.testConn.status !== 'online', null, { timeout: WAIT_MS });
    const noticedMs = Date.now() - mutedAt;
    relay.muted = false;
    // The unanswered ping may have gone out just before the mute (its answer then muted) or
    // after it; nothing but pings went out since.
    const since = relay.frames.slice(Math.max(framesAtMute - 1, 0)).map((f) => f.type);
    assert.ok(since.includes('ping'), `an unanswered ping is what found it dead: ${since}`);
    assert.ok(
      relay.frames.slice(framesAtMute).every((f) => f.type === 'ping'),
      `only pings went out while muted: ${since}`,
    );
    await waitStatus('online');
    assert.ok(relay.sent.auth > auths, 'a new socket was authenticated');
    // idle 400 + deadline 600 = 1 s at most, plus scheduling slack
    assert.ok(noticedMs < 3000, `dead link noticed after ${noticedMs} ms`);
    t.diagnostic(`dead link noticed ${noticedMs} ms after the server's frames stopped (idle 400 + deadline 600)`);
  });

  test('the tab focused or shown again retries at once instead of waiting out the backoff', async () => {
    const relay = page.relay;
    // A backoff far longer than the test: only the wake-up can reconnect in time.
    await connect({ backoffFirstMs: 60000, backoffMaxMs: 60000 });
    for (const wake of ['focus', 'visibilitychange']) {
      relay.cut();
      await waitStatus('waiting');
      const retryIn = await page.evaluate(() => window.testConn.retryAt - Date.now());
      assert.ok(retryIn > 20000, `the next attempt is far off (${retryIn} ms)`);
      await page.evaluate((type) => {
        if (type === 'focus') window.dispatchEvent(new Event('focus'));
        else document.dispatchEvent(new Event('visibilitychange'));
      }, wake);
      await waitStatus('online', 2000);
    }
  });

  test('the reconnect wait doubles from 0.5 s to at most 5 s, with jitter; `online` resets it', async () => {
    const result = await page.evaluate(async () => {
      window.testConn?.stop();
      const { Connection, TIMING } = await import('/js/connection.js');
      const conn = new Connection({ token: 'unused', resume: () => ({}) });
      let attempts = 0;
      conn.connect = () => {
        attempts++;
      };
      const waits = [];
      for (let i = 0; i < 16; i++) {
        const before = Date.now();
        conn.scheduleReconnect();
        clearTimeout(conn.timers.retry);
        waits.push(conn.retryAt - before);
      }
      const grownTo = conn.attempt;
      conn.networkBack();
      return { TIMING: { ...TIMING }, waits, grownTo, attemptAfterOnline: conn.attempt, attempts };
    });
    const { waits, TIMING } = result;
    assert.equal(TIMING.backoffFirstMs, 500);
    assert.equal(TIMING.backoffMaxMs, 5000);
    assert.ok(waits[0] >= 250 && waits[0] <= 505, `first wait ${waits[0]} ms`);
    for (const [i, wait] of waits.entries()) {
      const base = Math.min(5000, 500 * 2 ** i);
      assert.ok(wait >= base / 2 && wait <= base + 5, `wait ${i}: ${wait} ms within [${base / 2}, ${base}]`);
    }
    const capped = waits.slice(4);
    assert.ok(new Set(capped).size > 1, `jittered, not all equal: ${capped}`);
    assert.equal(result.grownTo, 16);
    assert.equal(result.attemptAfterOnline, 0, 'the network coming back resets the backoff');
    assert.equal(result.attempts, 1, '...and tries at once');
  });
});

/** Polls a condition in the test process (the relay's counters live here, not in the page). */
async function waitUntil(cond, timeout = WAIT_MS) {
  const until = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
