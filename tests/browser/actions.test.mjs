// actions.test.mjs — what one can do to a message (issue 18): edit it in place (Enter saves,
// Escape cancels, Up in an empty composer edits my last one), see "(edited)" and its version
// history, delete it (after a confirmation) leaving a "Message deleted" tombstone, react with
// chips two people share, copy its link. Then the contract of the stream: a browser that was
// offline while messages were edited, deleted, reacted to and replied to ends, after `resume`,
// showing exactly what a browser that stayed online shows.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, msgItem,
  messageAction, snapshotMessages, waitForSnapshot, exactly, cleanup,
} from './harness.mjs';

/** Runs in the page before its scripts: records every frame the page sends. */
function recordFrames() {
  const log = { sent: [] };
  window.natterTestFrames = log;
  const nativeSend = WebSocket.prototype.send;
  WebSocket.prototype.send = function sendAndRecord(data) {
    try {
      log.sent.push(JSON.parse(data));
    } catch {
      // not ours
    }
    return nativeSend.call(this, data);
  };
}

/**
 * Run `step`; when it fails, log what the pages show (toast, editor, messages) and what the
 * server logged (a slow write batch, an error) first.
 */
async function explainFailure(pages, step, server) {
  try {
    await step();
  } catch (err) {
    if (server) console.log('server log:', server.stderr);
    for (const page of pages) {
      console.log('page state:', JSON.stringify({
        toast: await page.locator('#toast').textContent(),
        editors: await page.locator('.msg-editor-input').count(),
        status: await page.locator('#me-status').textContent(),
        messages: await snapshotMessages(page),
      }));
    }
    throw err;
  }
}

function chip(page, text, emoji) {
  return msgItem(page, text).locator('.reaction-chip', { has: page.locator('.reaction-emoji', { hasText: exactly(emoji) }) });
}

