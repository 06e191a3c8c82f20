// screenshots.mjs — makes docs/screenshots/{desktop,desktop-dark,thread,phone,phone-drawer,
// phone-thread}.png: starts natter on port 0 with a temp data dir, has four people talk in real
// browser contexts (Markdown, an @mention, reactions, an edit, a deletion, a thread, all done
// through the UI as a person would), and shoots.
// Run: NATTER_BROWSER=/usr/bin/chromium node tests/browser/screenshots.mjs
// (Inter and the emoji, from Debian's fonts-inter and fonts-noto-color-emoji, are used when
// installed; any sans-serif works, but the drafts in the composers are sized so that with those
// fonts no message is cut at the top of a shot.)

import path from 'node:path';
import fs from 'node:fs';
import {
  REPO, BROWSER, NatterServer, launchBrowser, openPage, signUp, waitOnline, send, openRoom, cleanup, messageAction,
} from './harness.mjs';

if (!BROWSER) {
  console.error('NATTER_BROWSER unset: set it to a Chromium executable, e.g. /usr/bin/chromium');
  process.exit(2);
}

const OUT = path.join(REPO, 'docs/screenshots');
fs.mkdirSync(OUT, { recursive: true });

/** The confirmed message whose shown text contains `snippet` (in `within`, default the room). */
function item(page, snippet, within = '#message-list') {
  return page.locator(`${within} .msg:not(.pending):not(.failed)`, { has: page.locator('.msg-text', { hasText: snippet }) });
}

/** Wait until the message showing `snippet` has the reaction `emoji` with `count`. */
function chipCount(page, snippet, emoji, count) {
  return item(page, snippet).locator('.reaction-chip', { has: page.locator('.reaction-emoji', { hasText: emoji }) })
    .locator('.reaction-count', { hasText: String(count) }).waitFor();
}

/** React to a message from the hover toolbar's picker. */
async function react(page, snippet, emoji) {
  const msg = item(page, snippet);
  await msg.hover();
  await msg.getByRole('button', { name: 'React', exact: true }).click();
  await page.getByRole('button', { name: `React with ${emoji}` }).click();
  await page.locator('.reaction-picker').waitFor({ state: 'detached' });
}

/** Before a shot: no pointer over a message, no focus ring, no pop-up, no prompt, no toast. */
async function tidy(page) {
  await page.mouse.move(1, 1);
  if (await page.locator('#notify-prompt').isVisible()) await page.click('#notify-prompt-no');
  await page.locator('#notify-prompt').waitFor({ state: 'hidden' });
  await page.evaluate(() => document.activeElement?.blur());
  // The newest messages in view (a composer grown by a draft may have pushed them down).
  await page.evaluate(() => {
    const timeline = document.getElementById('timeline');
    timeline.scrollTop = timeline.scrollHeight;
  });
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  // Transitions (a focus ring fading out, a drawer sliding) over.
  await page.evaluate(() => Promise.all(document.getAnimations().filter((a) => a instanceof CSSTransition).map((a) => a.finished)));
  await page.locator('.popup').waitFor({ state: 'detached' });
  await page.waitForFunction(() => {
    const toast = document.getElementById('toast');
    return !toast || toast.hidden || !toast.textContent.trim() || getComputedStyle(toast).opacity === '0';
  });
}

async function shoot(page, name) {
  await page.screenshot({ path: path.join(OUT, name) });
  console.log(`wrote docs/screenshots/${name}`);
}

