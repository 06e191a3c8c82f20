// moderation.test.mjs — private rooms, room settings, roles and moderation in the web client
// (issue 20): a private room is created, its invitation seen and accepted (and invisible to
// others); a topic set in the settings dialog shows in everyone's header, live and after a
// reload; the member menu mutes (the muted person's composer says until when and sends
// nothing, also right after a reload), makes a moderator (who may then delete others' messages,
// and is offered the member menu on members only, not on the owner) and bans (the room leaves
// the banned person's sidebar with a notice why), each a system line in the others' timelines;
// the bans list lifts a ban; an archived room is read-only and out of the default room list;
// the admins' audit log; a deactivated account is closed and not reconnected; and the member
// menu and settings dialog at 375 px. People are separate browser contexts. The first account
// of the server ("root") is its admin, so ana, bob and eve are ordinary users.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, msgItem,
  messageAction, openRoom, waitOnline, cleanup, exactly,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';
const PHONE = { width: 375, height: 812 };

/** A system line (room event) with exactly this text in the open room's timeline. */
function systemLine(page, text) {
  return page.locator('#message-list .notice.room-event', { hasText: exactly(text) });
}

/** The sidebar's entry of a room, by its shown name. */
function navRoom(page, name) {
  return page.locator('#room-list .nav-item', { has: page.locator('.nav-label', { hasText: exactly(name) }) });
}

/** Open the room's members list and choose `label` in the member menu of `name`. */
async function memberAction(page, name, label) {
  if (!(await page.locator('#dlg-members').isVisible())) await page.click('#room-meta');
  await page.getByRole('button', { name: `Actions for ${name}` }).click();
  await page.getByRole('menuitem', { name: label, exact: true }).click();
}

/** Join a public room from the room browser. */
async function joinRoom(page, name) {
  await page.click('#btn-browse');
  await page.fill('#browse-query', name);
  await page.getByRole('button', { name: `Join #${name}` }).click();
  await page.locator('#room-name', { hasText: name }).waitFor();
}

async function createRoom(page, name, { isPrivate = false } = {}) {
  await page.click('#btn-create');
  await page.fill('#create-name', name);
  if (isPrivate) await page.check('#create-private');
  await page.press('#create-name', 'Enter');
  await page.locator('#room-name', { hasText: name }).waitFor();
}

async function noHorizontalScroll(page) {
  const widths = await page.evaluate(() => ({
    viewport: window.innerWidth,
    doc: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
  }));
  assert.ok(widths.doc <= widths.viewport && widths.body <= widths.viewport, `page fits: ${JSON.stringify(widths)}`);
}

async function inViewport(page, selector) {
  const box = await page.locator(selector).boundingBox();
  const { width, height } = page.viewportSize();
  assert.ok(box, `${selector} is rendered`);
  assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= width && box.y + box.height <= height,
    `${selector} is inside the ${width}x${height} viewport: ${JSON.stringify(box)}`);
}

