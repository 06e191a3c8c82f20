// account.test.mjs — the account dialog in a real browser: it lists the signed-in devices with
// this one marked, signs another device out (whose page then shows the sign-in screen), refuses
// a wrong current password, changes the password (other devices signed out, this one stays),
// and "Sign out everywhere" ends every session.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, cleanup, waitOnline, WAIT_MS,
} from './harness.mjs';

async function openAccount(page) {
  await page.click('#btn-account');
  await page.locator('#dlg-account[open]').waitFor();
  await page.locator('#sessions-status', { hasText: /signed-in device/ }).waitFor();
}

async function rows(page) {
  return page.$$eval('#sessions-list li', (lis) => lis.map((li) => li.textContent));
}

async function signedOut(page) {
  await page.locator('#auth-screen').waitFor({ state: 'visible', timeout: WAIT_MS });
}

browserSuite('the account dialog', { timeout: 90000 }, () => {
  let server;
  let browser;
  let laptop;
  let phone;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    laptop = await openPage(browser, server);
    phone = await openPage(browser, server);
  });

  after(async () => {
    for (const page of [laptop, phone]) if (page) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('lists devices and signs another one out', async () => {
    await signUp(laptop, 'erin');
    await signUp(phone, 'erin', 'correct horse battery', 'signin');
    await openAccount(laptop);
    const listed = await rows(laptop);
    assert.equal(listed.length, 2, listed.join(' | '));
    assert.equal(listed.filter((t) => t.includes('this device')).length, 1);
    assert.ok(listed.every((t) => t.includes('Chrome on Linux')), listed.join(' | '));
    // The other device's row: sign it out.
    await laptop.locator('#sessions-list li', { hasNotText: 'this device' })
      .getByRole('button', { name: /Sign out/ }).click();
    await laptop.locator('#sessions-status', { hasText: '1 signed-in device' }).waitFor();
    await signedOut(phone);
    await laptop.click('#dlg-account [data-close]');
    await waitOnline(laptop);
  });

  test('a password change needs the current one and signs the other devices out', async () => {
    await signUp(phone, 'erin', 'correct horse battery', 'signin');
    await openAccount(laptop);
    await laptop.fill('#password-old', 'not my password');
    await laptop.fill('#password-new', 'battery staple horse');
    await laptop.click('#password-form button[type="submit"]');
    await laptop.locator('#password-error', { hasText: 'current password is wrong' }).waitFor();
    await laptop.fill('#password-old', 'correct horse battery');
    await laptop.fill('#password-new', 'battery staple horse');
    await laptop.click('#password-form button[type="submit"]');
    await laptop.locator('#password-status', { hasText: 'Password changed' }).waitFor();
    await signedOut(phone);
    await laptop.locator('#sessions-status', { hasText: '1 signed-in device' }).waitFor();
    await laptop.click('#dlg-account [data-close]');
    await waitOnline(laptop);
  });

  test('sign out everywhere ends every session', async () => {
    await signUp(phone, 'erin', 'battery staple horse', 'signin');
    await openAccount(laptop);
    await laptop.click('#btn-signout-all');
    await signedOut(laptop);
    await signedOut(phone);
    assert.equal(await laptop.evaluate(() => localStorage.getItem('natter.session')), null);
  });
});
