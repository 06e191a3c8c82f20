// read.test.mjs — read markers follow the person, not the browser: what ana reads on her laptop
// stops counting as unread on her phone (another browser, its own storage), live and after the
// phone reloads; what she has not read stays unread on both.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, cleanup, openRoom, send, waitForMessage,
  waitOnline,
} from './harness.mjs';

browserSuite('read markers across devices', { timeout: 90000 }, () => {
  let server;
  let browser;
  let laptop;
  let phone;
  let bob;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    laptop = await openPage(browser, server);
    phone = await openPage(browser, server, { viewport: { width: 1100, height: 800 } });
    bob = await openPage(browser, server);
  });

  after(async () => {
    for (const page of [laptop, phone, bob]) if (page) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  const badge = (page, room) => page.locator('#room-list .nav-item', { hasText: room }).locator('.badge');

  test('reading on one device clears the unread count on the other', async () => {
    await signUp(laptop, 'ana');
    await signUp(phone, 'ana', 'correct horse battery', 'signin');
    await signUp(bob, 'bob');

    // ana looks at another room on both devices while bob writes in general.
    for (const page of [laptop, phone]) {
      if (page === laptop) {
        await page.click('#btn-create');
        await page.fill('#create-name', 'elsewhere');
        await page.press('#create-name', 'Enter');
        await page.locator('#room-name', { hasText: 'elsewhere' }).waitFor();
      } else {
        await openRoom(page, 'elsewhere');
      }
    }
    for (const text of ['one', 'two', 'three']) await send(bob, text);
    for (const page of [laptop, phone]) {
      await badge(page, 'general').filter({ hasText: '3' }).waitFor();
    }

    // She reads general on the laptop: the phone's count goes too, without opening it.
    await openRoom(laptop, 'general');
    await waitForMessage(laptop, 'three');
    await badge(laptop, 'general').waitFor({ state: 'detached' });
    await badge(phone, 'general').waitFor({ state: 'detached' });
    assert.match(await phone.textContent('#room-name'), /elsewhere/, 'the phone stayed where it was');

    // A new message is unread on both; the marker holds across a reload of the phone.
    await openRoom(laptop, 'elsewhere');
    await send(bob, 'four');
    for (const page of [laptop, phone]) await badge(page, 'general').filter({ hasText: '1' }).waitFor();
    await phone.evaluate(() => {
      // Forget this browser's own marks: what it shows next comes from the server.
      for (const key of Object.keys(localStorage)) if (key.includes('read')) localStorage.removeItem(key);
    });
    await phone.reload();
    await waitOnline(phone);
    await badge(phone, 'general').filter({ hasText: '1' }).waitFor();
    assert.equal(await badge(phone, 'general').textContent(), '1', 'only the message read nowhere is unread');
  });
});
