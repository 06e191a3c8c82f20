// people.test.mjs — people in the web client (issue 20): a group DM of three created by one
// and shown live to the others, messages both ways, "Add person" making a new group whose
// newcomer sees no earlier history, leaving a group; profiles (display name, status, picture)
// seen by another person on messages after a reload, in the @-autocomplete and in the profile
// card with the picture loaded; "last seen" and greyed rows for someone offline, in the members list and the DM list;
// exporting one's data as a file that holds one's messages; deleting one's account (a wrong
// password refused, the right one signs out; the others see "deleted user" after a reload);
// the profile dialog and a group's header at 375 px; and a profile dialog that keeps what was
// typed before the fresh profile arrived. People are separate browser contexts.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, openRoom,
  waitOnline, cleanup, exactly, makePng,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';
const PHONE = { width: 375, height: 812 };

/** The DM list's entry of a direct conversation, by its shown name ("bob, carol"). */
function dmItem(page, title) {
  return page.locator('#dm-list .nav-item', { has: page.locator('.nav-label', { hasText: exactly(title) }) });
}

/** Start a DM (one name) or a group DM (several) from the "New message" dialog. */
async function newConversation(page, names) {
  await page.click('#btn-new-dm');
  await page.fill('#dm-name', names);
  await page.press('#dm-name', 'Enter');
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

/** An <img> matching `selector` has loaded (its bytes decoded, not a broken image). */
function imageLoaded(page, selector) {
  return page.waitForFunction((sel) => {
    const img = document.querySelector(sel);
    return Boolean(img && img.complete && img.naturalWidth > 0);
  }, selector);
}

browserSuite('people: group DMs, profiles, account', { timeout: 240000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;
  let carol;
  let dave;
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
    carol = await openPage(browser, server);
    dave = await openPage(browser, server);
    pages.push(ana, bob, carol, dave);
    await signUp(ana, 'ana');
    await signUp(bob, 'bob');
    await signUp(carol, 'carol');
    await signUp(dave, 'dave');
  });

  after(async () => {
    for (const page of pages) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('a group DM of three: live for all, messages flow, Add person starts a new group', async () => {
    await newConversation(ana, 'bob, carol');
    await ana.locator('#room-name', { hasText: 'bob, carol' }).waitFor();
    await ana.locator('#room-meta', { hasText: '3 people' }).waitFor();
    // The others see it at once (`room_added`), named by the others in it.
    await dmItem(bob, 'ana, carol').waitFor();
    await dmItem(carol, 'ana, bob').waitFor();

    await send(ana, 'hello group');
    await waitForMessage(ana, 'hello group');
    // Every message in a group is for me: the urgent badge, as in a DM.
    await dmItem(carol, 'ana, bob').locator('.badge.urgent', { hasText: '1' }).waitFor();
    await openRoom(bob, 'ana, carol');
    await waitForMessage(bob, 'hello group');
    await send(bob, 'hi all');
    await waitForMessage(ana, 'hi all');
    await openRoom(carol, 'ana, bob');
    await waitForMessage(carol, 'hi all');

    // Add person: a new conversation with dave, who sees nothing of the first one.
    await openRoom(ana, 'bob, carol');
    await ana.click('#btn-group-add');
    await ana.locator('#dlg-group-add', { hasText: 'starts a new conversation' }).waitFor();
    await ana.fill('#group-add-name', 'dave');
    await ana.press('#group-add-name', 'Enter');
    await ana.locator('#room-name', { hasText: 'bob, carol, dave' }).waitFor();
    await ana.locator('#toast', { hasText: 'A new conversation with bob, carol, dave started' }).waitFor();
    await ana.locator('#room-meta', { hasText: '4 people' }).waitFor();
    await dmItem(ana, 'bob, carol').waitFor();
    await dmItem(dave, 'ana, bob, carol').waitFor();
    await openRoom(dave, 'ana, bob, carol');
    await dave.locator('#history-status', { hasText: 'This is the start of your conversation with ana, bob, carol.' }).waitFor();
    assert.equal(await dave.locator('#message-list .msg').count(), 0);
    await send(ana, 'welcome dave');
    await waitForMessage(dave, 'welcome dave');
    assert.equal(await dave.locator('#message-list .msg', { hasText: 'hello group' }).count(), 0);

    // The first group goes on without dave; carol leaves the new one.
    await send(bob, 'still here');
    await waitForMessage(carol, 'still here');
    await dmItem(carol, 'ana, bob, dave').waitFor();
    await openRoom(carol, 'ana, bob, dave');
    await carol.click('#btn-leave');
    await dmItem(carol, 'ana, bob, dave').waitFor({ state: 'detached' });
    await dmItem(carol, 'ana, bob').waitFor();
    // The others' copy is named by who is still in it.
    await dmItem(dave, 'ana, bob').waitFor();
    await dave.locator('#message-list .notice', { hasText: 'carol left' }).waitFor();
  });

  test('a profile: display name, status and picture, seen by others after a reload', async () => {
    await openRoom(ana, 'general');
    await send(ana, 'from ana lima');
    await waitForMessage(ana, 'from ana lima');

    await ana.click('#btn-profile');
    await ana.locator('#profile-username', { hasText: exactly('@ana') }).waitFor();
    // The server's validation error is shown as it is.
    await ana.fill('#profile-status', 'x'.repeat(141));
    await ana.click('#profile-form button[type="submit"]');
    await ana.locator('#profile-error', { hasText: /\S/ }).waitFor();
    await ana.fill('#profile-display', 'Ana Lima');
    await ana.fill('#profile-status', 'in Lisbon this week');
    await ana.click('#profile-form button[type="submit"]');
    await ana.locator('#profile-saved', { hasText: 'Saved' }).waitFor();
    assert.equal(await ana.textContent('#profile-error'), '');
    await ana.setInputFiles('#profile-avatar-input', { name: 'me.png', mimeType: 'image/png', buffer: makePng(96, 96) });
    await ana.locator('#profile-avatar-status', { hasText: 'Picture updated.' }).waitFor();
    await imageLoaded(ana, '#profile-avatar img.avatar-img');
    await ana.locator('#profile-avatar-remove').waitFor();
    await ana.keyboard.press('Escape');
    await ana.locator('#me-name', { hasText: exactly('Ana Lima') }).waitFor();

    // bob, after a reload: the display name on ana's message, her picture beside it.
    await bob.reload();
    await waitOnline(bob);
    await openRoom(bob, 'general');
    const sender = bob.locator('#message-list .msg.other .msg-sender', { hasText: exactly('Ana Lima') });
    await sender.first().waitFor();
    await imageLoaded(bob, '#message-list .msg.other[data-sender="ana"] .avatar img.avatar-img');
    // The group is named by display names too.
    await dmItem(bob, 'Ana Lima, carol').waitFor();
    // The @-autocomplete finds her by her display name; the mention is her username.
    const input = bob.locator('#composer-input');
    await input.fill('');
    await input.pressSequentially('hi @lim');
    const option = bob.locator('#composer .mention-option', { hasText: '@ana' });
    await option.locator('.mention-hint', { hasText: exactly('Ana Lima') }).waitFor();
    await input.press('Escape');
    await input.fill('');

    // The profile card: display name, @name, status, picture, online, and Message.
    await sender.first().click();
    await bob.locator('#profile-card-name', { hasText: exactly('Ana Lima') }).waitFor();
    assert.equal(await bob.textContent('#profile-card-user'), '@ana');
    await bob.locator('#profile-card-status', { hasText: exactly('in Lisbon this week') }).waitFor();
    await bob.locator('#profile-card-seen', { hasText: exactly('online') }).waitFor();
    await imageLoaded(bob, '#profile-card-avatar img.avatar-img');
    await bob.click('#profile-card-message');
    await bob.locator('#room-name', { hasText: 'Ana Lima' }).waitFor();
    await dmItem(bob, 'Ana Lima').waitFor();
  });

  test('someone offline: greyed with "last seen" in the members list and the DM list', async () => {
    await openRoom(bob, 'general');
    await carol.close();
    pages.splice(pages.indexOf(carol), 1);
    await bob.locator('#people-list [data-person="carol"]').waitFor({ state: 'detached' });

    await bob.click('#room-meta');
    const row = bob.locator('#members-list .member-row[data-member="carol"]');
    await row.waitFor();
    assert.equal(await row.evaluate((el) => el.classList.contains('offline')), true);
    await row.locator('.member-seen', { hasText: /^last seen / }).waitFor();
    // Online first, then offline.
    const order = await bob.$$eval('#members-list .member-row', (els) => els.map((el) => el.classList.contains('offline')));
    assert.deepEqual(order, [...order].sort(), `online before offline: ${order}`);
    assert.equal(await bob.locator('#members-list .member-row.offline[data-member="ana"]').count(), 0);
    // Her card says when she was last seen.
    await row.getByRole('button', { name: /^Profile of carol/ }).click();
    await bob.locator('#profile-card-seen', { hasText: /^last seen / }).waitFor();
    await bob.keyboard.press('Escape');
    await bob.locator('#dlg-profile-card').waitFor({ state: 'hidden' });
    await bob.keyboard.press('Escape');
    await bob.locator('#dlg-members').waitFor({ state: 'hidden' });

    // A DM with her is greyed in the DM list while she is away.
    await newConversation(bob, 'carol');
    await bob.locator('#room-name', { hasText: 'carol' }).waitFor();
    await dmItem(bob, 'carol').and(bob.locator('.offline')).waitFor();
    await bob.locator('#room-meta', { hasText: /^Last seen / }).waitFor();
  });

  test('export my data: a JSON file with my messages', async () => {
    await ana.click('#btn-account');
    const [download] = await Promise.all([ana.waitForEvent('download'), ana.click('#btn-export')]);
    await ana.locator('#export-status', { hasText: /^Saved as / }).waitFor();
    const data = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
    assert.equal(data.user.name, 'ana');
    const bodies = data.messages.map((m) => m.body);
    for (const body of ['hello group', 'welcome dave', 'from ana lima']) assert.ok(bodies.includes(body), `${body} in ${bodies}`);
    assert.ok(!bodies.includes('hi all'), 'only my own messages');
    await ana.keyboard.press('Escape');
  });

  test('delete my account: a wrong password is refused; then signed out, "deleted user" for others', async () => {
    await openRoom(dave, 'general');
    await openRoom(bob, 'general');
    await send(dave, 'dave was here');
    await waitForMessage(bob, 'dave was here');
    await dave.click('#btn-account');
    await dave.click('#btn-delete-account');
    await dave.fill('#delete-account-password', 'not my password');
    await dave.press('#delete-account-password', 'Enter');
    await dave.locator('#delete-account-error', { hasText: 'That password is wrong.' }).waitFor();
    assert.equal(await dave.isVisible('#chat'), true);
    await dave.fill('#delete-account-password', PASSWORD);
    await dave.press('#delete-account-password', 'Enter');
    await dave.locator('#auth-screen').waitFor({ state: 'visible' });
    await dave.locator('#auth-notice', { hasText: 'Your account was deleted.' }).waitFor();

    await bob.reload();
    await waitOnline(bob);
    await openRoom(bob, 'general');
    const item = bob.locator('#message-list .msg', { has: bob.locator('.msg-text', { hasText: exactly('dave was here') }) });
    await item.waitFor();
    await bob.waitForFunction(() => [...document.querySelectorAll('#message-list .msg .msg-sender')]
      .some((el) => el.textContent === 'deleted user'));
  });

  test('at 375 px: the profile dialog and a group header fit', async () => {
    const phone = await openPage(browser, server, { viewport: PHONE });
    pages.push(phone);
    await signUp(phone, 'bob', PASSWORD, 'signin');
    await phone.click('#drawer-open');
    await phone.click('#btn-profile');
    await phone.locator('#dlg-profile').waitFor({ state: 'visible' });
    await inViewport(phone, '#dlg-profile');
    await inViewport(phone, '#profile-avatar-upload');
    await noHorizontalScroll(phone);
    await phone.keyboard.press('Escape');

    await phone.click('#drawer-open');
    await openRoom(phone, 'Ana Lima, carol');
    await phone.locator('#room-meta', { hasText: '3 people' }).waitFor();
    await inViewport(phone, '#btn-group-add');
    await inViewport(phone, '#btn-leave');
    await inViewport(phone, '#room-name');
    await noHorizontalScroll(phone);
    await phone.click('#btn-group-add');
    await inViewport(phone, '#dlg-group-add');
    await noHorizontalScroll(phone);
    await phone.keyboard.press('Escape');
  });

  test('the profile dialog keeps what was typed before the fresh profile arrived', async () => {
    const erin = await openPage(browser, server, { relay: true });
    pages.push(erin);
    await signUp(erin, 'erin');
    await erin.click('#btn-profile');
    await erin.fill('#profile-status', 'from the server');
    await erin.click('#profile-form button[type="submit"]');
    await erin.locator('#profile-saved', { hasText: 'Saved' }).waitFor();
    await erin.keyboard.press('Escape');

    // The dialog asks for the fresh profile when it opens: hold that request until the user
    // has typed, then let the answer (status "from the server") through.
    let release;
    const typed = new Promise((resolve) => { release = resolve; });
    let answered;
    const answer = new Promise((resolve) => { answered = resolve; });
    erin.relay.onClientFrame = (frame, r) => {
      if (frame.type !== 'profile.get') return false;
      typed.then(() => r.forward());
      return true;
    };
    erin.relay.onServerFrame = (raw) => {
      if (raw.includes('"from the server"')) answered();
    };
    await erin.click('#btn-profile');
    await erin.fill('#profile-status', 'typed while it loaded');
    release();
    await answer;
    erin.relay.onClientFrame = null;
    erin.relay.onServerFrame = null;
    await erin.click('#profile-form button[type="submit"]');
    await erin.locator('#profile-saved', { hasText: 'Saved' }).waitFor();
    assert.equal(await erin.inputValue('#profile-status'), 'typed while it loaded');
    await erin.keyboard.press('Escape');
  });
});
