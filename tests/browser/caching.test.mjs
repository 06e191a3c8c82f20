// caching.test.mjs — static files done right (issue 21): a reload of the signed-in chat moves
// under 10 KB over HTTP (index.html revalidated with a 304, the versioned scripts and styles
// taken from the cache), the first load comes compressed, and the page still loads with the
// strict CSP and no errors. Bytes are what CDP's Network domain counts as received on the
// wire (headers and bodies) for every HTTP request of the page; WebSocket frames are not HTTP.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, waitOnline, cleanup, WAIT_MS,
} from './harness.mjs';

/** Counts the bytes each finished HTTP request received, from a CDP session on `page`. */
async function countBytes(page) {
  const cdp = await page.context().newCDPSession(page);
  const urls = new Map();
  const seen = [];
  cdp.on('Network.responseReceived', (e) => {
    urls.set(e.requestId, { url: e.response.url, status: e.response.status, fromCache: e.response.fromDiskCache || e.response.fromMemoryCache });
  });
  cdp.on('Network.loadingFinished', (e) => {
    const r = urls.get(e.requestId);
    if (r) seen.push({ ...r, bytes: e.encodedDataLength });
  });
  await cdp.send('Network.enable');
  return {
    take() {
      const list = seen.splice(0);
      return { list, total: list.reduce((n, r) => n + r.bytes, 0) };
    },
  };
}

function describeLoad(load) {
  return load.list.map((r) => `${r.status} ${new URL(r.url).pathname} ${r.bytes}${r.fromCache ? ' (cache)' : ''}`).join('\n');
}

browserSuite('static files: caching and compression', { timeout: 120000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
  });

  after(() => cleanup({ browser, servers: [server] }));

  test('a reload transfers under 10 KB after the first load', async () => {
    // A new context has an empty cache: the first load is counted from its first request.
    const context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
    const page = await context.newPage();
    page.problems = [];
    page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' || /Content Security Policy|Refused to/i.test(msg.text())) page.problems.push(msg.text());
    });
    const bytes = await countBytes(page);
    await page.goto(`${server.url}/`);
    await page.locator('#auth-screen').waitFor({ state: 'visible' });
    await signUp(page, 'cacher');
    const first = bytes.take();
    const reload = async () => {
      await page.reload();
      await waitOnline(page);
      return bytes.take();
    };
    // The first reload fetches the room's address (/r/1, index.html) for the first time; the
    // second revalidates it.
    const again = await reload();
    const twice = await reload();
    console.log(`first load: ${first.total} bytes in ${first.list.length} requests\n${describeLoad(first)}`);
    console.log(`reload: ${again.total} bytes in ${again.list.length} requests\n${describeLoad(again)}`);
    console.log(`second reload: ${twice.total} bytes in ${twice.list.length} requests\n${describeLoad(twice)}`);
    const scripts = first.list.filter((r) => new URL(r.url).pathname.startsWith('/v/'));
    assert.ok(scripts.length >= 10, `the scripts and styles come from /v/<version>/:\n${describeLoad(first)}`);
    // Uncompressed, the client is over 300 KB.
    assert.ok(first.total < 150000, `the first load is compressed (${first.total} bytes)`);
    for (const load of [again, twice]) {
      assert.ok(!load.list.some((r) => new URL(r.url).pathname.startsWith('/v/') && r.bytes > 0),
        `no versioned file is fetched again:\n${describeLoad(load)}`);
      assert.ok(load.total < 10 * 1024, `a reload moves ${load.total} bytes:\n${describeLoad(load)}`);
    }
    const doc = twice.list.find((r) => r.url === page.url());
    // A 304 (CDP shows the cached response's 200): the headers alone come over the wire.
    assert.ok(doc && doc.bytes < 1024, `index.html is revalidated:\n${describeLoad(twice)}`);
    assert.deepEqual(page.problems, []);
  });

  test('the page links the manifest and the icons, and the server has them', async () => {
    const page = await openPage(browser, server);
    await page.locator('#auth-screen').waitFor({ state: 'visible' });
    const links = await page.evaluate(() => ({
      manifest: document.querySelector('link[rel="manifest"]')?.href,
      icon: document.querySelector('link[rel="icon"]')?.href,
    }));
    assert.equal(links.manifest, `${server.url}/manifest.webmanifest`);
    const manifest = await page.evaluate(async (url) => (await fetch(url)).json(), links.manifest);
    assert.equal(manifest.display, 'standalone');
    assert.equal(manifest.start_url, '/');
    for (const icon of manifest.icons) {
      const status = await page.evaluate(async (src) => (await fetch(src)).status, icon.src);
      assert.equal(status, 200, icon.src);
    }
    const favicon = await page.evaluate(async () => {
      const r = await fetch('/favicon.ico');
      return { status: r.status, type: r.headers.get('content-type') };
    });
    assert.deepEqual(favicon, { status: 200, type: 'image/svg+xml' });
    assert.deepEqual(page.problems, []);
  });
});
