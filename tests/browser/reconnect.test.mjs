// reconnect.test.mjs — the connection under stress, in real browsers: the server stopped and
// started again mid-conversation, a link cut while others talk (resume), cut off for longer than
// the server replays (the room is reset and reloaded), a reply lost after the server stored the
// message (resend with the same client_id), a failed send retried by hand.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, messageTexts,
  cleanup, tempDir, waitOnline,
} from './harness.mjs';

const RECONNECT_MS = 25000;

/** The texts of the open room's messages, asserting no text appears twice. */
async function uniqueTexts(page) {
  const texts = await messageTexts(page);
  const seen = new Set();
  for (const t of texts) {
    assert.ok(!seen.has(t), `"${t}" is shown once, not twice (${JSON.stringify(texts)})`);
    seen.add(t);
  }
  return texts;
}

async function waitConnected(page) {
  await page.waitForFunction(() => document.getElementById('me-status')?.textContent === 'Online', null, { timeout: RECONNECT_MS });
}

/** ana (her socket through the test relay) and bob, signed up, with bob's "hello" seen by ana. */
async function anaRelayedAndBob(browser, server) {
  const ana = await openPage(browser, server, { relay: true });
  await signUp(ana, 'ana');
  const bob = await openPage(browser, server);
  await signUp(bob, 'bob');
  await send(bob, 'hello');
  await waitForMessage(ana, 'hello');
  return { ana, bob };
}

browserSuite('server restart mid-conversation', { timeout: 120000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await NatterServer.start({ dataDir: tempDir() });
    browser = await launchBrowser();
  });

  after(async () => {
    await cleanup({ browser, servers: [server] });
  });

  test('the banner shows, the page reconnects, a message typed while down is delivered once', async () => {
    const ana = await openPage(browser, server);
    await signUp(ana, 'ana');
    const bob = await openPage(browser, server);
    await signUp(bob, 'bob');
    await send(ana, 'before the restart');
    await waitForMessage(bob, 'before the restart');
    await send(bob, 'still here');
    await waitForMessage(ana, 'still here');

    const port = server.port;
    await server.stop();
    for (const page of [ana, bob]) {
      await page.locator('#banner:not([hidden])', { hasText: /Connection lost|Reconnecting|Cannot reach/ }).waitFor();
    }
    assert.equal(await ana.textContent('#me-status'), 'Connecting…');

    await send(ana, 'written while the server was down');
    const pending = ana.locator('.msg.pending', { hasText: 'written while the server was down' });
    await pending.locator('.msg-state', { hasText: 'Waiting for connection' }).waitFor();
    await ana.locator('#banner', { hasText: '1 message will be sent' }).waitFor();

    server = await NatterServer.start({ dataDir: server.dataDir, port });
    assert.equal(server.port, port);
    await waitConnected(ana);
    await waitConnected(bob);
    await waitForMessage(bob, 'written while the server was down');
    await waitForMessage(ana, 'written while the server was down');
    await pending.waitFor({ state: 'detached' });
    await ana.locator('#banner').waitFor({ state: 'hidden' });

    await send(bob, 'after the restart');
    await waitForMessage(ana, 'after the restart');
    const expected = ['before the restart', 'still here', 'written while the server was down', 'after the restart'];
    assert.deepEqual(await uniqueTexts(ana), expected);
    assert.deepEqual(await uniqueTexts(bob), expected);
    // What the server stored is the same: a fresh load of the history shows it once.
    await bob.reload();
    await waitOnline(bob);
    await waitForMessage(bob, 'after the restart');
    assert.equal(await bob.evaluate(() => sessionStorage.length), 0, 'no unsent message left behind');
    assert.deepEqual(await uniqueTexts(bob), expected);
    for (const page of [ana, bob]) assert.deepEqual(page.problems, []);
  });
});

