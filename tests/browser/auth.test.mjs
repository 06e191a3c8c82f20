// auth.test.mjs — the sign-in screen in a real browser: clear errors for a taken name, a wrong
// password, a short password and a server that is down; signing out ends the session for good;
// guest access offered only by a server that allows it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, cleanup, send, waitForMessage, WAIT_MS,
} from './harness.mjs';

async function submit(page, mode, name, password) {
  await page.click(mode === 'signup' ? '#mode-signup' : '#mode-signin');
  await page.fill('#auth-username', name);
  await page.fill('#auth-password', password);
  await page.click('#auth-submit');
}

async function errorShown(page, text) {
  await page.locator('#auth-error', { hasText: text }).waitFor();
  assert.equal(await page.isVisible('#auth-screen'), true, 'still on the sign-in screen');
}

browserSuite('signing in and out', { timeout: 90000 }, () => {
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

  test('a server without guest access offers none', async () => {
    await page.locator('#auth-screen').waitFor();
    // The answer to GET /api/config has come when the page has asked for it.
    await page.waitForFunction(() => performance.getEntriesByType('resource')
      .some((e) => e.name.endsWith('/api/config') && e.responseEnd > 0), null, { timeout: WAIT_MS });
    assert.equal(await page.isVisible('#mode-guest'), false);
  });

  test('sign up, sign out: the session ends and stays ended after a reload', async () => {
    await signUp(page, 'dora');
    const { token } = await page.evaluate(() => JSON.parse(localStorage.getItem('natter.session')));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#auth-screen').waitFor();
    assert.equal(await page.isVisible('#chat'), false);
    await page.reload();
    await page.locator('#auth-screen').waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('natter.session')), null);
    // The server forgot the token too.
    const deadline = Date.now() + WAIT_MS;
    let status;
    do {
      status = (await page.request.get(`${server.url}/api/me`, { headers: { Authorization: `Bearer ${token}` } })).status();
    } while (status !== 401 && Date.now() < deadline);
    assert.equal(status, 401);
  });

  test('a taken name, a short password and a wrong password each say so', async () => {
    await submit(page, 'signup', 'DORA', 'another good password');
    await errorShown(page, 'That name is taken');
    assert.equal(await page.getAttribute('#auth-username', 'aria-invalid'), 'true');

    await submit(page, 'signup', 'eve', 'short');
    await errorShown(page, 'at least 8 characters');

    await submit(page, 'signup', 'bad name!', 'long enough password');
    await errorShown(page, 'letters, digits');

    await submit(page, 'signin', 'dora', 'not the password');
    await errorShown(page, 'Wrong username or password.');

    await submit(page, 'signin', 'nobody', 'not the password');
    await errorShown(page, 'Wrong username or password.');

    // And the right password works, names being case-insensitive.
    await submit(page, 'signin', 'Dora', 'correct horse battery');
    await page.locator('#chat').waitFor();
    assert.equal(await page.textContent('#me-name'), 'dora');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#auth-screen').waitFor();
  });

  test('a session the server no longer knows goes back to sign-in', async () => {
    await page.evaluate(() => localStorage.setItem('natter.session', JSON.stringify({
      token: 'x'.repeat(43), user: { id: 999, name: 'ghost', guest: false },
    })));
    await page.reload();
    await page.locator('#auth-notice', { hasText: 'Your session has ended' }).waitFor();
    assert.equal(await page.isVisible('#chat'), false);
    assert.equal(await page.evaluate(() => localStorage.getItem('natter.session')), null);
  });

  test('a server that is down is reported as such', async () => {
    // Signed in when it goes down: the banner says so and counts down to the next try.
    await submit(page, 'signin', 'dora', 'correct horse battery');
    await page.locator('#chat').waitFor();
    await server.stop();
    await page.locator('#banner', { hasText: /(Connection lost|Cannot reach the server)\. Retrying in \d+s\./ }).waitFor();
    assert.equal(await page.isVisible('#banner-retry'), true);
    // Signing in while it is down.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#auth-screen').waitFor();
    await submit(page, 'signin', 'dora', 'correct horse battery');
    await errorShown(page, 'Cannot reach the server');
    assert.equal(await page.isEnabled('#auth-submit'), true, 'the form can be sent again');
  });
});

browserSuite('joining as a guest', { timeout: 90000 }, () => {
  let server;
  let browser;
  let pages = [];

  before(async () => {
    server = await NatterServer.start({ extraArgs: ['--allow-guests'] });
    browser = await launchBrowser();
  });

  after(async () => {
    for (const page of pages) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('a guest joins with a nickname, chats, and is marked as a guest', async () => {
    const member = await openPage(browser, server);
    const guest = await openPage(browser, server);
    pages = [member, guest];
    await signUp(member, 'host');

    await guest.locator('#mode-guest').waitFor({ state: 'visible' });
    await guest.click('#mode-guest');
    assert.equal(await guest.textContent('#auth-title'), 'Join as a guest');
    assert.equal(await guest.textContent('#auth-username-label'), 'Nickname');
    assert.equal(await guest.isVisible('#auth-password'), false, 'no password for a guest');
    // A nickname that is taken says so.
    await guest.fill('#auth-username', 'HOST');
    await guest.click('#auth-submit');
    await guest.locator('#auth-error', { hasText: 'Choose another nickname' }).waitFor();
    await guest.fill('#auth-username', 'visitor');
    await guest.click('#auth-submit');
    await guest.locator('#chat').waitFor();
    await guest.locator('#me-status', { hasText: 'Online' }).waitFor();
    assert.equal(await guest.textContent('#me-name'), 'visitor');

    await send(guest, 'hello from a guest');
    await waitForMessage(member, 'hello from a guest');
    // The member sees the guest online, tagged as a guest.
    await member.locator('#people-list li', { hasText: 'visitor' }).locator('.guest-tag').waitFor();

    // Signing out ends the guest session; the sign-in screen still offers guest access.
    await guest.getByRole('button', { name: 'Sign out' }).click();
    await guest.locator('#auth-screen').waitFor();
    await guest.locator('#mode-guest').waitFor({ state: 'visible' });
  });
});