browserSuite('message actions and reactions', { timeout: 120000 }, () => {
  let server;
  let browser;
  let ana;
  let bob;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    ana = await openPage(browser, server);
    await signUp(ana, 'ana');
    bob = await openPage(browser, server);
    await signUp(bob, 'bob');
  });

  after(async () => {
    for (const page of [ana, bob]) if (page) assert.deepEqual(page.problems, [], 'no page errors or CSP violations');
    await cleanup({ browser, servers: [server] });
  });

  test('edit in place: Enter saves, Escape cancels, "(edited)" opens the history', async () => {
    await send(ana, 'helo world');
    await waitForMessage(bob, 'helo world');
    // Only the author is offered Edit and Delete.
    const theirs = msgItem(bob, 'helo world');
    await theirs.hover();
    await theirs.getByRole('button', { name: 'More actions' }).click();
    await bob.getByRole('menuitem', { name: 'Copy link' }).waitFor();
    assert.equal(await bob.getByRole('menuitem', { name: 'Edit' }).count(), 0);
    assert.equal(await bob.getByRole('menuitem', { name: 'Delete' }).count(), 0);
    await bob.keyboard.press('Escape');
    await bob.locator('.menu.popup').waitFor({ state: 'detached' });

    // Escape cancels: nothing changes.
    await messageAction(ana, msgItem(ana, 'helo world'), 'Edit');
    const editor = ana.locator('.msg-editor-input');
    await editor.waitFor();
    assert.equal(await editor.inputValue(), 'helo world');
    await editor.fill('never saved');
    await editor.press('Escape');
    await editor.waitFor({ state: 'detached' });
    await msgItem(ana, 'helo world').waitFor();
    assert.equal(await ana.locator('.msg-edited').count(), 0);

    // Enter saves: both see the new text and "(edited)".
    await messageAction(ana, msgItem(ana, 'helo world'), 'Edit');
    await editor.fill('hello world');
    await editor.press('Enter');
    await msgItem(bob, 'hello world').locator('.msg-edited', { hasText: '(edited)' }).waitFor();
    await msgItem(ana, 'hello world').locator('.msg-edited').waitFor();
    assert.equal(await msgItem(bob, 'helo world').count(), 0);

    // Up in the empty composer edits my last message.
    await ana.fill('#composer-input', '');
    await ana.press('#composer-input', 'ArrowUp');
    await editor.waitFor();
    assert.equal(await editor.inputValue(), 'hello world');
    await editor.fill('hello, world');
    await editor.press('Enter');
    await msgItem(bob, 'hello, world').waitFor();

    // "(edited)" shows every version, oldest first.
    await msgItem(bob, 'hello, world').locator('.msg-edited').click();
    const dlg = bob.locator('#dlg-edits');
    await dlg.locator('.edit-version').nth(2).waitFor();
    assert.deepEqual(await dlg.locator('.edit-version-body').allTextContents(), ['helo world', 'hello world', 'hello, world']);
    assert.deepEqual(await dlg.locator('.edit-version-label').allTextContents(), ['Original', 'Edit 1', 'Current']);
    await bob.keyboard.press('Escape');
    await dlg.waitFor({ state: 'hidden' });
  });

  test('delete after a confirmation leaves a tombstone for everyone', async () => {
    await send(ana, 'oops, wrong room');
    await waitForMessage(bob, 'oops, wrong room');
    // Cancel keeps it.
    await messageAction(ana, msgItem(ana, 'oops, wrong room'), 'Delete');
    const dlg = ana.locator('#dlg-delete');
    await dlg.locator('#delete-preview', { hasText: 'oops, wrong room' }).waitFor();
    await dlg.getByRole('button', { name: 'Cancel' }).click();
    await dlg.waitFor({ state: 'hidden' });
    await msgItem(bob, 'oops, wrong room').waitFor();
    // Delete removes the text for both; a tombstone stays, in its place.
    await messageAction(ana, msgItem(ana, 'oops, wrong room'), 'Delete');
    await dlg.getByRole('button', { name: 'Delete' }).click();
    for (const page of [ana, bob]) {
      await page.locator('#message-list .msg.deleted .msg-tombstone', { hasText: exactly('Message deleted') }).waitFor();
      assert.equal(await msgItem(page, 'oops, wrong room').count(), 0);
      const style = await page.locator('.msg-tombstone').first().evaluate((el) => getComputedStyle(el).fontStyle);
      assert.equal(style, 'italic');
    }
    // A tombstone offers no actions.
    assert.equal(await bob.locator('.msg.deleted .msg-actions').count(), 0);
  });

  test('reactions: chips shared by two people, toggled by a click, errors shown', async () => {
    await send(bob, 'lunch at noon?');
    await waitForMessage(ana, 'lunch at noon?');
    // ana reacts from the picker (the "…" menu's React).
    await messageAction(ana, msgItem(ana, 'lunch at noon?'), 'React');
    await ana.getByRole('button', { name: 'React with 👍' }).click();
    await chip(bob, 'lunch at noon?', '👍').locator('.reaction-count', { hasText: exactly('1') }).waitFor();
    assert.equal(await chip(bob, 'lunch at noon?', '👍').getAttribute('aria-pressed'), 'false');
    await chip(ana, 'lunch at noon?', '👍').and(ana.locator('.mine')).waitFor();
    // bob adds his by clicking the chip: 2, highlighted for him, both names in the tooltip.
    await chip(bob, 'lunch at noon?', '👍').click();
    for (const page of [ana, bob]) {
      await chip(page, 'lunch at noon?', '👍').locator('.reaction-count', { hasText: exactly('2') }).waitFor();
      assert.match(await chip(page, 'lunch at noon?', '👍').getAttribute('title'), /^ana, bob reacted with 👍$/);
    }
    assert.equal(await chip(bob, 'lunch at noon?', '👍').getAttribute('aria-pressed'), 'true');
    // Any single emoji from the picker's box, through the "+" chip.
    await msgItem(bob, 'lunch at noon?').locator('.reaction-add').click();
    await bob.fill('.picker-input', '🦀');
    await bob.press('.picker-input', 'Enter');
    await chip(ana, 'lunch at noon?', '🦀').waitFor();
    // ana takes hers back: 👍 1 again, no longer hers.
    await chip(ana, 'lunch at noon?', '👍').click();
    for (const page of [ana, bob]) {
      await chip(page, 'lunch at noon?', '👍').locator('.reaction-count', { hasText: exactly('1') }).waitFor();
    }
    assert.equal(await chip(ana, 'lunch at noon?', '👍').getAttribute('aria-pressed'), 'false');
    // Not an emoji: the server's refusal is shown briefly.
    await msgItem(ana, 'lunch at noon?').locator('.reaction-add').click();
    await ana.fill('.picker-input', 'ab');
    await ana.press('.picker-input', 'Enter');
    await ana.locator('#toast', { hasText: 'not a single emoji' }).waitFor();
    assert.equal(await msgItem(ana, 'lunch at noon?').locator('.reaction-chip:not(.reaction-add)').count(), 2);
  });

  test('on a touch phone: a "…" button in view, a long press opens the menu', async () => {
    const phone = await openPage(browser, server, { viewport: { width: 375, height: 812 }, contextOptions: { hasTouch: true, isMobile: true } });
    try {
      await signUp(phone, 'bob', undefined, 'signin');
      const item = msgItem(phone, 'lunch at noon?');
      await item.waitFor();
      // No hover there: the "…" shows without it, the desktop toolbar buttons do not.
      assert.equal(await item.getByRole('button', { name: 'More actions' }).isVisible(), true);
      assert.equal(await item.getByRole('button', { name: 'Reply in thread' }).isVisible(), false);
      await item.locator('.bubble').dispatchEvent('pointerdown', { pointerType: 'touch', isPrimary: true });
      await phone.getByRole('menuitem', { name: 'Reply in thread' }).waitFor();
      await phone.getByRole('menuitem', { name: 'Copy link' }).waitFor();
      await phone.keyboard.press('Escape');
      await phone.locator('.menu.popup').waitFor({ state: 'detached' });
      assert.deepEqual(phone.problems, []);
    } finally {
      await phone.context().close();
    }
  });

  test('copy link gives /r/<room>/<seq>', async () => {
    await ana.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    const item = msgItem(ana, 'lunch at noon?');
    const seq = await item.getAttribute('data-seq');
    await messageAction(ana, item, 'Copy link');
    await ana.locator('#toast', { hasText: new RegExp(`/r/\\d+/${seq}$`) }).waitFor();
    // The link, sent as a message and clicked by bob, opens that message here (a deep link).
    const url = await ana.evaluate(() => navigator.clipboard.readText());
    assert.match(url, new RegExp(`^${ana.url().split('/r/')[0]}/r/\\d+/${seq}$`));
    await send(ana, `see ${url}`);
    await waitForMessage(bob, `see ${url}`);
    await msgItem(bob, `see ${url}`).locator('.msg-text a').click();
    await bob.locator(`#message-list .msg.highlight[data-key="m${seq}"]`).waitFor();
    assert.equal(new URL(bob.url()).pathname, new URL(url).pathname);
    assert.equal(bob.context().pages().length, 1, 'opened in place, not in a new tab');
  });

  test('"(edited)" after Markdown: at the end of one paragraph, on its own line after blocks', async () => {
    await send(ana, '- one\n- two');
    await waitForMessage(ana, 'onetwo');
    await send(ana, 'plain **text**');
    await waitForMessage(ana, 'plain text');
    for (const [before, after] of [['plain text', 'plain **text** now'], ['onetwo', '- one\n- two\n- three']]) {
      await messageAction(ana, msgItem(ana, before), 'Edit');
      await ana.locator('.msg-editor-input').fill(after);
      await ana.locator('.msg-editor-input').press('Enter');
    }
    const plain = msgItem(ana, 'plain text now');
    const list = msgItem(ana, 'onetwothree');
    await explainFailure([ana], async () => {
      for (const item of [plain, list]) await item.locator('.msg-edited').waitFor();
    }, server);
    const place = (item) => item.evaluate((li) => {
      const text = li.querySelector('.msg-text').getBoundingClientRect();
      const edited = li.querySelector('.msg-edited').getBoundingClientRect();
      return { below: edited.top >= text.bottom - 1, sameLine: edited.top < text.bottom && edited.bottom > text.top };
    });
    assert.deepEqual(await place(plain), { below: false, sameLine: true }, 'one paragraph: "(edited)" ends its line');
    assert.equal((await place(list)).below, true, 'after a list: "(edited)" below it');
    assert.equal(await list.locator('.msg-text ul li').count(), 3);
  });
});

