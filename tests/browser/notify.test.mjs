// notify.test.mjs — attention while the tab is hidden: a desktop notification for a DM and for a
// mention, none for a plain message under the default level "mentions"; the unread count in the
// title and on the favicon; clicking a notification opens the message; the sound setting; the
// per-room level (bell menu, `room.notify`) followed by another tab through `room_notify` and
// kept by the server; the one-time "enable notifications" prompt after a first message.
// The page is made hidden by overriding document.hidden/visibilityState, and Notification is
// wrapped to record what is constructed (the permission itself is granted to the context).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, openRoom, waitOnline,
  cleanup, WAIT_MS,
} from './harness.mjs';

function instrument() {
  window.__hidden = false;
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => window.__hidden });
  Object.defineProperty(Document.prototype, 'visibilityState', {
    configurable: true, get: () => (window.__hidden ? 'hidden' : 'visible'),
  });
  window.__notes = [];
  const Real = window.Notification;
  window.Notification = class RecordedNotification {
    static get permission() { return Real.permission; }
    static requestPermission() { return Real.requestPermission(); }
    constructor(title, options = {}) {
      this.title = title;
      this.options = options;
      window.__notes.push({ title, body: options.body, tag: options.tag, data: options.data });
      window.__lastNote = this;
    }
    close() {}
  };
  window.__tones = 0;
  const osc = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function createOscillator() {
    window.__tones++;
    return osc.call(this);
  };
}

