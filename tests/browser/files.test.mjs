// files.test.mjs — files and images (issue 19): attaching with the paperclip (progress, Send
// waits), by drag-and-drop (the overlay) and by paste; an image shown to the other person as a
// thumbnail whose box is sized before it loads, and the lightbox; a file card with a working
// download link; cancelling an upload sends nothing; a file over the server's limit shows the
// server's error; someone offline while a file was sent sees it once after reconnecting.
// Needs a server with the files API (`NATTER_BIN`, e.g. one built from the issue-19 branch).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, cleanup, WAIT_MS, makePng,
} from './harness.mjs';

const MAX_UPLOAD = 300000;

/** Hold the requests matching `match` on `page` until `release()`. */
async function holdRoute(page, match) {
  let release;
  const released = new Promise((resolve) => {
    release = resolve;
  });
  const seen = [];
  let hit;
  const hitP = new Promise((resolve) => {
    hit = resolve;
  });
  const handler = async (route) => {
    seen.push(route.request().url());
    hit();
    await released;
    await route.continue().catch(() => {});
  };
  await page.route(match, handler);
  return {
    seen,
    hit: hitP,
    release: async () => {
      release();
      await page.unroute(match, handler);
    },
  };
}

const isUpload = (url) => url.pathname === '/api/files';
const isThumb = (url) => /^\/api\/files\/[^/]+\/thumb$/.test(url.pathname);

/** The messages of the open room that carry a file with this name (their count and ids). */
function filesNamed(page, name) {
  return page.$$eval('#message-list .msg:not(.pending)', (items, n) => items
    .flatMap((li) => [...li.querySelectorAll('[data-file]')])
    .filter((el) => (el.querySelector('img')?.alt ?? el.querySelector('.file-card-name')?.textContent) === n)
    .map((el) => el.dataset.file), name);
}

