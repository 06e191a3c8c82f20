// search.test.mjs — message search in the browser (issue 19): Ctrl+K / Cmd+K and "/" open the
// panel, Escape closes it; a word finds messages across rooms and a DM with its hits in `mark`
// elements; markup in a message stays text; a CJK substring; `from:`; the server's own words for
// a bad query; a late answer to an older query is dropped; choosing a result opens the room at
// that message, highlighted, with its neighbours loaded (and a thread reply in its thread, a
// public room not joined after joining it); "Load more" pages through; at 375 px it is the whole
// screen. Needs a server with `search` (docs/protocol.md section 4); on one without, the tests
// that need answers are skipped.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, openRoom,
  cleanup,
} from './harness.mjs';

/**
 * One request over a second, raw WebSocket of `page`'s session (kept on the page between calls):
 * the reply frame. Waits out `rate_limited`.
 */
function raw(page, type, data) {
  return page.evaluate(async ([t, d]) => {
    if (!window.__natterRaw) {
      const { token } = JSON.parse(localStorage.getItem('natter.session'));
      // (`?raw`: past the test relay, which takes sockets whose address ends in /ws)
      const ws = new WebSocket(`ws://${window.location.host}/ws?raw`);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      let ref = 0;
      const waiting = new Map();
      ws.onmessage = (e) => {
        const f = JSON.parse(e.data);
        if (f.ref && waiting.has(f.ref)) {
          waiting.get(f.ref)(f);
          waiting.delete(f.ref);
        }
      };
      const once = (type2, data2) => new Promise((resolve) => {
        const id = String(++ref);
        waiting.set(id, resolve);
        ws.send(JSON.stringify(data2 === undefined ? { type: type2, ref: id } : { type: type2, ref: id, data: data2 }));
      });
      window.__natterRaw = async (type2, data2) => {
        for (;;) {
          const f = await once(type2, data2);
          if (f.type !== 'error' || f.error.code !== 'rate_limited') return f;
          await new Promise((r) => setTimeout(r, f.error.retry_after_ms ?? 100));
        }
      };
      await window.__natterRaw('auth', { token, presence: false });
    }
    return window.__natterRaw(t, d);
  }, [type, data]);
}

/** Sends `bodies` to room `roomId` from `page`'s session; their messages. */
async function sendAll(page, roomId, bodies, extra = {}) {
  const out = [];
  for (const [i, body] of bodies.entries()) {
    const f = await raw(page, 'message.send', { room: roomId, body, client_id: `s-${Date.now()}-${i}-${Math.random()}`, ...extra });
    assert.equal(f.type, 'ok', JSON.stringify(f));
    out.push(f.data.message);
  }
  return out;
}

/** Opens the panel with Ctrl+K, types `query`, waits for its answer (results, none or error). */
async function search(page, query) {
  if (!(await page.locator('#dlg-search').isVisible())) {
    await page.locator('#timeline').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('Control+k');
  }
  await page.fill('#search-query', query);
  await page.press('#search-query', 'Enter');
  await page.waitForFunction(() => {
    const s = document.getElementById('search-status').textContent;
    return s !== '' && s !== 'Searching…';
  });
}

/** What the results show: per result its author, room, text and marked runs. */
function shown(page) {
  return page.$$eval('#search-results .search-result', (els) => els.map((el) => ({
    author: el.querySelector('.search-author').textContent,
    room: el.querySelector('.search-room').textContent,
    text: el.querySelector('.search-text').textContent,
    marks: [...el.querySelectorAll('.search-text mark')].map((m) => m.textContent),
    tags: [...el.querySelectorAll('.search-tag')].map((m) => m.textContent),
  })));
}

async function closeSearch(page) {
  await page.keyboard.press('Escape');
  await page.locator('#dlg-search').waitFor({ state: 'hidden' });
}

