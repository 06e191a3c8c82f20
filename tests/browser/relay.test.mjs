// relay.test.mjs — relay mode with the tutorials' chat pages, unchanged but for the server's
// address, served by a tiny static server here (not Natter's web client) and open in several
// Chromium tabs:
// - the plain WebSocket tutorial page (docs/protocol.md, "The relay WebSocket at `/`"): text
//   typed in one tab shows as "name: text" in every tab, in one order; a native /ws client in
//   the room sees the same messages, and they are still there after a restart;
// - the Socket.IO "Get started" page (docs/socketio.md, section 7), whose socket.io-client
//   starts on long-polling from another origin.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { browserSuite, NatterServer, launchBrowser, cleanup, WAIT_MS } from './harness.mjs';

const RELAY = ['--relay', '--allow-guests'];

/** The tutorial's page: a form that sends the input's text, and every text that arrives shown. */
function tutorialPage(wsUrl) {
  return `<!doctype html>
<html>
<body>
<form name="publish">
  <input type="text" name="message">
  <input type="submit" value="Send">
</form>
<div id="messages"></div>
<script>
let socket = new WebSocket(${JSON.stringify(wsUrl)});

// send message from the form
document.forms.publish.onsubmit = function() {
  let outgoingMessage = this.message.value;

  socket.send(outgoingMessage);
  return false;
};

// message received - show the message in div#messages
socket.onmessage = function(event) {
  let message = event.data;

  let messageElem = document.createElement('div');
  messageElem.textContent = message;
  document.getElementById('messages').append(messageElem);
}
</script>
</body>
</html>`;
}

/**
 * The Socket.IO tutorial's page (https://socket.io/docs/v4/tutorial/step-5), its script as
 * written there; only where socket.io-client comes from and the `io()` URL differ, as for a
 * page served by another server than the chat's.
 */
function socketIoTutorialPage(natterUrl) {
  return `<!DOCTYPE html>
<html>
  <head>
    <meta name="viewport" content="width=device-width,initial-scale=1.0">
    <title>Socket.IO chat</title>
  </head>
  <body>
    <ul id="messages"></ul>
    <form id="form" action="">
      <input id="input" autocomplete="off" /><button>Send</button>
    </form>
    <script src="/socket.io.js"></script>
    <script>
      const socket = io(${JSON.stringify(natterUrl)});

      const form = document.getElementById('form');
      const input = document.getElementById('input');
      const messages = document.getElementById('messages');

      form.addEventListener('submit', (e) => {
        e.preventDefault();
        if (input.value) {
          socket.emit('chat message', input.value);
          input.value = '';
        }
      });

      socket.on('chat message', (msg) => {
        const item = document.createElement('li');
        item.textContent = msg;
        messages.appendChild(item);
        window.scrollTo(0, document.body.scrollHeight);
      });
    </script>
  </body>
</html>`;
}

/** socket.io-client's browser bundle (a devDependency of these tests). */
function socketIoBundle() {
  const require = createRequire(import.meta.url);
  const main = require.resolve('socket.io-client');
  const dist = main.slice(0, main.lastIndexOf('/build/')) + '/dist/socket.io.min.js';
  return fs.readFileSync(dist, 'utf8');
}

/** A page that speaks Natter's own protocol on /ws and keeps the `message` events it gets. */
function nativePage(wsUrl, token) {
  return `<!doctype html><html><body><script>
window.received = [];
window.history_ = null;
let ws = new WebSocket(${JSON.stringify(wsUrl)});
ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', ref: 'a', data: { token: ${JSON.stringify(token)} } }));
ws.onmessage = (event) => {
  const frame = JSON.parse(event.data);
  if (frame.type === 'message') window.received.push(frame.data);
  if (frame.type === 'ok' && frame.ref === 'a') window.general = frame.data.rooms.find((r) => r.name === 'general').id;
  if (frame.type === 'ok' && frame.ref === 'h') window.history_ = frame.data.messages;
};
window.say = (body) => ws.send(JSON.stringify({ type: 'message.send', ref: 's', data: { room: window.general, body, client_id: 'c' + Date.now() } }));
window.askHistory = () => ws.send(JSON.stringify({ type: 'history', ref: 'h', data: { room: window.general, limit: 100 } }));
</script></body></html>`;
}

