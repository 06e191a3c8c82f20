// rooms.test.mjs — the room browser with many rooms (issue 17): pages of 50 with "Load more",
// a search box that filters by part of the name, and the per-user room cap shown as a clear
// error when creating a room.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, cleanup,
} from './harness.mjs';

const CAP = 60;

/** Creates rooms as the signed-in person over a WebSocket of its own, one after another. */
async function createRooms(page, names) {
  const failures = await page.evaluate(async (names) => {
    const { token } = JSON.parse(localStorage.getItem('natter.session'));
    const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/ws`);
    const replies = new Map();
    ws.onmessage = (e) => {
      const frame = JSON.parse(e.data);
      if (frame.ref) replies.get(frame.ref)?.(frame);
    };
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    const call = (ref, type, data) => new Promise((resolve) => {
      replies.set(ref, resolve);
      ws.send(JSON.stringify({ type, ref, data }));
    });
    const failed = [];
    const auth = await call('a', 'auth', { token, presence: false });
    if (auth.type !== 'ok') failed.push(`auth: ${JSON.stringify(auth)}`);
    for (const [i, name] of names.entries()) {
      const reply = await call(`r${i}`, 'room.create', { name });
      if (reply.type !== 'ok') failed.push(`${name}: ${JSON.stringify(reply.error)}`);
    }
    ws.close();
    return failed;
  }, names);
  assert.deepEqual(failures, []);
}

function rows(page) {
  return page.locator('#browse-list .browse-row .browse-name').allTextContents();
}

browserSuite('browsing many rooms', { timeout: 120000 }, () => {
  let server;
  let browser;
  let ana;

  before(async () => {
    server = await NatterServer.start({ extraArgs: ['--max-rooms-per-user', String(CAP), '--room-create-per-minute', '1000',
      // 59 creations in a row on one socket: past the per-connection burst of 40.
      '--rate-burst', '1000', '--rate-per-sec', '1000'] });
    browser = await launchBrowser();
    ana = await openPage(browser, server);
    await signUp(ana, 'ana');
    // 59 rooms lot-00 .. lot-58, created out of order; the 60th is made in the dialog below.
    const names = Array.from({ length: CAP - 1 }, (_, i) => `lot-${String(i).padStart(2, '0')}`);
    await createRooms(ana, names.reverse());
  });

  after(async () => {
    if (ana) assert.deepEqual(ana.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('the last room under the cap is created, the next is refused with a clear error', async () => {
    await ana.click('#btn-create');
    await ana.fill('#create-name', 'lot-59');
    await ana.press('#create-name', 'Enter');
    await ana.locator('#room-name', { hasText: 'lot-59' }).waitFor();
    await ana.click('#btn-create');
    await ana.fill('#create-name', 'lot-60');
    await ana.press('#create-name', 'Enter');
    await ana.locator('#create-error', { hasText: 'as many rooms as this server allows' }).waitFor();
    assert.equal(await ana.isVisible('#dlg-create'), true, 'the dialog stays open');
    await ana.keyboard.press('Escape');
  });

  test('pages of 50 in name order, "Load more" adds the rest once', async () => {
    await ana.click('#btn-browse');
    await ana.locator('#browse-status', { hasText: '50 rooms shown, more below.' }).waitFor();
    const first = await rows(ana);
    assert.equal(first.length, 50);
    assert.equal(first[0], 'general');
    assert.equal(first[1], 'lot-00');
    assert.equal(first[49], 'lot-48');
    assert.equal(await ana.isVisible('#browse-more'), true);
    await ana.click('#browse-more');
    await ana.locator('#browse-status', { hasText: '61 rooms.' }).waitFor();
    const all = await rows(ana);
    const expected = ['general', ...Array.from({ length: 60 }, (_, i) => `lot-${String(i).padStart(2, '0')}`)];
    assert.deepEqual(all, expected, 'every room once, in name order');
    assert.equal(await ana.isVisible('#browse-more'), false, 'nothing more to load');
  });

  test('the search box filters by part of the name, case-insensitively', async () => {
    await ana.fill('#browse-query', 'LOT-5');
    await ana.locator('#browse-status', { hasText: '10 rooms matching “LOT-5”.' }).waitFor();
    assert.deepEqual(await rows(ana), Array.from({ length: 10 }, (_, i) => `lot-5${i}`));
    assert.equal(await ana.isVisible('#browse-more'), false);
    // Joining from a search result works as from the full list.
    const row = ana.locator('#browse-list .browse-row', { hasText: 'lot-55' });
    await row.getByRole('button', { name: 'Open #lot-55' }).click();
    await ana.locator('#room-name', { hasText: 'lot-55' }).waitFor();

    await ana.click('#btn-browse');
    await ana.fill('#browse-query', 'no-such-room');
    await ana.locator('#browse-status', { hasText: 'No rooms match “no-such-room”.' }).waitFor();
    assert.deepEqual(await rows(ana), []);
    // Clearing the search shows the first page again.
    await ana.fill('#browse-query', '');
    await ana.locator('#browse-status', { hasText: '50 rooms shown, more below.' }).waitFor();
    await ana.keyboard.press('Escape');
  });
});