browserSuite('message search', { timeout: 180000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;
  let general;
  let ops;
  /** does the server answer `search`? */
  let searchable = false;

  const needsSearch = (t) => {
    if (searchable) return false;
    t.skip('this server has no `search` request');
    return true;
  };

  before(async () => {
    server = await NatterServer.start({ extraArgs: ['--rate-per-sec', '500', '--rate-burst', '500'] });
    browser = await launchBrowser();
    ana = await openPage(browser, server, { relay: true });
    await signUp(ana, 'ana');
    bob = await openPage(browser, server);
    await signUp(bob, 'bob');
    await ana.waitForFunction(() => /^\/r\/\d+$/.test(window.location.pathname));
    general = Number(new URL(ana.url()).pathname.split('/')[2]);
    const probe = await raw(ana, 'search', { query: 'anything' });
    searchable = probe.type === 'ok' && Array.isArray(probe.data?.results);

    // ana creates #ops, bob joins; a DM between them.
    const created = await raw(ana, 'room.create', { name: 'ops' });
    ops = created.data.room.id;
    await raw(bob, 'room.join', { room: ops });
    const dm = (await raw(bob, 'dm.open', { user: 'ana' })).data.room.id;
    await sendAll(bob, general, ['the deploy failed again', 'nothing to see here']);
    await sendAll(ana, ops, ['Deploy went fine this time']);
    await sendAll(bob, dm, ['deploy keys rotated']);
    await waitForMessage(ana, 'nothing to see here');
  });

  after(async () => {
    for (const page of [ana, bob]) if (page) assert.deepEqual(page.problems, [], 'no page errors or CSP violations');
    await cleanup({ browser, servers: [server] });
  });

  test('Ctrl+K, Cmd+K and "/" open the search, Escape closes it', async () => {
    const dialog = ana.locator('#dlg-search');
    // From the composer: Ctrl+K opens it with the cursor in the box.
    await ana.focus('#composer-input');
    await ana.keyboard.press('Control+k');
    await dialog.waitFor();
    assert.equal(await ana.evaluate(() => document.activeElement.id), 'search-query');
    await ana.keyboard.type('some text');
    await closeSearch(ana);
    // "/" in the composer is a character...
    await ana.focus('#composer-input');
    await ana.keyboard.press('/');
    assert.equal(await ana.inputValue('#composer-input'), '/');
    assert.equal(await dialog.isVisible(), false);
    await ana.fill('#composer-input', '');
    // ...elsewhere it opens the search.
    await ana.locator('#timeline').click({ position: { x: 5, y: 5 } });
    await ana.keyboard.press('/');
    await dialog.waitFor();
    assert.equal(await ana.evaluate(() => document.activeElement.id), 'search-query');
    assert.equal(await ana.inputValue('#search-query'), 'some text', 'the last search is kept');
    await closeSearch(ana);
    await ana.keyboard.press('Meta+k');
    await dialog.waitFor();
    await closeSearch(ana);
    // The header's button, and its close button.
    await ana.click('#btn-search');
    await dialog.waitFor();
    await ana.click('#search-close');
    await dialog.waitFor({ state: 'hidden' });
  });

  test('a word finds messages across rooms and a DM, hits marked', async (t) => {
    if (needsSearch(t)) return;
    await search(ana, 'deploy');
    const results = await shown(ana);
    // Newest first: bob's DM, ana's #ops, bob's #general.
    assert.deepEqual(results.map((r) => [r.author, r.room, r.text]), [
      ['bob', 'bob', 'deploy keys rotated'],
      ['ana', '#ops', 'Deploy went fine this time'],
      ['bob', '#general', 'the deploy failed again'],
    ]);
    for (const r of results) assert.deepEqual(r.marks.map((m) => m.toLowerCase()), ['deploy']);
    assert.equal(await ana.textContent('#search-status'), '3 messages.');
    // Only `mark` elements inside a result's text.
    const tags = await ana.$$eval('#search-results .search-text *', (els) => [...new Set(els.map((el) => el.tagName))]);
    assert.deepEqual(tags, ['MARK']);
    // Best match: the same three (in the server's order).
    await ana.click('#dlg-search [data-order="relevance"]');
    await ana.waitForFunction(() => document.getElementById('search-status').textContent === '3 messages.'
      && document.querySelectorAll('#search-results .search-result').length === 3);
    assert.equal(ana.relay.frames.filter((f) => f.type === 'search').at(-1).data.order, 'relevance');
    await ana.click('#dlg-search [data-order="newest"]');
    await ana.waitForFunction(() => document.querySelectorAll('#search-results .search-result').length === 3);
    // No match.
    await search(ana, 'kangaroo');
    assert.equal(await ana.locator('#search-results .search-result').count(), 0);
    assert.match(await ana.textContent('#search-status'), /^No messages match “kangaroo”/);
    await closeSearch(ana);
  });

  test('markup in a message shows as text in the results', async (t) => {
    if (needsSearch(t)) return;
    const body = '<img src=x onerror="window.__xss=1"> xsstoken <b>bold</b><script>window.__xss=2</script>';
    await sendAll(bob, general, [body]);
    await search(ana, 'xsstoken');
    const [r] = await shown(ana);
    assert.equal(r.text, body);
    assert.deepEqual(r.marks, ['xsstoken']);
    const elements = await ana.$$eval('#search-results .search-text *', (els) => els.map((el) => el.tagName));
    assert.deepEqual(elements, ['MARK']);
    assert.equal(await ana.evaluate(() => window.__xss), undefined);
    await closeSearch(ana);
  });

  test('a CJK substring; from:; the server says what is wrong with a query', async (t) => {
    if (needsSearch(t)) return;
    await sendAll(ana, general, ['東京で会いましょう', '大阪で会議']);
    await search(ana, '会い');
    const cjk = await shown(ana);
    assert.deepEqual(cjk.map((r) => r.text), ['東京で会いましょう']);
    assert.ok(cjk[0].marks.join('').includes('会い'), `marked: ${JSON.stringify(cjk[0].marks)}`);

    await search(ana, 'deploy from:bob');
    assert.deepEqual((await shown(ana)).map((r) => r.text), ['deploy keys rotated', 'the deploy failed again']);

    // Errors: the server's message, as an error.
    for (const [query, code] of [['deploy from:nobody', 'unknown_user'], ['deploy in:nowhere', 'unknown_room'], ['"unclosed', 'invalid_request']]) {
      const f = await raw(ana, 'search', { query });
      assert.equal(f.error?.code, code, `${query}: ${JSON.stringify(f)}`);
      await search(ana, query);
      assert.equal(await ana.getAttribute('#search-status', 'data-state'), 'error', query);
      assert.equal(await ana.textContent('#search-status'), f.error.message);
      assert.equal(await ana.locator('#search-results .search-result').count(), 0);
    }
    await closeSearch(ana);
  });

  test('a late answer to an older query is dropped', async (t) => {
    if (needsSearch(t)) return;
    // The answer to "deploy" is held back until after the one to "xsstoken" has come.
    ana.relay.onClientFrame = (frame, relay) => {
      if (frame.type !== 'search' || frame.data.query !== 'deploy') return false;
      setTimeout(() => relay.forward(), 1200);
      return true;
    };
    try {
      await ana.locator('#timeline').click({ position: { x: 5, y: 5 } });
      await ana.keyboard.press('Control+k');
      await ana.fill('#search-query', 'deploy');
      await ana.press('#search-query', 'Enter');
      await ana.fill('#search-query', 'xsstoken');
      await ana.press('#search-query', 'Enter');
      await ana.waitForFunction(() => document.getElementById('search-status').textContent === '1 message.');
      await ana.waitForTimeout(1800);
      assert.deepEqual((await shown(ana)).map((r) => r.marks), [['xsstoken']]);
      assert.equal(await ana.textContent('#search-status'), '1 message.');
    } finally {
      ana.relay.onClientFrame = null;
    }
    await closeSearch(ana);
  });

  test('choosing a result opens the room there, highlighted, with its neighbours', async (t) => {
    if (needsSearch(t)) return;
    const bodies = Array.from({ length: 130 }, (_, i) => (i === 20 ? 'a needle in the haystack' : `filler ${i + 1}`));
    const sent = await sendAll(bob, ops, bodies);
    const needle = sent[20].seq;
    await openRoom(ana, 'general');
    await search(ana, 'needle');
    const item = ana.locator('#search-results .search-result');
    assert.equal(await item.count(), 1);
    await item.click();
    await ana.locator('#dlg-search').waitFor({ state: 'hidden' });
    await ana.locator('#room-name', { hasText: 'ops' }).waitFor();
    const lit = ana.locator(`#message-list .msg.highlight[data-key="m${needle}"]`);
    await lit.waitFor();
    assert.equal(await lit.locator('.msg-text').textContent(), 'a needle in the haystack');
    assert.equal(new URL(ana.url()).pathname, `/r/${ops}/${needle}`);
    for (const neighbour of ['filler 20', 'filler 22']) {
      await ana.locator('#message-list .msg-text', { hasText: new RegExp(`^${neighbour}$`) }).waitFor();
    }

    // A reply kept to its thread: its thread opens.
    const [parent] = await sendAll(bob, general, ['where do we meet?']);
    await sendAll(bob, general, ['under the zebra crossing'], { thread: parent.seq });
    await search(ana, 'zebra');
    const [reply] = await shown(ana);
    assert.deepEqual(reply.tags, ['thread reply']);
    await ana.locator('#search-results .search-result').click();
    await ana.locator('#room-name', { hasText: 'general' }).waitFor();
    await ana.locator('#thread-parent .msg-text', { hasText: 'where do we meet?' }).waitFor();
    await ana.locator('#thread-list .msg-text', { hasText: 'under the zebra crossing' }).waitFor();
    await ana.click('#thread-close');

    // A public room ana is not in: found only with "Include public rooms", joined when chosen.
    const lonely = (await raw(bob, 'room.create', { name: 'lonely' })).data.room.id;
    const [platypus] = await sendAll(bob, lonely, ['a platypus sighting']);
    await search(ana, 'platypus');
    assert.match(await ana.textContent('#search-status'), /Include public rooms/);
    await ana.check('#search-public');
    await ana.waitForFunction(() => document.getElementById('search-status').textContent === '1 message.');
    assert.deepEqual((await shown(ana)).map((r) => [r.room, r.tags]), [['#lonely', ['not joined']]]);
    await ana.locator('#search-results .search-result').click();
    await ana.locator('#room-name', { hasText: 'lonely' }).waitFor();
    await ana.locator(`#message-list .msg.highlight[data-key="m${platypus.seq}"]`).waitFor();
    await ana.locator('.nav-item .nav-label', { hasText: /^lonely$/ }).waitFor();
    await ana.click('#btn-search');
    await ana.uncheck('#search-public');
    await closeSearch(ana);
  });

  test('"Load more" pages through the results', async (t) => {
    if (needsSearch(t)) return;
    await sendAll(bob, general, Array.from({ length: 45 }, (_, i) => `bulk item ${i + 1}`));
    await search(ana, 'bulk');
    const rows = ana.locator('#search-results .search-result');
    assert.equal(await rows.count(), 20);
    assert.equal(await ana.textContent('#search-status'), '20 messages shown, more below.');
    assert.equal((await shown(ana))[0].text, 'bulk item 45');
    await ana.click('#search-more');
    await ana.waitForFunction(() => document.querySelectorAll('#search-results .search-result').length === 40);
    await ana.click('#search-more');
    await ana.waitForFunction(() => document.querySelectorAll('#search-results .search-result').length === 45);
    await ana.locator('#search-more').waitFor({ state: 'hidden' });
    assert.equal(await ana.textContent('#search-status'), '45 messages.');
    const texts = (await shown(ana)).map((r) => r.text);
    assert.equal(new Set(texts).size, 45, 'no result twice');
    assert.deepEqual(texts, Array.from({ length: 45 }, (_, i) => `bulk item ${45 - i}`));
    await closeSearch(ana);
  });

  test('a long text is cut to an excerpt around its first hit (answers from the relay)', async () => {
    // The contract's reply, made up by the test relay: any server.
    const before = '🙂 word '.repeat(60);
    const after2 = ' tail 🙂'.repeat(60);
    const body = `${before}deploy${after2}`;
    ana.relay.onClientFrame = (frame, relay) => {
      if (frame.type !== 'search') return false;
      relay.reply({ type: 'ok', ref: frame.ref, data: { next: null, results: [{
        message: { id: 1, room: 77, seq: 5, sender: { id: 2, name: 'bob', guest: false }, body, ts: Date.now() },
        room: { id: 77, name: 'dm', kind: 'dm', peer: { id: 2, name: 'bob', guest: false } },
        parts: [{ text: before, hit: false }, { text: 'deploy', hit: true }, { text: after2, hit: false }],
      }] } });
      return true;
    };
    try {
      await search(ana, 'deploy');
      const [r] = await shown(ana);
      assert.equal(r.room, 'bob', 'a DM is named by the other person');
      assert.deepEqual(r.marks, ['deploy']);
      assert.ok(r.text.startsWith('…') && r.text.endsWith('…'), r.text);
      assert.ok(r.text.length <= 285 && r.text.includes('word deploy tail'), r.text);
      assert.ok(!/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(r.text), 'no half emoji');
    } finally {
      ana.relay.onClientFrame = null;
    }
    await closeSearch(ana);
  });

  test('375 px: the whole screen; a result opens the room', async (t) => {
    const phone = await openPage(browser, server, { viewport: { width: 375, height: 812 } });
    try {
      await signUp(phone, 'bob', 'correct horse battery', 'signin');
      // The header's button is an icon here.
      const button = phone.locator('#btn-search');
      assert.ok((await button.boundingBox()).width <= 40, 'an icon button');
      await button.click();
      const box = await phone.locator('#dlg-search').boundingBox();
      assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 375, 812], 'the whole screen');
      const scrollWidth = await phone.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(scrollWidth <= 375, 'no horizontal scroll');
      if (!searchable) {
        t.diagnostic('this server has no `search` request: results not checked');
        await closeSearch(phone);
        return;
      }
      await search(phone, 'haystack');
      const result = phone.locator('#search-results .search-result');
      assert.equal(await result.count(), 1);
      const r = await result.boundingBox();
      assert.ok(r.x >= 0 && r.x + r.width <= 375, 'the result fits');
      await result.click();
      await phone.locator('#dlg-search').waitFor({ state: 'hidden' });
      await phone.locator('#room-name', { hasText: 'ops' }).waitFor();
      await phone.locator('#message-list .msg.highlight .msg-text', { hasText: 'a needle in the haystack' }).waitFor();
      assert.deepEqual(phone.problems, []);
    } finally {
      await phone.context().close();
    }
  });
});