browserSuite('private rooms, settings and moderation', { timeout: 180000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;
  let eve;
  const pages = [];

  before(async () => {
    server = await NatterServer.start();
    // The first account of a new server is its admin: make it one nobody else is.
    const res = await fetch(`${server.url}/api/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'root', password: PASSWORD }),
    });
    assert.equal(res.status < 300, true, `root registered: ${res.status}`);
    browser = await launchBrowser();
    ana = await openPage(browser, server);
    bob = await openPage(browser, server);
    eve = await openPage(browser, server);
    pages.push(ana, bob, eve);
    await signUp(ana, 'ana');
    await signUp(bob, 'bob');
    await signUp(eve, 'eve');
  });

  after(async () => {
    for (const page of pages) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('a private room: invited, seen, accepted; invisible to the others', async () => {
    await createRoom(ana, 'launch', { isPrivate: true });
    await ana.locator('#room-name .room-lock').waitFor();
    assert.equal(await ana.locator('#room-name > span:last-child').textContent(), 'launch');
    assert.doesNotMatch(await ana.textContent('#room-name'), /null|undefined/);
    await navRoom(ana, 'launch').locator('.nav-lock').waitFor();

    // eve cannot find it.
    await eve.click('#btn-browse');
    await eve.fill('#browse-query', 'launch');
    await eve.locator('#browse-status', { hasText: 'No rooms match' }).waitFor();
    await eve.keyboard.press('Escape');

    // ana invites bob from the room's details.
    await ana.click('#btn-room-info');
    await ana.click('#room-info-invite');
    await ana.fill('#invite-name', 'bob');
    await ana.press('#invite-name', 'Enter');
    await ana.locator('#invite-status', { hasText: 'Invited bob' }).waitFor();
    // Someone who does not exist: the server's answer, in words.
    await ana.fill('#invite-name', 'nobody');
    await ana.press('#invite-name', 'Enter');
    await ana.locator('#invite-error', { hasText: 'Nobody is called nobody' }).waitFor();
    await ana.keyboard.press('Escape');
    await ana.keyboard.press('Escape');

    // bob sees the invitation live and accepts it.
    const invite = bob.locator('#invite-list .invite', { hasText: 'launch' });
    await invite.locator('.invite-by', { hasText: 'from ana' }).waitFor();
    await bob.getByRole('button', { name: 'Accept the invitation to launch' }).click();
    await bob.locator('#room-name', { hasText: 'launch' }).waitFor();
    await bob.locator('#invites-section').waitFor({ state: 'hidden' });
    await navRoom(bob, 'launch').locator('.nav-lock').waitFor();
    await send(bob, 'hello launch');
    await waitForMessage(ana, 'hello launch');

    // eve, invited, sees it after a reload too (`invite.list`), and declines.
    await ana.click('#btn-room-info');
    await ana.click('#room-info-invite');
    await ana.fill('#invite-name', 'eve');
    await ana.press('#invite-name', 'Enter');
    await ana.locator('#invite-status', { hasText: 'Invited eve' }).waitFor();
    await ana.keyboard.press('Escape');
    await ana.keyboard.press('Escape');
    await eve.locator('#invite-list .invite', { hasText: 'launch' }).waitFor();
    await eve.reload();
    await waitOnline(eve);
    await eve.locator('#invite-list .invite', { hasText: 'launch' }).waitFor();
    await eve.getByRole('button', { name: 'Decline the invitation to launch' }).click();
    await eve.locator('#invites-section').waitFor({ state: 'hidden' });
    assert.equal(await navRoom(eve, 'launch').count(), 0);
  });

  test('settings: the topic shows in the header for others, live and after a reload', async () => {
    await openRoom(ana, 'launch');
    await openRoom(bob, 'launch');
    // A member has no settings to change.
    await bob.click('#btn-room-info');
    await bob.locator('#room-info-kind', { hasText: 'you: Member' }).waitFor();
    assert.equal(await bob.isVisible('#room-info-settings'), false);
    await bob.keyboard.press('Escape');

    await ana.click('#btn-room-info');
    await ana.click('#room-info-settings');
    await ana.fill('#settings-topic', 'Ship it on Friday');
    await ana.fill('#settings-description', 'Release talk, <b>not</b> markup');
    await ana.click('#settings-form button[type="submit"]');
    await ana.locator('#dlg-settings').waitFor({ state: 'hidden' });
    await ana.keyboard.press('Escape');

    await bob.locator('#room-topic', { hasText: exactly('Ship it on Friday') }).waitFor();
    assert.match(await bob.getAttribute('#room-topic', 'title'), /Release talk, <b>not<\/b> markup/);
    await systemLine(bob, 'ana changed the topic to “Ship it on Friday”, changed the description').waitFor();
    await systemLine(ana, 'ana changed the topic to “Ship it on Friday”, changed the description').waitFor();

    await bob.reload();
    await waitOnline(bob);
    await openRoom(bob, 'launch');
    await bob.locator('#room-topic', { hasText: exactly('Ship it on Friday') }).waitFor();
    // The details panel shows the description as text.
    await bob.click('#room-topic');
    await bob.locator('#room-info-description', { hasText: exactly('Release talk, <b>not</b> markup') }).waitFor();
    await bob.keyboard.press('Escape');
  });

  test('the member menu: mute, a moderator deletes, ban; system lines for the others', async () => {
    await createRoom(ana, 'town');
    await joinRoom(bob, 'town');
    await joinRoom(eve, 'town');
    await send(bob, 'buy my stuff');
    await waitForMessage(ana, 'buy my stuff');
    await waitForMessage(eve, 'buy my stuff');

    // A mute: bob's composer says until when and is disabled; the others see why.
    await memberAction(ana, 'bob', 'Mute for 10 minutes');
    await ana.locator('#members-report', { hasText: 'bob is muted for 10 minutes.' }).waitFor();
    await ana.keyboard.press('Escape');
    await bob.locator('#composer-notice', { hasText: /^You are muted until / }).waitFor();
    assert.equal(await bob.isDisabled('#composer-input'), true);
    assert.equal(await bob.isDisabled('#composer-send'), true);
    await systemLine(eve, 'ana muted bob for 10 minutes').waitFor();

    // After a reload bob's client knows it at once: his room carries `muted_until`.
    await bob.reload();
    await waitOnline(bob);
    await openRoom(bob, 'town');
    await bob.locator('#composer-notice', { hasText: /^You are muted until / }).waitFor();
    assert.equal(await bob.isDisabled('#composer-input'), true);
    assert.equal(await bob.isDisabled('#composer-send'), true);

    // eve becomes a moderator and deletes bob's message.
    await memberAction(ana, 'eve', 'Make moderator');
    await ana.locator('#members-report', { hasText: 'eve is a moderator now.' }).waitFor();
    await ana.keyboard.press('Escape');
    await systemLine(eve, 'ana made eve a moderator').waitFor();
    await messageAction(eve, msgItem(eve, 'buy my stuff'), 'Delete');
    await eve.click('#dlg-delete button[value="delete"]');
    await ana.locator('#message-list .msg .msg-tombstone').waitFor();
    // A member has no Delete on others' messages.
    await send(ana, 'owner speaking');
    await waitForMessage(bob, 'owner speaking');
    await msgItem(bob, 'owner speaking').hover();
    await msgItem(bob, 'owner speaking').getByRole('button', { name: 'More actions' }).click();
    await bob.getByRole('menuitem', { name: 'Copy link' }).waitFor();
    assert.equal(await bob.getByRole('menuitem', { name: 'Delete' }).count(), 0);
    await bob.keyboard.press('Escape');

    // A moderator is offered the member menu on members only, not on the owner (`room.members`
    // gives each member's role; the server would refuse anyway).
    await eve.click('#room-meta');
    await eve.getByRole('button', { name: 'Actions for bob' }).waitFor();
    await eve.locator('#members-list .role-tag', { hasText: 'owner' }).waitFor();
    assert.equal(await eve.getByRole('button', { name: 'Actions for ana' }).count(), 0);
    await eve.keyboard.press('Escape');

    // A ban: the room leaves bob's sidebar, with a notice why; the others see the line.
    await memberAction(ana, 'bob', 'Ban…');
    await ana.fill('#ban-reason', 'spam');
    await ana.press('#ban-reason', 'Enter');
    await ana.locator('#members-report', { hasText: 'bob is banned.' }).waitFor();
    await ana.keyboard.press('Escape');
    await bob.locator('#toast', { hasText: 'You were banned from #town by ana: spam.' }).waitFor();
    await navRoom(bob, 'town').waitFor({ state: 'detached' });
    await systemLine(eve, 'ana banned bob: spam').waitFor();
    await systemLine(ana, 'ana banned bob: spam').waitFor();
    await ana.locator('#room-meta', { hasText: '2 members' }).waitFor();

    // The bans list, and lifting the ban.
    await ana.click('#btn-room-info');
    await ana.click('#room-info-bans');
    const row = ana.locator('#bans-list .browse-row', { hasText: 'bob' });
    await row.locator('.browse-meta', { hasText: 'by ana: spam' }).waitFor();
    await ana.getByRole('button', { name: 'Unban bob' }).click();
    await ana.locator('#bans-status', { hasText: 'bob may join again' }).waitFor();
    await ana.keyboard.press('Escape');
    await ana.keyboard.press('Escape');
    await systemLine(eve, 'ana lifted the ban on bob').waitFor();
    await joinRoom(bob, 'town');
  });

  test('an archived room is read-only and out of the default list', async () => {
    await openRoom(eve, 'town');
    await openRoom(ana, 'town');
    await ana.click('#btn-room-info');
    await ana.click('#room-info-settings');
    await ana.check('#settings-archived');
    await ana.click('#settings-form button[type="submit"]');
    await ana.locator('#dlg-settings').waitFor({ state: 'hidden' });
    await ana.keyboard.press('Escape');

    await eve.locator('#composer-notice', { hasText: 'This room is archived: it is read-only.' }).waitFor();
    assert.equal(await eve.isVisible('#composer'), false);
    await eve.locator('#room-name .archived-tag').waitFor();
    assert.equal(await eve.locator('#room-name > span:last-child').textContent(), 'town');
    assert.doesNotMatch(await eve.textContent('#room-name'), /null|undefined/);
    await systemLine(eve, 'ana archived the room').waitFor();
    // Out of the list once another room is open; "Archived rooms" brings it back.
    await openRoom(eve, 'general');
    await navRoom(eve, 'town').waitFor({ state: 'detached' });
    await eve.click('#btn-archived');
    await navRoom(eve, 'town').waitFor();
    await eve.click('#btn-archived');
    await navRoom(eve, 'town').waitFor({ state: 'detached' });
    // The room browser finds it among the archived rooms.
    await eve.click('#btn-browse');
    await eve.check('#browse-archived');
    await eve.locator('#browse-list .browse-row', { hasText: 'town' }).waitFor();
    await eve.getByRole('button', { name: 'Open #town' }).click();
    await eve.locator('#room-name', { hasText: 'town' }).waitFor();
    await eve.locator('#composer-notice', { hasText: 'read-only' }).waitFor();
  });

  test('an admin reads the audit log; a deactivated account is closed for good', async () => {
    const root = await openPage(browser, server);
    pages.push(root);
    try {
      await signUp(root, 'root', PASSWORD, 'signin');
      await root.locator('#btn-audit').waitFor();
      assert.equal(await ana.isVisible('#btn-audit'), false, 'not for others');
      await root.click('#btn-audit');
      await root.locator('#audit-list .audit-row', { hasText: 'ana banned bob: spam' }).waitFor();
      await root.locator('#audit-list .audit-row', { hasText: 'eve deleted a message of bob' }).waitFor();
      await root.keyboard.press('Escape');

      // root deactivates zed: zed's page is closed with 4010 and says so.
      const zed = await openPage(browser, server);
      await signUp(zed, 'zed');
      const reply = await root.evaluate(async () => {
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
        await call('a', 'auth', { token, presence: false });
        const done = await call('d', 'admin.deactivate', { user: 'zed' });
        ws.close();
        return done;
      });
      assert.equal(reply.type, 'ok', JSON.stringify(reply));
      await zed.locator('#auth-notice', { hasText: 'Your account was deactivated' }).waitFor();
      assert.equal(await zed.isVisible('#chat'), false);
      assert.deepEqual(zed.problems, []);
      await zed.context().close();
    } finally {
      await root.context().close();
    }
  });

  test('room events are stream entries: replayed once by resume, which goes past them', async () => {
    const carl = await openPage(browser, server, { relay: true });
    pages.push(carl);
    try {
      await signUp(carl, 'carl');
      await createRoom(ana, 'stream');
      await joinRoom(carl, 'stream');
      const roomId = Number(new URL(carl.url()).pathname.split('/')[2]);
      assert.ok(roomId > 0, carl.url());
      await memberAction(ana, 'carl', 'Make moderator');
      await ana.locator('#members-report', { hasText: 'carl is a moderator now.' }).waitFor();
      await ana.keyboard.press('Escape');
      await systemLine(carl, 'ana made carl a moderator').waitFor();

      // Cut off: a setting and a message are made meanwhile.
      const relay = carl.relay;
      relay.blocked = true;
      relay.cut();
      await carl.locator('#banner:not([hidden])').waitFor();
      await ana.click('#btn-room-info');
      await ana.click('#room-info-settings');
      await ana.fill('#settings-topic', 'while you were away');
      await ana.click('#settings-form button[type="submit"]');
      await ana.locator('#dlg-settings').waitFor({ state: 'hidden' });
      await ana.keyboard.press('Escape');
      await send(ana, 'after the topic');
      await waitForMessage(ana, 'after the topic');

      const authsBefore = relay.frames.filter((f) => f.type === 'auth').length;
      relay.blocked = false;
      await carl.locator('#banner-retry').click({ timeout: 6000 }).catch(() => {});
      await carl.waitForFunction(() => document.getElementById('me-status')?.textContent === 'Online', null, { timeout: 20000 });
      const auths = relay.frames.filter((f) => f.type === 'auth');
      assert.ok(auths.length > authsBefore);
      // The room's only entry carl had was the role event: resume asks after it, not from 0.
      assert.ok(auths[auths.length - 1].data.resume[String(roomId)] >= 1, JSON.stringify(auths[auths.length - 1].data.resume));

      await waitForMessage(carl, 'after the topic');
      await carl.locator('#room-topic', { hasText: exactly('while you were away') }).waitFor();
      await systemLine(carl, 'ana changed the topic to “while you were away”').waitFor();
      assert.equal(await systemLine(carl, 'ana made carl a moderator').count(), 1, 'not replayed twice');
      assert.equal(await systemLine(carl, 'ana changed the topic to “while you were away”').count(), 1);
      // carl's role came through the stream: he is offered the room's settings.
      await carl.click('#btn-room-info');
      await carl.locator('#room-info-kind', { hasText: 'you: Moderator' }).waitFor();
      assert.equal(await carl.isVisible('#room-info-settings'), true);
      await carl.keyboard.press('Escape');
    } finally {
      await carl.context().close();
    }
  });

  test('at 375px: the member menu and the settings dialog', async () => {
    const pia = await openPage(browser, server, { viewport: PHONE });
    pages.push(pia);
    try {
      await signUp(pia, 'pia');
      await pia.click('#drawer-open');
      await pia.click('#btn-create');
      await pia.fill('#create-name', 'tiny');
      await pia.press('#create-name', 'Enter');
      await pia.locator('#room-name', { hasText: 'tiny' }).waitFor();
      await joinRoom(bob, 'tiny');
      await pia.locator('#room-meta', { hasText: '2 members' }).waitFor();

      await pia.click('#room-meta');
      await pia.getByRole('button', { name: 'Actions for bob' }).click();
      const menu = pia.getByRole('menu', { name: 'Actions for bob' });
      await menu.waitFor();
      await inViewport(pia, '.popup.menu');
      await pia.getByRole('menuitem', { name: 'Mute for 1 hour', exact: true }).click();
      await pia.locator('#members-report', { hasText: 'bob is muted for 1 hour.' }).waitFor();
      await inViewport(pia, '#dlg-members');
      await pia.keyboard.press('Escape');
      await bob.locator('#composer-notice', { hasText: /^You are muted until / }).waitFor();

      await pia.click('#btn-room-info');
      await pia.click('#room-info-settings');
      await inViewport(pia, '#dlg-settings');
      await pia.fill('#settings-topic', 'Small but mighty, with a topic long enough to need an ellipsis on a phone');
      await pia.click('#settings-form button[type="submit"]');
      await pia.locator('#dlg-settings').waitFor({ state: 'hidden' });
      await pia.keyboard.press('Escape');
      await pia.locator('#room-topic', { hasText: 'Small but mighty' }).waitFor();
      await systemLine(pia, 'pia changed the topic to “Small but mighty, with a topic long enough to need an ellipsis on a phone”').waitFor();
      await noHorizontalScroll(pia);
      await inViewport(pia, '#room-topic');
      await inViewport(pia, '#btn-room-info');
      await inViewport(pia, '#composer-input');

      // Archived: the name still shows beside the "archived" mark.
      await pia.click('#btn-room-info');
      await pia.click('#room-info-settings');
      await pia.check('#settings-archived');
      await pia.click('#settings-form button[type="submit"]');
      await pia.locator('#dlg-settings').waitFor({ state: 'hidden' });
      await pia.keyboard.press('Escape');
      await pia.locator('#composer-notice', { hasText: 'read-only' }).waitFor();
      await pia.locator('#room-name .archived-tag').waitFor();
      const title = await pia.locator('#room-name > span:last-child').boundingBox();
      assert.ok(title && title.width >= 30, `the room's name is shown: ${JSON.stringify(title)}`);
      await inViewport(pia, '#composer-notice');
      await noHorizontalScroll(pia);
    } finally {
      await pia.context().close();
    }
  });
});
