// mentions.test.mjs — @-mentions in the browser (issue 18): typing `@` in the composer lists
// the room's members and `@room`, filtered as one types; arrows and Enter/Tab pick, Escape
// closes. The person mentioned sees the message highlighted and a mention badge on the room
// in the sidebar (after a reload too: the server's count) until they read it; `@room` highlights for everyone; the thread composer
// offers the same list.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, msgItem,
  messageAction, openRoom, exactly, cleanup,
} from './harness.mjs';

browserSuite('mentions', { timeout: 120000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;
  let carl;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    ana = await openPage(browser, server);
    await signUp(ana, 'ana');
    bob = await openPage(browser, server);
    await signUp(bob, 'bob');
    carl = await openPage(browser, server);
    await signUp(carl, 'carl');
  });

  after(async () => {
    for (const page of [ana, bob, carl]) if (page) assert.deepEqual(page.problems, [], 'no page errors or CSP violations');
    await cleanup({ browser, servers: [server] });
  });

  const options = (page, within = '#composer') => page.locator(`${within} .mention-option .mention-name`).allTextContents();

  test('the autocomplete lists members and @room, filters, picks by keyboard', async () => {
    // bob is elsewhere when he is mentioned.
    await bob.click('#btn-create');
    await bob.fill('#create-name', 'elsewhere');
    await bob.press('#create-name', 'Enter');
    await bob.locator('#room-name', { hasText: 'elsewhere' }).waitFor();

    const input = ana.locator('#composer-input');
    await input.fill('');
    await input.pressSequentially('hey @');
    const list = ana.locator('#composer .mention-list');
    await list.waitFor();
    await ana.locator('#composer .mention-option', { hasText: '@carl' }).waitFor();
    assert.deepEqual(await options(ana), ['@bob', '@carl', '@room'], 'members but me, then @room');
    assert.equal(await input.getAttribute('aria-expanded'), 'true');
    // Filtered as one types (case-insensitively).
    await input.pressSequentially('B');
    await ana.locator('#composer .mention-option', { hasText: '@carl' }).waitFor({ state: 'detached' });
    assert.deepEqual(await options(ana), ['@bob']);
    // Escape closes, the text stays.
    await input.press('Escape');
    await list.waitFor({ state: 'hidden' });
    assert.equal(await input.inputValue(), 'hey @B');
    // Back to "@", down to carl, up to bob, Enter picks bob (and does not send).
    await input.fill('hey @');
    await ana.locator('#composer .mention-option', { hasText: '@carl' }).waitFor();
    await input.press('ArrowDown');
    await ana.locator('#composer .mention-option.active', { hasText: '@carl' }).waitFor();
    await input.press('ArrowUp');
    await ana.locator('#composer .mention-option.active', { hasText: '@bob' }).waitFor();
    await input.press('Enter');
    await list.waitFor({ state: 'hidden' });
    assert.equal(await input.inputValue(), 'hey @bob ');
    await input.pressSequentially('look at this');
    await input.press('Enter');
    await waitForMessage(ana, 'hey @bob look at this');
  });

  test('the one mentioned sees a badge on the room and the message highlighted', async () => {
    const general = bob.locator('#room-list .nav-item', { hasText: 'general' });
    await general.locator('.mention-count', { hasText: exactly('@1') }).waitFor();
    assert.match(await general.getAttribute('aria-label'), /1 mention/);
    // carl (not mentioned) has no badge for it.
    await carl.locator('#room-list .nav-item', { hasText: 'general' }).waitFor();
    assert.equal(await carl.locator('.mention-count').count(), 0);
    await waitForMessage(carl, 'hey @bob look at this');
    assert.equal(await msgItem(carl, 'hey @bob look at this').evaluate((el) => el.classList.contains('mentioned')), false);

    // After a reload the count comes from the server (the auth reply's Room.mentions).
    await bob.reload();
    await bob.locator('#room-name', { hasText: 'elsewhere' }).waitFor();
    await general.locator('.mention-count', { hasText: exactly('@1') }).waitFor();

    await openRoom(bob, 'general');
    const msg = msgItem(bob, 'hey @bob look at this');
    await msg.waitFor();
    assert.equal(await msg.evaluate((el) => el.classList.contains('mentioned')), true);
    const bg = await msg.evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.notEqual(bg, 'rgba(0, 0, 0, 0)', 'a tinted background');
    // Read: the badge goes.
    await general.locator('.mention-count').waitFor({ state: 'detached' });
    // The sender's own copy is not highlighted.
    assert.equal(await msgItem(ana, 'hey @bob look at this').evaluate((el) => el.classList.contains('mentioned')), false);
  });

  test('@room from the thread composer highlights for everyone; Tab picks', async () => {
    await openRoom(carl, 'general');
    await messageAction(carl, msgItem(carl, 'hey @bob look at this'), 'Reply in thread');
    const input = carl.locator('#thread-input');
    await input.waitFor();
    await input.pressSequentially('heads up @ro');
    await carl.locator('#thread-composer .mention-option', { hasText: '@room' }).waitFor();
    await input.press('Tab');
    assert.equal(await input.inputValue(), 'heads up @room ');
    await input.pressSequentially('meeting now');
    await carl.check('#thread-also-room');
    await input.press('Enter');
    for (const page of [ana, bob]) {
      await waitForMessage(page, 'heads up @room meeting now');
      assert.equal(await msgItem(page, 'heads up @room meeting now').evaluate((el) => el.classList.contains('mentioned')), true);
    }
  });
});
