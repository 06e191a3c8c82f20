// layout.test.mjs — how the client looks and behaves as a page: the phone layout at 375 px
// (drawer, no horizontal scroll, composer in view), keyboard-only use and labels, dark mode,
// history loading on scroll-up and the "new messages" pill.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, messageTexts,
  openRoom, cleanup,
} from './harness.mjs';

const PHONE = { width: 375, height: 812 };

/** Send `n` messages "seed 1".."seed n" to general over a raw WebSocket from `page`'s session. */
function seedMessages(page, n) {
  return page.evaluate(async (count) => {
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
    const room = auth.data.rooms.find((r) => r.name === 'general').id;
    for (let i = 1; i <= count; i++) {
      for (;;) {
        const f = await req('message.send', { room, body: `seed ${i}`, client_id: `seed-${i}` });
        if (f.type === 'ok') break;
        if (f.error.code !== 'rate_limited') throw new Error(JSON.stringify(f.error));
        await new Promise((r) => setTimeout(r, f.error.retry_after_ms ?? 200));
      }
    }
    ws.close();
  }, n);
}

async function noHorizontalScroll(page) {
  const widths = await page.evaluate(() => ({
    viewport: window.innerWidth,
    doc: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
    timeline: document.getElementById('timeline').scrollWidth,
    timelineBox: document.getElementById('timeline').clientWidth,
  }));
  assert.ok(widths.doc <= widths.viewport, `page fits: ${JSON.stringify(widths)}`);
  assert.ok(widths.body <= widths.viewport, `body fits: ${JSON.stringify(widths)}`);
  assert.ok(widths.timeline <= widths.timelineBox, `messages fit: ${JSON.stringify(widths)}`);
}

/** Wait for the drawer's slide to finish: fully in view (open) or fully out of it. */
async function drawerSettled(page, open) {
  await page.waitForFunction((wantOpen) => {
    const box = document.getElementById('sidebar').getBoundingClientRect();
    return wantOpen ? box.left >= 0 : box.right <= 0;
  }, open);
}

async function inViewport(page, selector) {
  const box = await page.locator(selector).boundingBox();
  const { width, height } = page.viewportSize();
  assert.ok(box, `${selector} is rendered`);
  assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= width && box.y + box.height <= height,
    `${selector} is inside the ${width}x${height} viewport: ${JSON.stringify(box)}`);
}