const server = await NatterServer.start();
const browser = await launchBrowser();
try {
  const page = {};
  for (const name of ['ana', 'bob', 'carol', 'dan']) {
    page[name] = await openPage(browser, server);
    await signUp(page[name], name);
  }
  /** `who` sends `text`; everyone else sees it (shown as `shown`: Markdown is rendered). */
  const say = async (who, text, shown = text) => {
    await send(page[who], text);
    for (const p of Object.values(page)) await item(p, shown).waitFor();
  };

  // A second room, with ana reading elsewhere so it gathers unread messages.
  await page.bob.click('#btn-create');
  await page.bob.fill('#create-name', 'design');
  await page.bob.press('#create-name', 'Enter');
  await page.bob.locator('#room-name', { hasText: 'design' }).waitFor();
  await openRoom(page.bob, 'general');
  await page.ana.click('#btn-browse');
  await page.ana.getByRole('button', { name: 'Join #design' }).click();
  await page.ana.locator('#room-name', { hasText: 'design' }).waitFor();
  await openRoom(page.ana, 'general');
  await page.ana.click('#btn-create');
  await page.ana.fill('#create-name', 'release-1.0');
  await page.ana.press('#create-name', 'Enter');
  await page.ana.locator('#room-name', { hasText: 'release-1.0' }).waitFor();
  await openRoom(page.ana, 'general');

  await say('carol', 'I stopped the server in the middle of a conversation and nothing was lost.');
  await say('ana', 'Same here, I restarted it twice during the demo. Everything came back exactly once.');
  await say('bob', 'Morning all! The **1.0 release candidate** is on staging.',
    'Morning all! The 1.0 release candidate is on staging.');
  await say('dan', 'Left before we tag it:\n- release notes\n- screenshots for the README\n- one more `cargo test` on the ARM box',
    'release notes');
  // A message posted by mistake and deleted: its tombstone stays.
  await say('dan', 'wrong room, sorry');
  await messageAction(page.dan, item(page.dan, 'wrong room, sorry'), 'Delete');
  await page.dan.locator('#dlg-delete').getByRole('button', { name: 'Delete' }).click();
  await page.ana.locator('#message-list .msg.deleted .msg-tombstone').waitFor();
  await say('bob', 'Release notes draft is up. What goes under **Highlights**?', 'What goes under Highlights?');
  // carol mentions ana (the one whose screen is shot), picking her from the autocomplete.
  await page.carol.locator('#composer-input').pressSequentially('@an');
  await page.carol.locator('#composer .mention-option', { hasText: '@ana' }).waitFor();
  await page.carol.press('#composer-input', 'Enter');
  await page.carol.locator('#composer-input').pressSequentially('could you start the `arm64` release build? It takes about 20 minutes.');
  await page.carol.press('#composer-input', 'Enter');
  const mention = 'release build? It takes';
  await item(page.ana, mention).and(page.ana.locator('.mentioned')).waitFor();
  // ana answers, then fixes the time: "(edited)".
  await say('ana', 'On it, results by 2.');
  await messageAction(page.ana, item(page.ana, 'On it, results by 2.'), 'Edit');
  await page.ana.fill('.msg-editor-input', 'On it, results by 3 (after the standup).');
  await page.ana.press('.msg-editor-input', 'Enter');
  for (const p of Object.values(page)) await item(p, 'results by 3').locator('.msg-edited').waitFor();

  // Reactions, from the hover toolbar's picker and the "+" chip.
  const rc = 'The 1.0 release candidate is on staging.';
  await react(page.ana, rc, '🎉');
  await react(page.carol, rc, '🎉');
  await chipCount(page.dan, rc, '🎉', 2);
  await item(page.dan, rc).locator('.reaction-chip', { has: page.dan.locator('.reaction-emoji', { hasText: '🎉' }) }).click();
  await item(page.dan, rc).locator('.reaction-add').click();
  await page.dan.getByRole('button', { name: 'React with 🔥' }).click();
  await chipCount(page.ana, rc, '🎉', 3);
  await chipCount(page.ana, rc, '🔥', 1);
  await react(page.bob, 'results by 3', '🙏');
  await react(page.carol, 'results by 3', '🙏');
  await chipCount(page.ana, 'results by 3', '🙏', 2);
  await messageAction(page.ana, item(page.ana, mention), 'React');
  await page.ana.getByRole('button', { name: 'React with 👍' }).click();
  await chipCount(page.carol, mention, '👍', 1);

  // A thread on bob's question, replies from three people.
  const question = 'What goes under Highlights?';
  const replyIn = async (who, text, shown = text) => {
    const p = page[who];
    if (!(await p.locator('#thread-panel').isVisible())) {
      const q = item(p, question);
      if (await q.locator('.thread-summary').count()) await q.locator('.thread-summary').click();
      else {
        await q.hover();
        await q.getByRole('button', { name: 'Reply in thread' }).click();
      }
      await p.locator('#thread-parent .msg-text', { hasText: question }).waitFor();
    }
    await p.fill('#thread-input', text);
    await p.press('#thread-input', 'Enter');
    await item(p, shown, '#thread-list').waitFor();
  };
  await replyIn('carol', 'Threads and reactions, clearly.');
  await replyIn('dan', 'And Markdown: **bold**, `code`, lists.', 'And Markdown: bold, code, lists.');
  await replyIn('bob', 'Agreed. Plus "nothing lost on restart", with the protocol link.');
  await replyIn('carol', 'I can write that part.');
  await item(page.ana, question).locator('.thread-summary', { hasText: /^4 replies · last reply/ }).waitFor();
  for (const who of ['bob', 'carol', 'dan']) {
    if (await page[who].locator('#thread-panel').isVisible()) await page[who].click('#thread-close');
  }

  // More rooms: #design gathers unread messages, dan writes to ana directly.
  await openRoom(page.bob, 'design');
  for (const text of ['New colour tokens are in.', 'The sidebar spacing feels much better now.', 'Can someone check the contrast in dark mode?']) {
    await send(page.bob, text);
  }
  await openRoom(page.bob, 'general');
  await page.dan.locator('#people-list button[data-person="ana"]').click();
  await page.dan.locator('#room-name', { hasText: 'ana' }).waitFor();
  await send(page.dan, 'Got a minute to review my PR later?');
  await send(page.dan, 'No rush, it is the typing indicator one.');
  await page.ana.locator('#dm-list .badge', { hasText: '2' }).waitFor();
  await page.ana.locator('#room-list .badge', { hasText: '3' }).waitFor();
  await openRoom(page.dan, 'general');

  // carol is typing while the desktop shot is taken.
  const typing = async (viewer, text) => {
    await page.carol.fill('#composer-input', '');
    await page.carol.locator('#composer-input').pressSequentially(text);
    await viewer.locator('#typing', { hasText: 'carol is typing' }).waitFor();
  };
  const draft = 'Build is running on the ARM box now.\nI will post the results in the thread.';
  await tidy(page.ana);
  await typing(page.ana, 'Looks great');
  await page.ana.fill('#composer-input', draft);
  await tidy(page.ana);
  await shoot(page.ana, 'desktop.png');
  await page.ana.fill('#composer-input', '');

  // The thread beside the room.
  await item(page.ana, question).locator('.thread-summary').click();
  await item(page.ana, 'I can write that part.', '#thread-list').waitFor();
  await page.ana.locator('#thread-input').fill('I will add the screenshots.');
  await tidy(page.ana);
  await shoot(page.ana, 'thread.png');
  await page.ana.locator('#thread-input').fill('');
  await page.ana.click('#thread-close');

  // Dark mode: the same view, in a context that prefers dark. It, and the phone, start from
  // ana's browser storage (her session and read markers: a new device shows rooms as read).
  const anaStorage = { storageState: await page.ana.context().storageState() };
  const dark = await openPage(browser, server, { colorScheme: 'dark', contextOptions: anaStorage });
  await waitOnline(dark);
  await item(dark, 'results by 3').waitFor();
  await typing(dark, ' to me');
  await dark.fill('#composer-input', draft);
  await tidy(dark);
  await shoot(dark, 'desktop-dark.png');
  await page.carol.fill('#composer-input', '');

  const phone = await openPage(browser, server, { viewport: { width: 375, height: 812 }, contextOptions: anaStorage });
  await waitOnline(phone);
  await item(phone, 'results by 3').waitFor();
  await phone.fill('#composer-input', 'Both builds are green:\n- ARM ✅\n- x86 ✅\nShall I tag v1.0.0?');
  await tidy(phone);
  await shoot(phone, 'phone.png');
  await phone.click('#drawer-open');
  await phone.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().left >= 0);
  await tidy(phone);
  await shoot(phone, 'phone-drawer.png');
  await phone.click('#drawer-close');
  await phone.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().right <= 0);
  await phone.fill('#composer-input', '');

  // The thread full screen on the phone.
  await item(phone, question).locator('.thread-summary').click();
  await item(phone, 'I can write that part.', '#thread-list').waitFor();
  await tidy(phone);
  await shoot(phone, 'phone-thread.png');
} finally {
  await cleanup({ browser, servers: [server] });
}
