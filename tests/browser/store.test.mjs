// store.test.mjs — the client's store, loaded as the page loads it (an ES module from the
// server, in Chromium), driven directly: a long room lets its oldest messages go so that a tab
// left open stays small, but not while the reader is scrolled up in it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, NatterServer, launchBrowser, openPage, cleanup } from './harness.mjs';

browserSuite('the store keeps long rooms small', { timeout: 90000 }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    page = await openPage(browser, server);
  });

  after(async () => {
    if (page) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('the oldest messages go past the limit, unless the reader is scrolled up there', async () => {
    const result = await page.evaluate(async () => {
      const { Store, MAX_KEPT_MESSAGES, KEEP_AFTER_TRIM } = await import('/js/store.js');
      const store = new Store();
      store.setMe({ id: 1, name: 'me', guest: false });
      const bob = { id: 2, name: 'bob', guest: false };
      const message = (room, seq) => ({ id: room * 100000 + seq, room, seq, sender: bob, body: `m${seq}`, ts: 1, client_id: `c${seq}` });
      for (const id of [7, 8]) {
        store.upsertRoom({ id, name: `r${id}`, kind: 'public', member_count: 2, last_seq: 0, joined: true });
      }
      store.setCurrent(7);
      const feed = (room, from, to) => {
        for (let seq = from; seq <= to; seq++) store.addMessages(room, [message(room, seq)]);
      };
      const span = (room) => {
        const r = store.room(room);
        return { count: r.messages.length, first: r.messages[0].seq, last: r.messages.at(-1).seq, hasOlder: r.hasOlder };
      };
      feed(7, 1, MAX_KEPT_MESSAGES);
      const atLimit = span(7);
      feed(7, MAX_KEPT_MESSAGES + 1, MAX_KEPT_MESSAGES + 1);
      const trimmed = span(7);
      // Scrolled up in room 7: it keeps everything; room 8, not open, is trimmed as usual.
      store.setReadingOlder(true);
      feed(7, MAX_KEPT_MESSAGES + 2, MAX_KEPT_MESSAGES + 400);
      feed(8, 1, MAX_KEPT_MESSAGES + 1);
      const whileUp = span(7);
      const other = span(8);
      store.setReadingOlder(false);
      feed(7, MAX_KEPT_MESSAGES + 401, MAX_KEPT_MESSAGES + 401);
      const backDown = span(7);
      return { MAX_KEPT_MESSAGES, KEEP_AFTER_TRIM, atLimit, trimmed, whileUp, other, backDown };
    });
    const { MAX_KEPT_MESSAGES: max, KEEP_AFTER_TRIM: keep } = result;
    assert.deepEqual(result.atLimit, { count: max, first: 1, last: max, hasOlder: false });
    assert.deepEqual(result.trimmed, { count: keep, first: max + 2 - keep, last: max + 1, hasOlder: true });
    assert.equal(result.whileUp.count, keep + 399, 'nothing goes while the reader is scrolled up');
    assert.deepEqual(result.other, { count: keep, first: max + 2 - keep, last: max + 1, hasOlder: true });
    assert.deepEqual(result.backDown, { count: keep, first: max + 402 - keep, last: max + 401, hasOlder: true });
  });
});
