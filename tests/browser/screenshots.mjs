// screenshots.mjs — makes docs/screenshots/{desktop,phone,desktop-dark}.png: starts natter on
// port 0 with a temp data dir, has four people talk in real browser contexts, and shoots.
// Run: NATTER_BROWSER=/usr/bin/chromium node tests/browser/screenshots.mjs
// (Inter, from Debian's fonts-inter, is used when installed; any sans-serif works.)

import path from 'node:path';
import fs from 'node:fs';
import {
  REPO, BROWSER, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, openRoom, cleanup,
} from './harness.mjs';

if (!BROWSER) {
  console.error('NATTER_BROWSER unset: set it to a Chromium executable, e.g. /usr/bin/chromium');
  process.exit(2);
}

const OUT = path.join(REPO, 'docs/screenshots');
fs.mkdirSync(OUT, { recursive: true });

const server = await NatterServer.start();
const browser = await launchBrowser();
try {
  const page = {};
  for (const name of ['ana', 'bob', 'carol', 'dan']) {
    page[name] = await openPage(browser, server);
    await signUp(page[name], name);
  }
  const say = async (who, text) => {
    await send(page[who], text);
    await waitForMessage(page.ana, text);
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

  await say('bob', 'Morning all! Did anyone get a chance to try the new build?');
  await say('carol', 'Yes! I stopped the server in the middle of a conversation and nothing was lost.');
  await say('carol', 'The page showed "Reconnecting…", then caught up with every message, in order.');
  await say('ana', 'Same here. I restarted it twice during the demo and everything came back exactly once.');
  await say('ana', 'The wire protocol is written up at https://natter.example/docs/protocol if you want the details.');
  await say('dan', 'Nice. Can we get screenshots of the phone layout for the README?');
  await say('bob', 'On it. Dark mode too.');
  await openRoom(page.bob, 'design');
  for (const text of ['New colour tokens are in.', 'The sidebar spacing feels much better now.', 'Can someone check the contrast in dark mode?']) {
    await send(page.bob, text);
  }
  await openRoom(page.bob, 'general');
  // A DM from dan with unread messages.
  await page.dan.locator('#people-list button[data-person="ana"]').click();
  await page.dan.locator('#room-name', { hasText: 'ana' }).waitFor();
  await send(page.dan, 'Got a minute to review my PR later?');
  await send(page.dan, 'No rush, it is the typing indicator one.');
  await page.ana.locator('#dm-list .badge', { hasText: '2' }).waitFor();
  await page.ana.locator('#room-list .badge', { hasText: '3' }).waitFor();
  // carol is typing while the screenshot is taken.
  await page.carol.type('#composer-input', 'Looks great');
  await page.ana.locator('#typing', { hasText: 'carol is typing' }).waitFor();
  await page.ana.locator('#composer-input').blur();
  await page.ana.screenshot({ path: path.join(OUT, 'desktop.png') });
  console.log('wrote docs/screenshots/desktop.png');

  // Dark mode: the same view, in a context that prefers dark.
  const dark = await openPage(browser, server, { colorScheme: 'dark' });
  await signUp(dark, 'ana', 'correct horse battery', 'signin');
  await waitForMessage(dark, 'On it. Dark mode too.');
  await page.carol.type('#composer-input', '!');
  await dark.locator('#typing', { hasText: 'carol is typing' }).waitFor();
  await dark.locator('#composer-input').blur();
  await dark.screenshot({ path: path.join(OUT, 'desktop-dark.png') });
  console.log('wrote docs/screenshots/desktop-dark.png');

  const phone = await openPage(browser, server, { viewport: { width: 375, height: 812 } });
  await signUp(phone, 'bob', 'correct horse battery', 'signin');
  await waitForMessage(phone, 'On it. Dark mode too.');
  await phone.fill('#composer-input', 'Phone layout looks good');
  await phone.screenshot({ path: path.join(OUT, 'phone.png') });
  console.log('wrote docs/screenshots/phone.png');
  await phone.click('#drawer-open');
  await phone.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().left >= 0);
  await phone.screenshot({ path: path.join(OUT, 'phone-drawer.png') });
  console.log('wrote docs/screenshots/phone-drawer.png');
} finally {
  await cleanup({ browser, servers: [server] });
}