browserSuite('an offline browser ends in the state of one that stayed online', { timeout: 120000 }, () => {
  let server;
  let browser;
  let ana;
  let away; // ana's second browser, offline for a while
  let bob;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    ana = await openPage(browser, server);
    await signUp(ana, 'ana');
    bob = await openPage(browser, server);
    await signUp(bob, 'bob');
    away = await openPage(browser, server, { initScript: recordFrames });
    await signUp(away, 'ana', undefined, 'signin');
  });

  after(async () => {
    for (const page of [ana, away, bob]) if (page) assert.deepEqual(page.problems, [], 'no page errors or CSP violations');
    await cleanup({ browser, servers: [server] });
  });

  test('edits, deletes, reactions and replies made meanwhile arrive by resume', () => explainFailure([ana, away, bob], async () => {
    for (const text of ['first', 'second', 'third', 'fourth']) await send(bob, text);
    await send(ana, 'mine');
    await waitForMessage(away, 'mine');
    await waitForMessage(away, 'fourth');
    // Some state from before: a reaction, an edit.
    await messageAction(ana, msgItem(ana, 'first'), 'React');
    await ana.getByRole('button', { name: 'React with 👍' }).click();
    await chip(away, 'first', '👍').waitFor();

    await away.context().setOffline(true);
    await away.locator('#me-status', { hasText: exactly('Offline') }).waitFor();
    const sentBefore = await away.evaluate(() => window.natterTestFrames.sent.length);

    // Meanwhile: bob edits and deletes, both react and un-react, a thread gets replies (one
    // also sent to the room), and ana's own message is edited from her other browser.
    await messageAction(bob, msgItem(bob, 'first'), 'Edit');
    await bob.locator('.msg-editor-input').fill('first, edited');
    await bob.press('.msg-editor-input', 'Enter');
    await msgItem(ana, 'first, edited').waitFor();
    await messageAction(bob, msgItem(bob, 'second'), 'Delete');
    await bob.locator('#dlg-delete').getByRole('button', { name: 'Delete' }).click();
    await ana.locator('.msg.deleted').waitFor();
    await chip(bob, 'first, edited', '👍').click(); // bob joins ana's 👍
    await chip(ana, 'first, edited', '👍').locator('.reaction-count', { hasText: '2' }).waitFor();
    await chip(ana, 'first, edited', '👍').click(); // ana takes hers back
    await chip(bob, 'first, edited', '👍').locator('.reaction-count', { hasText: exactly('1') }).waitFor();
    await messageAction(ana, msgItem(ana, 'third'), 'React');
    await ana.getByRole('button', { name: 'React with 🎉' }).click();
    await chip(bob, 'third', '🎉').waitFor();
    await messageAction(bob, msgItem(bob, 'third'), 'Reply in thread');
    await bob.locator('#thread-panel').waitFor();
    await bob.fill('#thread-input', 'a reply');
    await bob.press('#thread-input', 'Enter');
    await bob.fill('#thread-input', 'a reply for all');
    await bob.check('#thread-also-room');
    await bob.press('#thread-input', 'Enter');
    await msgItem(ana, 'a reply for all').waitFor();
    await msgItem(ana, 'third').locator('.thread-summary', { hasText: '2 replies' }).waitFor();
    await messageAction(ana, msgItem(ana, 'mine'), 'Edit');
    await ana.locator('.msg-editor-input').fill('mine, edited');
    await ana.press('.msg-editor-input', 'Enter');
    await msgItem(ana, 'mine, edited').locator('.msg-edited').waitFor();
    await send(bob, 'last word');
    await waitForMessage(ana, 'last word');

    // While offline, the away browser still shows the old state; a reaction made there waits.
    await msgItem(away, 'first').waitFor();
    assert.equal(await msgItem(away, 'last word').count(), 0);
    await messageAction(away, msgItem(away, 'fourth'), 'React');
    await away.getByRole('button', { name: 'React with 😮' }).click();

    await away.context().setOffline(false);
    await away.locator('#me-status', { hasText: exactly('Online') }).waitFor();
    await waitForMessage(away, 'last word');
    // The reaction went out once, after the reconnect, and everyone sees it.
    await chip(ana, 'fourth', '😮').waitFor();
    await chip(bob, 'fourth', '😮').waitFor();
    const expected = await snapshotMessages(ana);
    await waitForSnapshot(away, expected);
    assert.deepEqual(await snapshotMessages(away), expected, 'the same texts, tombstones, chips and reply counts');
    // The checks that matter, spelled out.
    assert.ok(expected.some((m) => m.text === 'first, edited' && m.edited && m.reactions.join() === '👍1'));
    assert.ok(expected.some((m) => m.text === '[deleted]'));
    assert.ok(expected.some((m) => m.text === 'third' && m.reactions.join() === '🎉1*' && /^2 replies/.test(m.thread)));
    assert.ok(expected.some((m) => m.text === 'a reply for all' && m.threadRef));
    assert.ok(!expected.some((m) => m.text === 'a reply'), 'a reply only to the thread is not in the timeline');
    assert.ok(expected.some((m) => m.text === 'mine, edited' && m.edited));

    // It came by resume (the auth asked from the room's last seq), not by reloading history.
    const after = await away.evaluate((n) => window.natterTestFrames.sent.slice(n), sentBefore);
    const auth = after.find((f) => f.type === 'auth');
    assert.ok(auth && Object.keys(auth.data.resume).length > 0, 'auth carried resume');
    assert.equal(after.filter((f) => f.type === 'history').length, 0, 'no history reload');
    assert.equal(after.filter((f) => f.type === 'reaction.add').length, 1, 'the reaction made offline, sent once');
    assert.ok(expected.some((m) => m.text === 'fourth' && m.reactions.join() === '😮1*'));

    // And the thread, opened now, shows both replies.
    await msgItem(away, 'third').locator('.thread-summary').click();
    await msgItem(away, 'a reply', '#thread-list').waitFor();
    await msgItem(away, 'a reply for all', '#thread-list').waitFor();
  }, server));
});
