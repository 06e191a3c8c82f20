// threads.test.mjs — threads in the browser (issue 18): "Reply in thread" opens a side panel
// beside the room on a desktop and a full-screen panel with a back button at 375 px; replies
// stay out of the room's timeline unless sent with "Also send to room" (then they show there
// with "replied to a thread"); the first message counts "N replies · last reply <time>" for
// everyone, live; replies reach an open panel live; older replies load on scrolling up.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, msgItem,
  messageAction, messageTexts, exactly, cleanup,
} from './harness.mjs';

browserSuite('threads', { timeout: 120000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;

  before(async () => {
    // The last test writes 60 replies quickly: lift the per-connection rate.
    server = await NatterServer.start({ extraArgs: ['--rate-per-sec', '500', '--rate-burst', '500'] });
    browser = await launchBrowser();
    ana = await openPage(browser, server);
    await signUp(ana, 'ana');
    bob = await openPage(browser, server, { viewport: { width: 375, height: 812 } });
    await signUp(bob, 'bob');
  });

  after(async () => {
    for (const page of [ana, bob]) if (page) assert.deepEqual(page.problems, [], 'no page errors or CSP violations');
    await cleanup({ browser, servers: [server] });
  });

  test('desktop: a side panel beside the room; replies stay out of the timeline', async () => {
    await send(ana, 'plan for friday?');
    await waitForMessage(bob, 'plan for friday?');
    const parent = msgItem(ana, 'plan for friday?');
    await parent.hover();
    await parent.getByRole('button', { name: 'Reply in thread' }).click();
    const panel = ana.locator('#thread-panel');
    await panel.waitFor();
    await panel.locator('#thread-parent .msg-text', { hasText: exactly('plan for friday?') }).waitFor();
    await panel.locator('#thread-status', { hasText: 'No replies yet.' }).waitFor();
    // Beside the room, which stays in view.
    const room = await ana.locator('#timeline').boundingBox();
    const side = await panel.boundingBox();
    assert.ok(room.width > 300, 'the room keeps its width');
    assert.ok(side.x >= room.x + room.width - 1, 'the panel is to the right of the room');
    assert.equal(await ana.locator('#thread-back').isVisible(), false, 'no back button on a desktop');

    await ana.fill('#thread-input', 'I can do the morning');
    await ana.press('#thread-input', 'Enter');
    await msgItem(ana, 'I can do the morning', '#thread-list').waitFor();
    // The first message counts it for everyone; the reply is not in the timeline.
    for (const page of [ana, bob]) {
      await msgItem(page, 'plan for friday?').locator('.thread-summary', { hasText: /^1 reply · last reply \S/ }).waitFor();
      assert.equal(await msgItem(page, 'I can do the morning').count(), 0);
    }
  });

  test('375 px: full screen with a back button; "Also send to room"; live in the open panel', async () => {
    // bob (a phone) opens the thread from its count.
    await msgItem(bob, 'plan for friday?').locator('.thread-summary').click();
    const panel = bob.locator('#thread-panel');
    await panel.waitFor();
    await msgItem(bob, 'I can do the morning', '#thread-list').waitFor();
    const box = await panel.boundingBox();
    assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 375, 812], 'the whole screen');
    await bob.locator('#thread-back').waitFor();
    const scrollWidth = await bob.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= 375, 'no horizontal scroll');

    // A reply also sent to the room: in ana's open panel and her timeline, marked as such.
    await bob.fill('#thread-input', 'afternoon works for me');
    await bob.check('#thread-also-room');
    await bob.press('#thread-input', 'Enter');
    await msgItem(ana, 'afternoon works for me', '#thread-list').waitFor();
    const inRoom = msgItem(ana, 'afternoon works for me');
    await inRoom.locator('.msg-thread-ref', { hasText: 'replied to a thread' }).waitFor();
    assert.equal(await inRoom.locator('.thread-summary').count(), 0, 'a reply carries no count of its own');
    await msgItem(ana, 'plan for friday?').locator('.thread-summary', { hasText: /^2 replies/ }).waitFor();

    // A reply only to the thread reaches bob's open panel live, not his timeline.
    await ana.fill('#thread-input', 'then afternoon it is');
    await ana.press('#thread-input', 'Enter');
    await msgItem(bob, 'then afternoon it is', '#thread-list').waitFor();
    assert.deepEqual(await bob.locator('#thread-list .msg-text').allTextContents(),
      ['I can do the morning', 'afternoon works for me', 'then afternoon it is']);

    // Back: the room again, with the count and the also-sent reply, not the thread-only one.
    await bob.locator('#thread-back').click();
    await panel.waitFor({ state: 'hidden' });
    await msgItem(bob, 'plan for friday?').locator('.thread-summary', { hasText: /^3 replies/ }).waitFor();
    const texts = await messageTexts(bob);
    assert.ok(texts.includes('afternoon works for me'));
    assert.ok(!texts.includes('then afternoon it is'));
    assert.ok(!texts.includes('I can do the morning'));

    // "replied to a thread" opens that thread.
    await msgItem(bob, 'afternoon works for me').locator('.msg-thread-ref').click();
    await panel.locator('#thread-parent .msg-text', { hasText: exactly('plan for friday?') }).waitFor();
    await bob.locator('#thread-back').click();
    await panel.waitFor({ state: 'hidden' });
  });

  test('a reply of a thread offers no thread of its own; the menu opens one', async () => {
    await messageAction(ana, msgItem(ana, 'afternoon works for me'), 'React');
    await ana.keyboard.press('Escape');
    const reply = msgItem(ana, 'then afternoon it is', '#thread-list');
    await reply.hover();
    await reply.getByRole('button', { name: 'More actions' }).click();
    await ana.getByRole('menuitem', { name: 'Copy link' }).waitFor();
    assert.equal(await ana.getByRole('menuitem', { name: 'Reply in thread' }).count(), 0);
    await ana.keyboard.press('Escape');
    await ana.locator('#thread-close').click();
    await ana.locator('#thread-panel').waitFor({ state: 'hidden' });
    await send(ana, 'another topic');
    await messageAction(ana, msgItem(ana, 'another topic'), 'Reply in thread');
    await ana.locator('#thread-parent .msg-text', { hasText: exactly('another topic') }).waitFor();
  });

  test('older replies load on scrolling up', async () => {
    // 60 replies (the panel loads the newest 50 first).
    for (let i = 1; i <= 60; i++) {
      await ana.fill('#thread-input', `reply ${i}`);
      await ana.press('#thread-input', 'Enter');
    }
    await msgItem(ana, 'reply 60', '#thread-list').waitFor();
    await ana.waitForFunction(() => document.querySelectorAll('#thread-list .msg:not(.pending)').length === 60);
    // bob opens it afresh: the newest 50, then the rest as he scrolls up.
    await msgItem(bob, 'another topic').locator('.thread-summary', { hasText: /^60 replies/ }).click();
    await msgItem(bob, 'reply 60', '#thread-list').waitFor();
    await msgItem(bob, 'reply 11', '#thread-list').waitFor();
    await bob.locator('#thread-scroll').evaluate((el) => { el.scrollTop = 0; });
    await msgItem(bob, 'reply 1', '#thread-list').waitFor();
    const texts = await bob.locator('#thread-list .msg-text').allTextContents();
    assert.deepEqual(texts, Array.from({ length: 60 }, (_, i) => `reply ${i + 1}`));
  });
});