browserSuite('layout, keyboard and scrolling', { timeout: 120000 }, () => {
  let server;
  let browser;
  let bob;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    bob = await openPage(browser, server);
    await signUp(bob, 'bob');
    await seedMessages(bob, 70);
  });

  after(async () => {
    if (bob) assert.deepEqual(bob.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('at 375px: no horizontal scroll, the composer is in view, the sidebar is a drawer', async () => {
    const phone = await openPage(browser, server, { viewport: PHONE });
    try {
      await signUp(phone, 'pia');
      await send(phone, `a-very-long-word-${'x'.repeat(300)}`);
      await send(phone, `https://example.com/${'path/'.repeat(60)}`);
      await waitForMessage(phone, `a-very-long-word-${'x'.repeat(300)}`);
      await noHorizontalScroll(phone);
      await inViewport(phone, '#composer-input');
      await inViewport(phone, '#composer-send');
      assert.equal(await phone.isVisible('#sidebar'), false, 'the sidebar starts closed');

      await phone.getByRole('button', { name: /^Open menu/ }).click();
      await drawerSettled(phone, true);
      await inViewport(phone, '#room-list');
      assert.equal(await phone.getAttribute('#drawer-open', 'aria-expanded'), 'true');
      await phone.keyboard.press('Escape');
      await drawerSettled(phone, false);

      await phone.click('#drawer-open');
      await drawerSettled(phone, true);
      await phone.locator('#room-list .nav-item', { hasText: 'general' }).click();
      await drawerSettled(phone, false);
      await noHorizontalScroll(phone);
      await inViewport(phone, '#composer-input');
      assert.deepEqual(phone.problems, []);
    } finally {
      await phone.context().close();
    }
  });

  test('scrolling up loads older history; a new message while scrolled up shows a pill', async () => {
    const ana = await openPage(browser, server);
    try {
      await signUp(ana, 'ana');
      await waitForMessage(ana, 'seed 70');
      // The newest page first: 50 entries, the join lines of general's newcomers among them.
      const firstPage = await messageTexts(ana);
      assert.ok(firstPage.length <= 50 && firstPage.length >= 40, `${firstPage.length} messages`);
      assert.ok(!firstPage.includes('seed 1'), 'only the newest page');
      assert.equal(await ana.textContent('#history-status'), '');

      // Scroll to the top: the older 20 come in, and the view stays where the reader was.
      await ana.locator('#timeline').evaluate((el) => { el.scrollTop = 0; });
      await waitForMessage(ana, 'seed 1');
      await ana.locator('#history-status', { hasText: 'beginning of #general' }).waitFor();
      const texts = (await messageTexts(ana)).filter((t) => t.startsWith('seed '));
      assert.deepEqual(texts, Array.from({ length: 70 }, (_, i) => `seed ${i + 1}`));
      const top = await ana.locator('#timeline').evaluate((el) => el.scrollTop);
      assert.ok(top > 200, `the page did not jump to the oldest message (scrollTop ${top})`);

      // Scrolled up, a new message does not move the view: a pill offers to jump.
      await ana.locator('#timeline').evaluate((el) => { el.scrollTop = el.scrollHeight / 2; });
      await ana.waitForTimeout(100);
      const before = await ana.locator('#timeline').evaluate((el) => el.scrollTop);
      await send(bob, 'fresh news');
      await waitForMessage(ana, 'fresh news');
      await ana.locator('#new-pill').waitFor({ state: 'visible' });
      assert.equal(await ana.locator('#timeline').evaluate((el) => el.scrollTop), before);
      await ana.click('#new-pill');
      await ana.locator('#new-pill').waitFor({ state: 'hidden' });
      await ana.waitForFunction(() => {
        const el = document.getElementById('timeline');
        return el.scrollHeight - el.scrollTop - el.clientHeight < 4;
      });

      // At the bottom, new messages keep the view at the bottom, without a pill.
      await send(bob, 'and more');
      await waitForMessage(ana, 'and more');
      assert.equal(await ana.isVisible('#new-pill'), false);
      const gap = await ana.locator('#timeline').evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
      assert.ok(gap < 4, `still at the bottom (${gap}px away)`);
      assert.deepEqual(ana.problems, []);
    } finally {
      await ana.context().close();
    }
  });

  test('usable by keyboard alone, with labelled controls', async () => {
    const kim = await openPage(browser, server);
    try {
      // Sign up without the mouse: the username field has focus; Shift+Tab reaches the modes.
      await kim.locator('#auth-username:focus').waitFor();
      await kim.keyboard.press('Shift+Tab');
      await kim.keyboard.press('Enter'); // "Create account"
      assert.equal(await kim.getAttribute('#mode-signup', 'aria-pressed'), 'true');
      await kim.keyboard.press('Tab');
      await kim.keyboard.type('kim');
      await kim.keyboard.press('Tab');
      await kim.keyboard.type('correct horse battery');
      await kim.keyboard.press('Enter');
      await kim.locator('#chat').waitFor();
      await kim.locator('#composer-input:focus').waitFor();
      await kim.keyboard.type('typed, not clicked');
      await kim.keyboard.press('Enter');
      await waitForMessage(kim, 'typed, not clicked');

      // Tab from the composer around to "Create a room", open it, fill it, all by keys.
      let reached = false;
      for (let i = 0; i < 40 && !reached; i++) {
        await kim.keyboard.press('Tab');
        reached = await kim.evaluate(() => document.activeElement?.id === 'btn-create');
      }
      assert.ok(reached, 'Tab reaches "Create a room"');
      await kim.keyboard.press('Enter');
      await kim.locator('#create-name:focus').waitFor();
      await kim.keyboard.type('keyboarders');
      await kim.keyboard.press('Enter');
      await kim.locator('#room-name', { hasText: 'keyboarders' }).waitFor();
      await openRoom(kim, 'general');

      // Every visible button and field has a name for assistive technology.
      const unnamed = await kim.evaluate(() => [...document.querySelectorAll('button, textarea, input, [role="log"]')]
        .filter((el) => el.offsetParent !== null)
        .filter((el) => !(el.getAttribute('aria-label') || el.textContent.trim() || el.labels?.length))
        .map((el) => el.outerHTML.slice(0, 80)));
      assert.deepEqual(unnamed, []);
      assert.deepEqual(kim.problems, []);
    } finally {
      await kim.context().close();
    }
  });

  test('dark mode follows prefers-color-scheme', async () => {
    const light = await openPage(browser, server, { colorScheme: 'light' });
    const dark = await openPage(browser, server, { colorScheme: 'dark' });
    try {
      const bg = (p) => p.evaluate(() => getComputedStyle(document.body).backgroundColor);
      const lum = (rgb) => rgb.match(/\d+/g).slice(0, 3).reduce((a, b) => a + Number(b), 0) / 3;
      assert.ok(lum(await bg(light)) > 200, `light background: ${await bg(light)}`);
      assert.ok(lum(await bg(dark)) < 50, `dark background: ${await bg(dark)}`);
    } finally {
      await light.context().close();
      await dark.context().close();
    }
  });
});