/** Serves `pages` (path -> html) on 127.0.0.1, port 0. */
async function staticServer(pages) {
  const server = http.createServer((req, res) => {
    const page = pages[req.url];
    if (!page) {
      res.writeHead(404).end();
      return;
    }
    const type = req.url.endsWith('.js') ? 'text/javascript' : 'text/html; charset=utf-8';
    res.writeHead(200, { 'content-type': type }).end(page());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

async function register(natterUrl, name) {
  const resp = await fetch(`${natterUrl}/api/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name, password: 'correct horse battery' }),
  });
  assert.equal(resp.status, 201);
  return (await resp.json()).token;
}

/** The lines a tutorial tab shows, in order. */
function lines(page) {
  return page.locator('#messages div').allTextContents();
}

/** Types `text` into a tab's form and sends it, as a person would. */
async function say(page, text) {
  await page.fill('input[name=message]', text);
  await page.click('input[type=submit]');
}

browserSuite('the WebSocket tutorial page in relay mode', { timeout: 120000 }, () => {
  let natter;
  let browser;
  let pages;
  let web;
  let token;

  before(async () => {
    natter = await NatterServer.start({ extraArgs: RELAY });
    token = await register(natter.url, 'watcher');
    const wsRoot = natter.url.replace(/^http/, 'ws') + '/';
    const wsNative = natter.url.replace(/^http/, 'ws') + '/ws';
    pages = {
      '/chat.html': () => tutorialPage(wsRoot),
      '/native.html': () => nativePage(wsNative, token),
      '/socketio.html': () => socketIoTutorialPage(natter.url),
      '/socket.io.js': socketIoBundle,
    };
    web = await staticServer(pages);
    browser = await launchBrowser();
  });

  after(async () => {
    web?.server.close();
    await cleanup({ browser, servers: [natter] });
  });

  test('text typed in one tab shows as "name: text" in every tab, in one order, stored', async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
    const native = await context.newPage();
    await native.goto(`${web.url}/native.html`);
    await native.waitForFunction(() => window.general !== undefined);
    const tabs = [];
    for (let i = 0; i < 3; i++) {
      const tab = await context.newPage();
      await tab.goto(`${web.url}/chat.html`);
      tabs.push(tab);
    }
    // Each tab is in the room once its own first line comes back.
    const names = [];
    for (const [i, tab] of tabs.entries()) {
      await say(tab, `hello from tab ${i}`);
      const own = tab.locator('#messages div', { hasText: `: hello from tab ${i}` });
      await own.first().waitFor();
      names.push((await own.first().textContent()).split(': ')[0]);
    }
    assert.ok(names.every((n) => /^guest-[0-9a-f]{4,8}$/.test(n)), names.join());
    assert.equal(new Set(names).size, 3, 'three guests');

    // Several lines from every tab, typed in turn.
    const ROUNDS = 4;
    for (let n = 0; n < ROUNDS; n++) {
      for (const [i, tab] of tabs.entries()) await say(tab, `tab ${i} line ${n}`);
    }
    const said = (list) => list.filter((l) => / line \d$/.test(l));
    const expectedCount = tabs.length * ROUNDS;
    for (const tab of tabs) {
      await tab.waitForFunction((count) => [...document.querySelectorAll('#messages div')]
        .filter((d) => / line \d$/.test(d.textContent)).length >= count, expectedCount);
    }
    const seen = await Promise.all(tabs.map(async (tab) => said(await lines(tab))));
    for (const list of seen) assert.deepEqual(list, seen[0], 'every tab shows one order');
    for (const [i] of tabs.entries()) {
      const mine = seen[0].filter((l) => l.startsWith(`${names[i]}: `));
      assert.deepEqual(mine, [...Array(ROUNDS).keys()].map((n) => `${names[i]}: tab ${i} line ${n}`),
        `tab ${i}'s lines in the order typed, under its name`);
    }

    // The native client saw the same messages from the same guests, in the same order.
    await native.waitForFunction((count) => window.received.filter((m) => / line \d$/.test(m.body)).length >= count,
      expectedCount);
    const received = await native.evaluate(() => window.received.filter((m) => / line \d$/.test(m.body)));
    assert.deepEqual(received.map((m) => `${m.sender.name}: ${m.body}`), seen[0]);
    assert.ok(received.every((m) => m.sender.guest));

    // A native message shows in every tab as "name: text".
    await native.evaluate(() => window.say('from the native client'));
    for (const tab of tabs) {
      await tab.locator('#messages div', { hasText: 'watcher: from the native client' }).waitFor();
    }

    // Durable: after a restart, a new native client's history has every line.
    for (const tab of tabs) await tab.close();
    await natter.stop();
    natter = await NatterServer.start({ dataDir: natter.dataDir, port: natter.port, extraArgs: RELAY });
    const after = await context.newPage();
    await after.goto(`${web.url}/native.html`);
    await after.waitForFunction(() => window.general !== undefined);
    await after.evaluate(() => window.askHistory());
    await after.waitForFunction(() => window.history_ !== null);
    const stored = await after.evaluate(() => window.history_.filter((m) => / line \d$/.test(m.body)));
    assert.deepEqual(stored.map((m) => `${m.sender.name}: ${m.body}`), seen[0]);
    await context.close();
  });

  test('the Socket.IO tutorial page: every tab shows every message, in one order', async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
    const tabs = [];
    for (let i = 0; i < 3; i++) {
      const tab = await context.newPage();
      tab.problems = [];
      tab.on('pageerror', (err) => tab.problems.push(err.message));
      await tab.goto(`${web.url}/socketio.html`);
      tabs.push(tab);
    }
    const typeIn = async (tab, text) => {
      await tab.fill('#input', text);
      await tab.press('#input', 'Enter');
    };
    // A tab is in the room once its own first message comes back.
    for (const [i, tab] of tabs.entries()) {
      // Typed only once connected, as a person would after the page has loaded.
      await tab.waitForFunction(() => socket.connected);
      await typeIn(tab, `sio hello ${i}`);
      await tab.locator('#messages li', { hasText: `sio hello ${i}` }).waitFor();
    }
    const ROUNDS = 3;
    for (let n = 0; n < ROUNDS; n++) {
      for (const [i, tab] of tabs.entries()) await typeIn(tab, `sio ${i}.${n}`);
    }
    const count = tabs.length * ROUNDS;
    const seen = [];
    for (const tab of tabs) {
      await tab.waitForFunction((c) => [...document.querySelectorAll('#messages li')]
        .filter((li) => /^sio \d\.\d$/.test(li.textContent)).length >= c, count);
      seen.push((await tab.locator('#messages li').allTextContents()).filter((t) => /^sio \d\.\d$/.test(t)));
    }
    for (const list of seen) assert.deepEqual(list, seen[0], 'one order in every tab');
    for (const [i] of tabs.entries()) {
      assert.deepEqual(seen[0].filter((t) => t.startsWith(`sio ${i}.`)),
        [...Array(ROUNDS).keys()].map((n) => `sio ${i}.${n}`));
    }
    for (const tab of tabs) assert.deepEqual(tab.problems, []);
    await context.close();
  });
});