browserSuite('resume and exactly-once sends', { timeout: 120000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    ({ ana, bob } = await anaRelayedAndBob(browser, server));
  });

  after(async () => {
    for (const page of [ana, bob]) if (page) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('messages missed while cut off appear once, in order; the offline one is sent once', async () => {
    const relay = ana.relay;
    relay.blocked = true;
    relay.cut();
    await ana.locator('#banner:not([hidden])').waitFor();
    for (const text of ['missed one', 'missed two', 'missed three']) await send(bob, text);
    await waitForMessage(bob, 'missed three');
    // Two new people join general meanwhile: `join` entries of its stream, which the resume
    // brings; in a row, they show as one line.
    for (const username of ['carol', 'dave']) {
      const res = await fetch(`${server.url}/api/register`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username, password: 'correct horse battery' }),
      });
      assert.equal(res.status, 201);
    }
    await bob.locator('#message-list .notice', { hasText: 'carol and dave joined' }).waitFor();
    await send(ana, 'ana wrote this offline');
    await ana.locator('.msg.pending', { hasText: 'ana wrote this offline' }).waitFor();

    const authsBefore = relay.sent.auth ?? 0;
    relay.blocked = false;
    // "Retry now" skips the rest of the backoff. (It shows between attempts; an attempt that
    // hangs ends after the client's 10 s connect timeout, so allow for that on a loaded machine.)
    await ana.locator('#banner-retry').waitFor({ state: 'visible', timeout: RECONNECT_MS });
    // The backoff timer may win the race and reconnect first, hiding the button: that is fine.
    await ana.locator('#banner-retry').click({ timeout: 3000 }).catch(() => {});
    await waitConnected(ana);
    await waitForMessage(ana, 'ana wrote this offline');
    await waitForMessage(bob, 'ana wrote this offline');
    await waitForMessage(ana, 'missed three');

    const auth = relay.frames.filter((f) => f.type === 'auth').at(-1);
    assert.ok(relay.sent.auth > authsBefore);
    assert.equal(typeof auth.data.resume, 'object', 'the reconnect asks to resume');
    // general's entries 1 and 2 are ana's and bob's joins; "hello" is 3.
    assert.deepEqual(Object.values(auth.data.resume), [3], 'from seq 3, the last entry ana had');

    const expected = ['hello', 'missed one', 'missed two', 'missed three', 'ana wrote this offline'];
    assert.deepEqual(await uniqueTexts(ana), expected);
    assert.deepEqual(await uniqueTexts(bob), expected);
    // The joins that happened while ana was away show for her as for bob, once, in one line.
    for (const page of [ana, bob]) {
      const joined = page.locator('#message-list .notice', { hasText: /carol|dave/ });
      await joined.first().waitFor();
      assert.deepEqual(await joined.allTextContents(), ['carol and dave joined']);
    }
    const sends = relay.frames.filter((f) => f.type === 'message.send' && f.data.body === 'ana wrote this offline');
    assert.equal(sends.length, 1, 'sent once, after the resume');
  });

  test('a send whose reply was lost is resent with the same client_id and stored once', async () => {
    const relay = ana.relay;
    let swallowed = false;
    relay.onClientFrame = (frame, r) => {
      if (frame.type !== 'message.send' || swallowed) return false;
      swallowed = true;
      relay.muted = true; // the server stores it, but its reply never arrives...
      r.forward();
      setTimeout(() => {
        relay.cut(); // ...and then the link drops
        relay.muted = false;
      }, 300);
      return true;
    };
    await send(ana, 'stored once');
    await waitForMessage(bob, 'stored once');
    await waitConnected(ana);
    await waitForMessage(ana, 'stored once');
    relay.onClientFrame = null;

    const sends = relay.frames.filter((f) => f.type === 'message.send' && f.data.body === 'stored once');
    assert.equal(sends.length, 2, 'sent, then resent after the reconnect');
    assert.equal(sends[0].data.client_id, sends[1].data.client_id, 'with the same client_id');
    await send(bob, 'and then');
    await waitForMessage(ana, 'and then');
    const tail = (await uniqueTexts(ana)).slice(-2);
    assert.deepEqual(tail, ['stored once', 'and then']);
    assert.deepEqual((await uniqueTexts(bob)).slice(-2), tail);
  });

  test('a failed send says so and can be retried', async () => {
    const relay = ana.relay;
    relay.onClientFrame = (frame, r) => {
      if (frame.type !== 'message.send') return false;
      r.reply({ type: 'error', ref: frame.ref, error: { code: 'internal', message: 'test failure' } });
      return true;
    };
    await send(ana, 'try, try again');
    const failed = ana.locator('.msg.failed', { hasText: 'try, try again' });
    await failed.locator('.msg-state', { hasText: 'Not sent' }).waitFor();
    relay.onClientFrame = null;
    await failed.getByRole('button', { name: 'Retry' }).click();
    await waitForMessage(ana, 'try, try again');
    await waitForMessage(bob, 'try, try again');
    assert.equal(await ana.locator('.msg.failed').count(), 0);
    const sends = relay.frames.filter((f) => f.type === 'message.send' && f.data.body === 'try, try again');
    assert.equal(sends.length, 2);
    assert.equal(sends[0].data.client_id, sends[1].data.client_id, 'a retry keeps the client_id');
    await uniqueTexts(bob);
  });
});

browserSuite('too far behind to resume', { timeout: 120000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;

  before(async () => {
    server = await NatterServer.start({ extraArgs: ['--resume-limit', '2'] });
    browser = await launchBrowser();
    ({ ana, bob } = await anaRelayedAndBob(browser, server));
  });

  after(async () => {
    for (const page of [ana, bob]) if (page) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('a room reset by the server is reloaded whole: nothing missing, nothing twice', async () => {
    const relay = ana.relay;
    const resets = [];
    const replayed = [];
    relay.onServerFrame = (raw) => {
      const frame = JSON.parse(raw);
      if (frame.type === 'ok' && Array.isArray(frame.data?.reset)) resets.push(...frame.data.reset);
      if (frame.type === 'message') replayed.push(frame.data.body);
    };
    relay.blocked = true;
    relay.cut();
    await ana.locator('#banner:not([hidden])').waitFor();
    const missed = ['gone 1', 'gone 2', 'gone 3', 'gone 4'];
    for (const text of missed) await send(bob, text);
    await waitForMessage(bob, 'gone 4');
    relay.blocked = false;
    await ana.locator('#banner-retry').waitFor({ state: 'visible', timeout: RECONNECT_MS });
    await ana.locator('#banner-retry').click({ timeout: 3000 }).catch(() => {});
    await waitConnected(ana);
    await waitForMessage(ana, 'gone 4');

    assert.equal(resets.length, 1, 'the server reset the room instead of replaying it');
    assert.deepEqual(replayed, [], 'and replayed none of it');
    assert.deepEqual(await uniqueTexts(ana), ['hello', ...missed], 'reloaded from history, whole');
    // Live messages go on.
    await send(bob, 'and now live');
    await waitForMessage(ana, 'and now live');
    assert.deepEqual(await uniqueTexts(ana), ['hello', ...missed, 'and now live']);
  });
});
