// bots.test.mjs — "Bots and integrations" in a real browser: make a bot in the account dialog,
// add it to the open room, make a token (shown once), post with it over the HTTP API
// (docs/api.md) with fetch, and see the message arrive in the room view like anyone's; then
// revoke the token in the dialog, and the next post is refused (401). The bot is marked as one
// on its messages (still once it is deleted), in the members list and on its profile card. And a room's incoming webhook,
// added and deleted in its settings dialog.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, cleanup, waitOnline, waitForMessage,
  exactly, WAIT_MS,
} from './harness.mjs';

async function openAccount(page) {
  await page.click('#btn-account');
  await page.locator('#dlg-account[open]').waitFor();
  await page.locator('#bots-status', { hasText: /bot/ }).waitFor();
}

/** POST /api/rooms/{general}/messages with `token`, from the page's origin; returns the status. */
function postAs(page, token, body, clientId) {
  return page.evaluate(async ({ token, body, clientId }) => {
    const auth = { Authorization: `Bearer ${token}` };
    const rooms = await fetch('/api/rooms', { headers: auth });
    if (!rooms.ok) return rooms.status;
    const general = (await rooms.json()).rooms.find((r) => r.name === 'general');
    const res = await fetch(`/api/rooms/${general.id}/messages`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ body, client_id: clientId }),
    });
    return res.status;
  }, { token, body, clientId });
}

browserSuite('bots and integrations', { timeout: 90000 }, () => {
  let server;
  let browser;
  let page;
  /** The bot's token, as the dialog showed it once. */
  let token;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    page = await openPage(browser, server);
  });

  after(async () => {
    if (page) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('a bot made in the dialog posts with its token into the room view', async () => {
    await signUp(page, 'rita');
    await openAccount(page);
    await page.fill('#bot-name', 'ci-bot');
    await page.click('#bot-form button[type="submit"]');
    const row = page.locator('#bots-list li[data-bot-name="ci-bot"]');
    await row.waitFor();
    await row.getByRole('button', { name: 'Add ci-bot to the room open now' }).click();
    await page.locator('#bots-status', { hasText: 'ci-bot is in general now' }).waitFor();
    await page.locator('#bots-list li[data-bot-name="ci-bot"]')
      .getByRole('button', { name: 'New token for ci-bot' }).click();
    await page.locator('#bot-secret').waitFor({ state: 'visible' });
    token = await page.locator('#bot-secret-text').textContent();
    assert.match(token, /^nbt_/);
    await page.click('#dlg-account [data-close]');
    await waitOnline(page);

    assert.equal(await postAs(page, token, 'deployed 1.4', 'deploy-1.4'), 201);
    await waitForMessage(page, 'deployed 1.4');
    const sender = page.locator('.msg', { has: page.locator('.msg-text', { hasText: exactly('deployed 1.4') }) })
      .locator('.msg-sender');
    await sender.waitFor({ timeout: WAIT_MS });
    assert.equal((await sender.textContent()).trim(), 'ci-bot');
    // Marked as a bot: its message (once the room's members, `"bot": true`, are known), its
    // row in the members list, and its profile card; rita, a person, is not.
    await page.locator('.msg', { has: page.locator('.msg-text', { hasText: exactly('deployed 1.4') }) })
      .locator('.msg-meta .bot-tag', { hasText: exactly('bot') }).waitFor({ timeout: WAIT_MS });
    await page.click('#room-meta');
    const botRow = page.locator('#members-list .member-row[data-member="ci-bot"]');
    await botRow.locator('.bot-tag', { hasText: exactly('bot') }).waitFor();
    assert.equal(await page.locator('#members-list .member-row[data-member="rita"] .bot-tag').count(), 0);
    // A bot has no presence: not greyed as offline, no "last seen", no presence dot.
    assert.equal(await botRow.evaluate((el) => el.classList.contains('offline')), false);
    assert.equal((await botRow.locator('.member-seen').textContent()).trim(), '');
    assert.equal(await botRow.locator('.presence-dot').count(), 0);
    await botRow.getByRole('button', { name: /^Profile of ci-bot/ }).click();
    await page.locator('#profile-card-user', { hasText: exactly('@ci-bot') }).waitFor();
    await page.locator('#profile-card-bot').waitFor({ state: 'visible' });
    assert.equal((await page.locator('#profile-card-seen').textContent()).trim(), '');
    await page.keyboard.press('Escape');
    await page.locator('#dlg-profile-card').waitFor({ state: 'hidden' });
    await page.keyboard.press('Escape');
    await page.locator('#dlg-members').waitFor({ state: 'hidden' });
    // The same client_id again: the stored message, nothing new.
    assert.equal(await postAs(page, token, 'deployed 1.4', 'deploy-1.4'), 200);
  });

  test('a token revoked in the dialog is refused', async () => {
    await openAccount(page);
    const row = page.locator('#bots-list li[data-bot-name="ci-bot"]');
    await row.locator('.bot-token').first().waitFor();
    assert.equal(await page.locator('#bot-secret').isHidden(), true, 'a token is shown once');
    await row.getByRole('button', { name: 'Revoke token token of ci-bot' }).click();
    await page.locator('#bots-list li[data-bot-name="ci-bot"] .bot-token').waitFor({ state: 'detached' });
    await page.click('#dlg-account [data-close]');
    assert.equal(await postAs(page, token, 'still here?', 'x1'), 401);
  });

  test("a deleted bot's messages still say they were a bot's, after a reload", async () => {
    await openAccount(page);
    await page.getByRole('button', { name: 'Delete ci-bot' }).click();
    await page.locator('#bots-list li[data-bot-name="ci-bot"]').waitFor({ state: 'detached' });
    await page.click('#dlg-account [data-close]');
    // It left general ("deleted user left"); the members list no longer knows it, so the tag
    // comes from the message's own sender (`"bot": true`).
    await page.locator('#message-list .notice', { hasText: 'deleted user left' }).waitFor();
    await page.reload();
    await waitOnline(page);
    const msg = page.locator('.msg', { has: page.locator('.msg-text', { hasText: exactly('deployed 1.4') }) });
    await msg.waitFor({ timeout: WAIT_MS });
    assert.equal((await msg.locator('.msg-sender').textContent()).trim(), 'deleted user');
    await msg.locator('.msg-meta .bot-tag', { hasText: exactly('bot') }).waitFor();
  });

  test('a webhook added in the room settings posts into the room; deleted, its URL is dead', async () => {
    // rita signed up first: a server admin, who manages general's webhooks.
    await page.click('#btn-room-info');
    await page.click('#room-info-settings');
    await page.locator('#hooks-status', { hasText: 'No webhooks' }).waitFor();
    await page.fill('#hook-name', 'Alerts');
    await page.click('#hook-add');
    await page.locator('#hook-secret').waitFor({ state: 'visible' });
    const url = await page.locator('#hook-secret-text').textContent();
    assert.match(url, /\/hooks\/nwh_/);
    await page.locator('#hooks-list li', { hasText: 'Alerts' }).waitFor();
    const hook = (text) => page.evaluate(async ({ url, text }) => (await fetch(url, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ text }),
    })).status, { url, text });
    assert.equal(await hook('build 2291 passed'), 201);
    await page.getByRole('button', { name: 'Delete webhook Alerts' }).click();
    await page.locator('#hooks-status', { hasText: 'No webhooks' }).waitFor();
    await page.keyboard.press('Escape');
    await page.locator('#dlg-settings').waitFor({ state: 'hidden' });
    await waitForMessage(page, 'build 2291 passed');
    assert.equal(await hook('gone'), 404);
  });
});
