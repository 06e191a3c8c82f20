// links.test.mjs — addresses: the URL names the open room (/r/<id>), Back and Forward move
// between rooms, a link to a message (/r/<id>/<seq>) opens the room at that message,
// highlighted, with the history around it (`history` `around`, then newer pages on scrolling
// down), an unknown path shows "Page not found", and the "New messages" divider sits at the read
// marker as it was when the room was opened, also after a reload.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, messageTexts,
  openRoom, waitOnline, cleanup,
} from './harness.mjs';

/** Sends `bodies` to room `roomName` over a raw WebSocket of `page`'s session; their seqs. */
function sendRaw(page, roomName, bodies) {
  return page.evaluate(async ([name, texts]) => {
    const { token } = JSON.parse(localStorage.getItem('natter.session'));
    const ws = new WebSocket(`ws://${window.location.host}/ws`);
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
    const req = (type, data) => new Promise((resolve) => {
      const id = String(++ref);
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ type, ref: id, data }));
    });
    const auth = await req('auth', { token, presence: false });
    const room = auth.data.rooms.find((r) => r.name === name).id;
    const seqs = [];
    for (const [i, body] of texts.entries()) {
      for (;;) {
        const f = await req('message.send', { room, body, client_id: `raw-${Date.now()}-${i}` });
        if (f.type === 'ok') {
          seqs.push(f.data.message.seq);
          break;
        }
        if (f.error.code !== 'rate_limited') throw new Error(JSON.stringify(f.error));
        await new Promise((r) => setTimeout(r, f.error.retry_after_ms ?? 200));
      }
    }
    // Does this server know `history` `around`? (An older one refuses the field.)
    let probe;
    do {
      if (probe) await new Promise((r) => setTimeout(r, probe.error.retry_after_ms ?? 200));
      probe = await req('history', { room, around: seqs[0], limit: 1 });
    } while (probe.type === 'error' && probe.error.code === 'rate_limited');
    ws.close();
    return { room, seqs, around: probe.type === 'ok' && 'has_newer' in probe.data };
  }, [roomName, bodies]);
}

const path = (page) => new URL(page.url()).pathname;