const setHidden = (page, hidden) => page.evaluate((h) => {
  window.__hidden = h;
  document.dispatchEvent(new Event('visibilitychange'));
}, hidden);
/** One `message.send` with extra fields (e.g. `thread`) over a raw WebSocket of `page`'s session. */
const sendRaw = (page, roomName, fields) => page.evaluate(async ([name, extra]) => {
  const { token } = JSON.parse(localStorage.getItem('natter.session'));
  const ws = new WebSocket(`ws://${window.location.host}/ws`);
  const frames = [];
  let wake = null;
  ws.onmessage = (e) => {
    frames.push(JSON.parse(e.data));
    wake?.();
  };
  const reply = async (ref) => {
    for (;;) {
      const f = frames.find((x) => x.ref === ref);
      if (f) return f;
      await new Promise((r) => { wake = r; });
    }
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  ws.send(JSON.stringify({ type: 'auth', ref: 'a', data: { token, presence: false } }));
  const auth = await reply('a');
  const room = auth.data.rooms.find((r) => r.name === name).id;
  ws.send(JSON.stringify({ type: 'message.send', ref: 's', data: { room, client_id: `raw-${Date.now()}`, ...extra } }));
  const sent = await reply('s');
  ws.close();
  if (sent.type !== 'ok') throw new Error(JSON.stringify(sent));
  return sent.data.message;
}, [roomName, fields]);
const notes = (page) => page.evaluate(() => window.__notes);

browserSuite('notifications while the tab is hidden', { timeout: 120000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;
  /** whether the server speaks the issue-18 protocol (mentions, room.notify) */
  let newProtocol = false;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    ana = await openPage(browser, server, { initScript: instrument });
    await ana.context().grantPermissions(['notifications'], { origin: server.url });
    await signUp(ana, 'ana');
    bob = await openPage(browser, server);
    await signUp(bob, 'bob');
    newProtocol = await ana.evaluate(async () => {
      const { token } = JSON.parse(localStorage.getItem('natter.session'));
      const ws = new WebSocket(`ws://${window.location.host}/ws`);
      const reply = await new Promise((resolve, reject) => {
        ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', ref: '1', data: { token, presence: false } }));
        ws.onmessage = (e) => resolve(JSON.parse(e.data));
        ws.onerror = reject;
      });
      ws.close();
      return 'notify' in (reply.data?.rooms?.[0] ?? {});
    });
  });

  after(async () => {
    for (const page of [ana, bob]) if (page) assert.deepEqual(page.problems, [], 'no page errors or CSP violations');
    await cleanup({ browser, servers: [server] });
  });

  test('a DM notifies, a plain message under "mentions" does not; title and favicon count', async (t) => {
    assert.equal(await ana.evaluate(() => Notification.permission), 'granted');
    await ana.locator('#btn-notify[aria-label="Notifications: mentions"]').waitFor();
    await setHidden(ana, true);

    await send(bob, 'plain news for everyone');
    await waitForMessage(ana, 'plain news for everyone');
    await ana.waitForFunction(() => document.title.startsWith('(1) '));
    await ana.waitForFunction(() => document.querySelector('link[rel="icon"]').href.startsWith('data:image/png'));
    assert.deepEqual(await notes(ana), [], 'no notification for a plain message');

    // bob writes to ana directly: a notification, with a tone.
    await bob.locator('#people-list [data-person="ana"]').click();
    await bob.locator('#room-name', { hasText: 'ana' }).waitFor();
    await send(bob, 'psst, a direct word');
    await ana.waitForFunction(() => window.__notes.length === 1);
    const [dm] = await notes(ana);
    assert.equal(dm.title, 'bob');
    assert.equal(dm.body, 'psst, a direct word');
    assert.ok(await ana.evaluate(() => window.__tones) >= 1, 'a tone was played');
    await ana.waitForFunction(() => document.title.startsWith('(2) '));

    // Clicking it opens the DM at that message (and the window comes to the front).
    await ana.evaluate(() => window.__lastNote.onclick());
    await setHidden(ana, false);
    await ana.locator('#room-name', { hasText: 'bob' }).waitFor();
    assert.equal(new URL(ana.url()).pathname, `/r/${dm.data.room}/${dm.data.seq}`);
    await ana.locator(`#message-list .msg.highlight[data-key="m${dm.data.seq}"]`).waitFor();

    // In view: read, the counts go.
    await openRoom(ana, 'general');
    await ana.waitForFunction(() => !document.title.startsWith('('));
    await ana.waitForFunction(() => document.querySelector('link[rel="icon"]').getAttribute('href') === '/favicon.svg');
    await openRoom(bob, 'general');
    if (!newProtocol) t.diagnostic('server without the issue-18 protocol: mentions not checked');
  });

  test('a mention notifies; clicking it opens the message', async (t) => {
    if (!newProtocol) return t.skip('server without `mentions` (issue 18)');
    await setHidden(ana, true);
    await send(bob, 'hey @ana, look at this');
    await ana.waitForFunction(() => window.__notes.length === 2);
    const mention = (await notes(ana))[1];
    assert.equal(mention.title, 'bob in #general');
    assert.equal(mention.body, 'hey @ana, look at this');
    // The sidebar shows the mentions apart from the unread count.
    const general = ana.locator('#room-list .nav-item', { hasText: 'general' });
    await general.locator('.mention-count', { hasText: '@1' }).waitFor();
    await send(bob, '@room everyone please');
    await ana.waitForFunction(() => window.__notes.length === 3);
    await general.locator('.mention-count', { hasText: '@2' }).waitFor();
    await general.locator('.badge', { hasText: '2' }).waitFor();

    // A thread reply (not also in the room) neither shows in the timeline nor counts as unread.
    const parent = await ana.evaluate(() => Number(document.querySelector('#message-list .msg:last-child').dataset.key.slice(1)));
    await sendRaw(bob, 'general', { body: 'only in the thread', thread: parent });
    await send(bob, 'back in the room');
    await waitForMessage(ana, 'back in the room');
    assert.ok(!(await ana.$$eval('#message-list .msg-text', (els) => els.map((e) => e.textContent))).includes('only in the thread'));
    await general.locator('.badge', { hasText: '3' }).waitFor();
    assert.equal(await general.locator('.badge').textContent(), '3');
    assert.equal((await notes(ana)).length, 3, 'no notification for a plain thread reply');

    await setHidden(ana, false);
    await general.locator('.mention-count').waitFor({ state: 'detached' });
    await general.locator('.badge').waitFor({ state: 'detached' });
  });

  test('the room level is kept by the server and followed by another tab', async (t) => {
    if (!newProtocol) return t.skip('server without `room.notify` (issue 18)');
    const tab2 = await ana.context().newPage();
    try {
      await tab2.goto(server.url);
      await waitOnline(tab2);
      await tab2.locator('#btn-notify[aria-label="Notifications: mentions"]').waitFor();

      await ana.click('#btn-notify');
      await ana.locator('#notify-menu').waitFor({ state: 'visible' });
      assert.equal(await ana.getAttribute('#notify-menu [data-level="mentions"]', 'aria-checked'), 'true');
      await ana.click('#notify-menu [data-level="all"]');
      await ana.locator('#btn-notify[aria-label="Notifications: all messages"]').waitFor();
      await tab2.locator('#btn-notify[aria-label="Notifications: all messages"]').waitFor();

      // Under "all", a plain message notifies too.
      const before = (await notes(ana)).length;
      await setHidden(ana, true);
      await send(bob, 'plain, but ana wants all');
      await ana.waitForFunction((n) => window.__notes.length === n + 1, before);

      // "Nothing": not even a mention; the sound setting off.
      await setHidden(ana, false);
      await ana.click('#btn-notify');
      await ana.click('#notify-menu [data-level="none"]');
      await tab2.locator('#btn-notify[aria-label="Notifications: nothing"]').waitFor();
      await setHidden(ana, true);
      await send(bob, '@ana you will not hear this');
      await waitForMessage(ana, '@ana you will not hear this');
      assert.equal((await notes(ana)).length, before + 1);

      // The level survives a reload (it comes from the server).
      await tab2.reload();
      await waitOnline(tab2);
      await tab2.locator('#btn-notify[aria-label="Notifications: nothing"]').waitFor();
      await setHidden(ana, false);
    } finally {
      await tab2.close();
    }
  });

  test('sound can be turned off, and stays off', async () => {
    await ana.click('#btn-notify');
    assert.equal(await ana.getAttribute('#notify-sound', 'aria-checked'), 'true');
    await ana.click('#notify-sound');
    assert.equal(await ana.getAttribute('#notify-sound', 'aria-checked'), 'false');
    await ana.keyboard.press('Escape');
    await ana.locator('#notify-menu').waitFor({ state: 'hidden' });
    assert.equal(await ana.evaluate(() => localStorage.getItem('natter.sound')), 'off');
    const tones = await ana.evaluate(() => window.__tones);
    // A DM still notifies, silently.
    await openRoom(ana, 'general');
    await setHidden(ana, true);
    const before = (await notes(ana)).length;
    await openRoom(bob, 'ana');
    await send(bob, 'quietly now');
    await ana.waitForFunction((n) => window.__notes.length === n + 1, before);
    assert.equal(await ana.evaluate(() => window.__tones), tones, 'no tone');
    await setHidden(ana, false);
    await ana.reload();
    await waitOnline(ana);
    await ana.click('#btn-notify');
    assert.equal(await ana.getAttribute('#notify-sound', 'aria-checked'), 'false');
    await ana.keyboard.press('Escape');
  });

  test('the permission is asked for once, after a first message, never on load', async () => {
    const kim = await openPage(browser, server);
    try {
      await signUp(kim, 'kim');
      assert.equal(await kim.evaluate(() => Notification.permission), 'default');
      assert.equal(await kim.isVisible('#notify-prompt'), false, 'not on load');
      await send(kim, 'my first message');
      await kim.locator('#notify-prompt').waitFor({ state: 'visible', timeout: WAIT_MS });
      await kim.click('#notify-prompt-no');
      await kim.locator('#notify-prompt').waitFor({ state: 'hidden' });
      await kim.reload();
      await waitOnline(kim);
      await send(kim, 'my second message');
      await waitForMessage(kim, 'my second message');
      assert.equal(await kim.isVisible('#notify-prompt'), false, 'answered once is enough');
      // The bell still offers it.
      await kim.click('#btn-notify');
      await kim.locator('#notify-enable').waitFor({ state: 'visible' });
      assert.deepEqual(kim.problems, []);
    } finally {
      await kim.context().close();
    }
  });
});