browserSuite('files and images', { timeout: 120000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;
  const png = makePng(800, 600);

  before(async () => {
    server = await NatterServer.start({ extraArgs: ['--max-upload-bytes', String(MAX_UPLOAD)] });
    browser = await launchBrowser();
    ana = await openPage(browser, server);
    await signUp(ana, 'ana');
    bob = await openPage(browser, server);
    await signUp(bob, 'bob');
  });

  after(async () => {
    for (const page of [ana, bob]) {
      if (page?.problems.length) console.log('page problems:', page.problems);
    }
    await cleanup({ browser, servers: [server] });
  });

  test('the paperclip uploads with progress; the other person sees a sized thumbnail', async () => {
    // Record what the progress bar shows.
    await ana.evaluate(() => {
      window.natterProgress = [];
      new MutationObserver(() => {
        for (const bar of document.querySelectorAll('#composer-files progress')) {
          window.natterProgress.push(Number(bar.value));
        }
      }).observe(document.getElementById('composer-files'), { subtree: true, attributes: true, childList: true });
    });
    const upload = await holdRoute(ana, isUpload);
    const thumbs = await holdRoute(bob, isThumb);
    await ana.setInputFiles('#composer-file-input', { name: 'shot.png', mimeType: 'image/png', buffer: png });
    const item = ana.locator('#composer-files .attachment');
    await item.filter({ hasText: 'shot.png' }).waitFor();
    assert.equal(await item.getAttribute('data-state'), 'uploading');
    await ana.locator('#composer-files progress').waitFor();
    assert.match(await item.textContent(), /shot\.png\s*\d+(\.\d)? KB/);
    await ana.fill('#composer-input', 'the screenshot');
    assert.equal(await ana.locator('#composer-send').isDisabled(), true, 'Send waits for the upload');
    await upload.hit;
    await upload.release();
    await ana.locator('#composer-files .attachment[data-state="done"]').waitFor();
    const progress = await ana.evaluate(() => window.natterProgress);
    assert.ok(progress.includes(png.length), `the bar reached the file's size: ${progress}`);
    assert.equal(await ana.locator('#composer-send').isDisabled(), false);
    await ana.press('#composer-input', 'Enter');
    await ana.locator('#composer-files').waitFor({ state: 'hidden' });
    await waitForMessage(ana, 'the screenshot');

    // bob: the thumbnail's box is 360 x 270 (800 x 600 scaled) while its bytes are held back.
    await waitForMessage(bob, 'the screenshot');
    const img = bob.locator('#message-list .file-thumb img[alt="shot.png"]');
    await img.waitFor();
    await thumbs.hit;
    const before = await img.evaluate((el) => ({
      w: el.getAttribute('width'), h: el.getAttribute('height'), complete: el.complete && el.naturalWidth > 0,
      box: [el.getBoundingClientRect().width, el.getBoundingClientRect().height], src: el.getAttribute('src'),
    }));
    assert.deepEqual([before.w, before.h], ['360', '270']);
    assert.equal(before.complete, false, 'not loaded yet');
    assert.deepEqual(before.box, [360, 270], 'the box has its size before the image loads');
    assert.match(before.src, /^\/api\/files\/f_[\w-]+\/thumb\?k=/);
    await thumbs.release();
    await bob.waitForFunction(() => document.querySelector('#message-list .file-thumb img[alt="shot.png"]')?.naturalWidth === 360);
    const after = await img.evaluate((el) => [el.getBoundingClientRect().width, el.getBoundingClientRect().height]);
    assert.deepEqual(after, [360, 270], 'no jump once loaded');
  });

  test('the lightbox opens the full image and closes (Escape, a click outside)', async () => {
    const thumb = bob.locator('#message-list .file-thumb', { has: bob.locator('img[alt="shot.png"]') });
    const dialog = bob.locator('#dlg-lightbox');
    await thumb.click();
    await dialog.waitFor({ state: 'visible' });
    await bob.waitForFunction(() => document.querySelector('#dlg-lightbox .lightbox-img')?.naturalWidth === 800);
    assert.match(await dialog.locator('.lightbox-img').getAttribute('src'), /^\/api\/files\/f_[\w-]+\?k=/);
    assert.match(await dialog.locator('.lightbox-name').textContent(), /shot\.png · 800 × 600/);
    await bob.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await thumb.evaluate((el) => el === document.activeElement), true, 'focus goes back to the thumbnail');
    // by keyboard, then closed by a click on the dim area
    await bob.keyboard.press('Enter');
    await dialog.waitFor({ state: 'visible' });
    await bob.mouse.click(8, 8);
    await dialog.waitFor({ state: 'hidden' });
  });

  test('a file dropped on the room is posted as a card with a download link', async () => {
    await ana.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['hello from notes'], 'notes.txt', { type: 'text/plain' }));
      const target = document.getElementById('timeline');
      target.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true, cancelable: true }));
      window.natterDrop = dt;
    });
    await ana.locator('#drop-overlay').waitFor({ state: 'visible' });
    await ana.evaluate(() => {
      document.getElementById('timeline').dispatchEvent(new DragEvent('drop', { dataTransfer: window.natterDrop, bubbles: true, cancelable: true }));
    });
    await ana.locator('#drop-overlay').waitFor({ state: 'hidden' });
    await ana.locator('#composer-files .attachment[data-state="done"]', { hasText: 'notes.txt' }).waitFor();
    await ana.press('#composer-input', 'Enter');
    const card = bob.locator('#message-list .file-card', { hasText: 'notes.txt' });
    await card.waitFor();
    assert.match(await card.locator('.file-card-meta').textContent(), /^Text · 16 B$/);
    await bob.waitForFunction(() => /\?k=/.test(document.querySelector('#message-list .file-card')?.getAttribute('href') ?? ''));
    const href = await card.getAttribute('href');
    const text = await bob.evaluate((u) => fetch(u).then((r) => r.text()), href);
    assert.equal(text, 'hello from notes');
    // a message with only a file has no empty bubble
    assert.equal(await bob.locator('#message-list .msg', { has: card }).locator('.bubble').count(), 0);
  });

  test('an image pasted into the box is attached and posted', async () => {
    await ana.evaluate((bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' }));
      document.getElementById('composer-input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, [...makePng(120, 90)]);
    await ana.locator('#composer-files .attachment[data-state="done"]', { hasText: 'pasted.png' }).waitFor();
    assert.equal(await ana.inputValue('#composer-input'), '', 'nothing pasted as text');
    await ana.click('#composer-send');
    const img = bob.locator('#message-list .file-thumb img[alt="pasted.png"]');
    await img.waitFor();
    assert.deepEqual([await img.getAttribute('width'), await img.getAttribute('height')], ['120', '90']);
  });

  test('cancelling an upload in progress sends nothing', async () => {
    const upload = await holdRoute(ana, isUpload);
    await ana.setInputFiles('#composer-file-input', { name: 'cancel-me.png', mimeType: 'image/png', buffer: png });
    await upload.hit;
    await ana.getByRole('button', { name: 'Cancel the upload of cancel-me.png' }).click();
    await ana.locator('#composer-files').waitFor({ state: 'hidden' });
    assert.equal(await ana.locator('#composer-send').isDisabled(), true, 'nothing left to send');
    await upload.release();
    await send(ana, 'after the cancel');
    await waitForMessage(bob, 'after the cancel');
    assert.deepEqual(await filesNamed(bob, 'cancel-me.png'), []);
    assert.deepEqual(await filesNamed(ana, 'cancel-me.png'), []);
    const last = bob.locator('#message-list .msg').last();
    assert.equal(await last.locator('[data-file]').count(), 0);
  });

  test('a file over the server limit is refused before it is sent, naming the limit', async () => {
    // The client knows the limit from /api/config (max_upload_bytes) and does not upload.
    const uploads = [];
    const onRequest = (req) => {
      if (new URL(req.url()).pathname === '/api/files' && req.method() === 'POST') uploads.push(req.url());
    };
    ana.on('request', onRequest);
    const big = Buffer.alloc(MAX_UPLOAD + 50000, 7);
    await ana.setInputFiles('#composer-file-input', { name: 'huge.bin', mimeType: 'application/octet-stream', buffer: big });
    const item = ana.locator('#composer-files .attachment[data-state="error"]', { hasText: 'huge.bin' });
    await item.waitFor();
    ana.off('request', onRequest);
    assert.equal(await item.locator('.attachment-error').textContent(),
      `The file is too large: this server takes files up to ${Math.round(MAX_UPLOAD / 1024)} KB.`);
    assert.deepEqual(uploads, [], 'nothing uploaded');
    await ana.fill('#composer-input', 'with a failed file');
    assert.equal(await ana.locator('#composer-send').isDisabled(), true, 'a failed file must go first');
    await ana.getByRole('button', { name: 'Remove huge.bin' }).click();
    await ana.locator('#composer-files').waitFor({ state: 'hidden' });
    assert.equal(await ana.locator('#composer-send').isDisabled(), false);
    await ana.fill('#composer-input', '');
  });

  test('someone offline while a file is sent sees it once after reconnecting', async () => {
    await bob.context().setOffline(true);
    await bob.waitForFunction(() => document.getElementById('me-status')?.textContent === 'Offline');
    await ana.setInputFiles('#composer-file-input', { name: 'away.txt', mimeType: 'text/plain', buffer: Buffer.from('sent while you were away') });
    await ana.locator('#composer-files .attachment[data-state="done"]', { hasText: 'away.txt' }).waitFor();
    await send(ana, 'while you were away');
    await waitForMessage(ana, 'while you were away');
    await bob.context().setOffline(false);
    await waitForMessage(bob, 'while you were away');
    await send(ana, 'and after');
    await waitForMessage(bob, 'and after');
    const ids = await filesNamed(bob, 'away.txt');
    assert.equal(ids.length, 1, `shown once: ${ids}`);
    assert.deepEqual(await filesNamed(ana, 'away.txt'), ids);
    // after a reload too
    await bob.reload();
    await bob.locator('#message-list .file-card', { hasText: 'away.txt' }).waitFor({ timeout: WAIT_MS });
    assert.equal((await filesNamed(bob, 'away.txt')).length, 1);
    assert.deepEqual(ana.problems, []);
    assert.deepEqual(bob.problems, []);
  });
});