browserSuite('addresses, deep links and the unread divider', { timeout: 120000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;
  let general;
  let second;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    ana = await openPage(browser, server);
    await signUp(ana, 'ana');
    bob = await openPage(browser, server);
    await signUp(bob, 'bob');
  });

  after(async () => {
    for (const page of [ana, bob]) if (page) assert.deepEqual(page.problems, [], 'no page errors or CSP violations');
    await cleanup({ browser, servers: [server] });
  });

  test('the address names the open room; Back and Forward move between rooms', async () => {
    await ana.waitForFunction(() => /^\/r\/\d+$/.test(window.location.pathname));
    general = Number(path(ana).split('/')[2]);
    assert.match(await ana.textContent('#room-name'), /general/);

    await ana.click('#btn-create');
    await ana.fill('#create-name', 'second');
    await ana.press('#create-name', 'Enter');
    await ana.locator('#room-name', { hasText: 'second' }).waitFor();
    await ana.waitForFunction((g) => /^\/r\/\d+$/.test(window.location.pathname) && window.location.pathname !== `/r/${g}`, general);
    second = Number(path(ana).split('/')[2]);

    await openRoom(ana, 'general');
    assert.equal(path(ana), `/r/${general}`);
    await ana.goBack();
    await ana.locator('#room-name', { hasText: 'second' }).waitFor();
    assert.equal(path(ana), `/r/${second}`);
    await ana.goForward();
    await ana.locator('#room-name', { hasText: 'general' }).waitFor();
    assert.equal(path(ana), `/r/${general}`);

    // An address opens its room, even when another was open last.
    await ana.goto(`${server.url}/r/${second}`);
    await waitOnline(ana);
    await ana.locator('#room-name', { hasText: 'second' }).waitFor();
    // "/" shows the chat and names the room it opened.
    await ana.goto(`${server.url}/`);
    await waitOnline(ana);
    await ana.waitForFunction(() => /^\/r\/\d+$/.test(window.location.pathname));
    // A room that is not mine: the chat opens another and says so.
    await ana.goto(`${server.url}/r/99999`);
    await waitOnline(ana);
    await ana.locator('#toast', { hasText: 'does not exist' }).waitFor();
    await ana.waitForFunction(() => window.location.pathname !== '/r/99999');
  });

  test('a link to a message opens the room there, highlighted', async () => {
    const bodies = Array.from({ length: 130 }, (_, i) => `seed ${i + 1}`);
    const { room, seqs, around } = await sendRaw(bob, 'general', bodies);
    assert.equal(room, general);

    // A recent message (in the newest page): any server.
    const recent = seqs[125];
    await ana.goto(`${server.url}/r/${general}/${recent}`);
    await waitOnline(ana);
    const lit = ana.locator(`#message-list .msg.highlight[data-key="m${recent}"]`);
    await lit.waitFor();
    assert.equal(await lit.locator('.msg-text').textContent(), 'seed 126');
    assert.ok(await lit.isVisible());
    assert.ok(await inView(ana, `[data-key="m${recent}"]`), 'scrolled to it');
    assert.equal(path(ana), `/r/${general}/${recent}`);

    if (!around) {
      test.diagnostic?.('server without `history` `around`: the old-message part is skipped');
      return;
    }
    // An old one: the page around it comes (not the newest), it is in view and highlighted.
    const old = seqs[9];
    await ana.goto(`${server.url}/r/${general}/${old}`);
    await waitOnline(ana);
    const oldLit = ana.locator(`#message-list .msg.highlight[data-key="m${old}"]`);
    await oldLit.waitFor();
    assert.equal(await oldLit.locator('.msg-text').textContent(), 'seed 10');
    assert.ok(await inView(ana, `[data-key="m${old}"]`), 'scrolled to it');
    let texts = await messageTexts(ana);
    assert.ok(texts.includes('seed 1') || texts.includes('seed 5'), 'older ones around it');
    assert.ok(texts.includes('seed 11'), 'newer ones around it');
    assert.ok(!texts.includes('seed 130'), 'not the newest page');
    await ana.locator('#new-pill').waitFor({ state: 'visible' });

    // Scrolling down brings the newer pages, up to the newest, in order and once each.
    for (let i = 0; i < 20 && !(await messageTexts(ana)).includes('seed 130'); i++) {
      // Counted before the scroll: the page it asks for may arrive before a count after it.
      const shown = await ana.locator('#message-list .msg').count();
      await ana.locator('#timeline').evaluate((el) => { el.scrollTop = el.scrollHeight; });
      await ana.waitForFunction(
        (n) => document.querySelectorAll('#message-list .msg').length > n
          || [...document.querySelectorAll('#message-list .msg-text')].some((e) => e.textContent === 'seed 130'),
        shown,
      );
    }
    texts = (await messageTexts(ana)).filter((t) => t.startsWith('seed '));
    const nums = texts.map((t) => Number(t.split(' ')[1]));
    assert.deepEqual(nums, [...nums].sort((a, b) => a - b), 'in order');
    assert.equal(new Set(nums).size, nums.length, 'each once');
    assert.equal(nums[nums.length - 1], 130);
    // A live message now joins at the end.
    await send(bob, 'live after the window');
    await waitForMessage(ana, 'live after the window');
    // At the bottom of a window that reached the newest, it is read at once.
    await ana.locator('#room-list .nav-item', { hasText: 'general' }).locator('.badge').waitFor({ state: 'detached' });
  });

  test('an unknown path shows "Page not found", with a way to the chat', async () => {
    // The server answers an unknown page with the app's index.html (status 404 or 200).
    const res = await ana.goto(`${server.url}/nonexistent`);
    assert.ok([200, 404].includes(res.status()), `served the app page (${res.status()})`);
    assert.match(res.headers()['content-type'] ?? '', /^text\/html/, 'the app page, not an API error');
    await ana.locator('#not-found').waitFor({ state: 'visible' });
    assert.equal(await ana.textContent('#not-found h1'), 'Page not found');
    assert.equal(await ana.isVisible('#chat'), false);
    assert.equal(await ana.isVisible('#auth-screen'), false);
    await ana.click('#not-found a');
    await waitOnline(ana);
    await ana.waitForFunction(() => /^\/r\/\d+$/.test(window.location.pathname));
  });

  test('the "New messages" divider sits at the read marker, also after a reload', async () => {
    await ana.goto(`${server.url}/r/${second}`);
    await waitOnline(ana);
    await ana.locator('#room-name', { hasText: 'second' }).waitFor();
    await sendRaw(bob, 'general', ['unread one', 'unread two', 'unread three']);
    await ana.locator('#room-list .nav-item', { hasText: 'general' }).locator('.badge', { hasText: '3' }).waitFor();

    await ana.goto(`${server.url}/r/${general}`);
    await waitOnline(ana);
    await waitForMessage(ana, 'unread three');
    const divider = ana.locator('#message-list .unread-sep');
    await divider.waitFor();
    assert.equal(await divider.evaluate((el) => el.nextElementSibling.querySelector('.msg-text').textContent), 'unread one');
    assert.equal(await ana.locator('#message-list .unread-sep').count(), 1);

    // It stays while the room is open (it is read now), and goes once the room is reopened.
    await ana.locator('#room-list .nav-item', { hasText: 'general' }).locator('.badge').waitFor({ state: 'detached' });
    await send(bob, 'while reading');
    await waitForMessage(ana, 'while reading');
    assert.equal(await divider.evaluate((el) => el.nextElementSibling.querySelector('.msg-text').textContent), 'unread one');
    await openRoom(ana, 'second');
    await openRoom(ana, 'general');
    await waitForMessage(ana, 'while reading');
    assert.equal(await ana.locator('#message-list .unread-sep').count(), 0);
  });
});

/** Whether the element is inside the message list's visible area. */
function inView(page, selector) {
  return page.evaluate((sel) => {
    const el = document.querySelector(`#message-list ${sel}`);
    const box = document.getElementById('timeline').getBoundingClientRect();
    const r = el.getBoundingClientRect();
    return r.bottom > box.top && r.top < box.bottom;
  }, selector);
}
