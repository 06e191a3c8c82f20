// chat.test.mjs — two and three people in real browsers: chatting both ways, typing, reload,
// rooms (create, join, leave, unread), direct messages kept private, and hostile message text.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, messageTexts,
  openRoom, waitOnline, cleanup, exactly,
} from './harness.mjs';

browserSuite('chat in the browser', { timeout: 120000 }, () => {
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

  test('two people sign up and chat both ways', async () => {
    await send(ana, 'hi bob');
    await waitForMessage(bob, 'hi bob');
    await send(bob, 'hello ana');
    await waitForMessage(ana, 'hello ana');
    await send(ana, 'how are you?');
    await waitForMessage(bob, 'how are you?');
    const expected = ['hi bob', 'hello ana', 'how are you?'];
    assert.deepEqual(await messageTexts(ana), expected);
    assert.deepEqual(await messageTexts(bob), expected);
    // Own messages are styled apart, and the other's carry their name.
    assert.equal(await ana.locator('.msg.own .msg-text', { hasText: 'hi bob' }).count(), 1);
    assert.equal(await ana.locator('.msg.other .msg-text', { hasText: 'hello ana' }).count(), 1);
    assert.equal(await ana.locator('.msg.other .msg-sender', { hasText: exactly('bob') }).count(), 1);
    // Both see each other online, and the room counts two members.
    await ana.locator('#people-list', { hasText: 'bob' }).waitFor();
    await bob.locator('#room-meta', { hasText: '2 members' }).waitFor();
    // A day separator sits above today's messages.
    assert.equal(await ana.locator('.day-sep', { hasText: 'Today' }).count(), 1);
  });

  test('consecutive messages from one sender are grouped, Shift+Enter makes a new line', async () => {
    await bob.fill('#composer-input', 'line one');
    await bob.press('#composer-input', 'Shift+Enter');
    await bob.type('#composer-input', 'line two');
    await bob.press('#composer-input', 'Enter');
    await send(bob, 'and a second message');
    await waitForMessage(ana, 'and a second message');
    const multi = ana.locator('.msg-text', { hasText: 'line one' });
    assert.equal(await multi.textContent(), 'line one\nline two');
    // The second of bob's messages continues his group: no new header.
    const last = ana.locator('.msg').last();
    assert.equal(await last.evaluate((el) => el.classList.contains('first')), false);
    assert.equal(await last.locator('.msg-sender').count(), 0);
  });

  test('empty messages cannot be sent, a counter shows near the limit', async () => {
    const before = (await messageTexts(ana)).length;
    await ana.fill('#composer-input', '   ');
    assert.equal(await ana.isDisabled('#composer-send'), true);
    await ana.press('#composer-input', 'Enter');
    await ana.fill('#composer-input', 'x'.repeat(3900));
    await ana.locator('#composer-counter', { hasText: '3,900 / 4,000' }).waitFor();
    await ana.fill('#composer-input', 'x'.repeat(4001));
    assert.equal(await ana.isDisabled('#composer-send'), true);
    await ana.press('#composer-input', 'Enter');
    assert.equal(await ana.inputValue('#composer-input'), 'x'.repeat(4001), 'an over-long message stays in the box');
    await ana.fill('#composer-input', '');
    assert.equal((await messageTexts(ana)).length, before);
  });

  test('typing indicator shows and clears', async () => {
    await bob.type('#composer-input', 'I am typ');
    await ana.locator('#typing', { hasText: 'bob is typing…' }).waitFor();
    // Clearing the box ends typing at once.
    await bob.fill('#composer-input', '');
    await ana.locator('#typing', { hasText: 'typing' }).waitFor({ state: 'detached' });
    assert.equal(await ana.textContent('#typing'), '');
    // Sending ends it too.
    await bob.type('#composer-input', 'done typing');
    await ana.locator('#typing', { hasText: 'bob is typing…' }).waitFor();
    await bob.press('#composer-input', 'Enter');
    await waitForMessage(ana, 'done typing');
    await ana.waitForFunction(() => document.getElementById('typing').textContent === '', null, { timeout: 10000 });
    // Nobody sees their own typing.
    assert.equal(await bob.textContent('#typing'), '');
  });

  test('reload keeps the session and the history', async () => {
    const before = await messageTexts(ana);
    await ana.reload();
    await waitOnline(ana);
    assert.equal(await ana.isVisible('#auth-screen'), false, 'still signed in');
    assert.equal(await ana.textContent('#me-name'), 'ana');
    await waitForMessage(ana, 'done typing');
    assert.deepEqual(await messageTexts(ana), before);
    // And the chat goes on after the reload.
    await send(bob, 'welcome back');
    await waitForMessage(ana, 'welcome back');
  });

  test('create a room, join it from the list, leave it; unread counts', async () => {
    await ana.click('#btn-create');
    await ana.fill('#create-name', 'rust-fans');
    await ana.press('#create-name', 'Enter');
    await ana.locator('#room-name', { hasText: 'rust-fans' }).waitFor();
    await ana.locator('#room-meta', { hasText: '1 member' }).waitFor();

    // The same name again is refused with a clear error.
    await ana.click('#btn-create');
    await ana.fill('#create-name', 'Rust-Fans');
    await ana.press('#create-name', 'Enter');
    await ana.locator('#create-error', { hasText: 'already exists' }).waitFor();
    await ana.keyboard.press('Escape');

    await bob.click('#btn-browse');
    await bob.locator('#browse-list .browse-row', { hasText: 'rust-fans' }).getByRole('button', { name: 'Join #rust-fans' }).click();
    await bob.locator('#room-name', { hasText: 'rust-fans' }).waitFor();
    await ana.locator('.notice', { hasText: 'bob joined' }).waitFor();
    await ana.locator('#room-meta', { hasText: '2 members' }).waitFor();

    // A message in general while ana reads rust-fans: general shows one unread.
    await openRoom(bob, 'general');
    await send(bob, 'psst, over here');
    const generalBadge = ana.locator('.nav-item', { hasText: 'general' }).locator('.badge');
    await generalBadge.waitFor();
    assert.equal(await generalBadge.textContent(), '1');
    await openRoom(ana, 'general');
    await waitForMessage(ana, 'psst, over here');
    await generalBadge.waitFor({ state: 'detached' });

    // bob leaves rust-fans: it goes from his sidebar, ana sees him go.
    await openRoom(bob, 'rust-fans');
    await bob.click('#btn-leave');
    await bob.locator('#room-list .nav-item', { hasText: 'rust-fans' }).waitFor({ state: 'detached' });
    await openRoom(ana, 'rust-fans');
    await ana.locator('.notice', { hasText: 'bob left' }).waitFor();
    await ana.locator('#room-meta', { hasText: '1 member' }).waitFor();
    // After a reload the lines are still there: `history` brings the room's events too.
    await ana.reload();
    await waitOnline(ana);
    await openRoom(ana, 'rust-fans');
    await ana.locator('.notice', { hasText: 'bob left' }).waitFor();
    assert.deepEqual(await ana.locator('#message-list .notice').allTextContents(), ['bob joined', 'bob left']);
    await openRoom(ana, 'general');
  });

  test('two tabs of one person stay in step: rooms joined and left elsewhere', async () => {
    const tab2 = await ana.context().newPage(); // same storage: the same session
    tab2.problems = [];
    tab2.on('pageerror', (err) => tab2.problems.push(err.message));
    try {
      await tab2.goto(server.url);
      await waitOnline(tab2);
      await ana.click('#btn-create');
      await ana.fill('#create-name', 'two-tabs');
      await ana.press('#create-name', 'Enter');
      await ana.locator('#room-name', { hasText: 'two-tabs' }).waitFor();
      await tab2.locator('#room-list .nav-item', { hasText: 'two-tabs' }).waitFor();
      await ana.click('#btn-leave');
      await tab2.locator('#room-list .nav-item', { hasText: 'two-tabs' }).waitFor({ state: 'detached' });
      // Closing one tab does not make ana look offline.
      await tab2.close();
      await bob.waitForTimeout(300);
      assert.equal(await bob.locator('#people-list [data-person="ana"]').count(), 1);
      assert.deepEqual(tab2.problems, []);
    } finally {
      if (!tab2.isClosed()) await tab2.close();
    }
    await openRoom(ana, 'general');
  });

  test('a direct message is not visible to a third person', async () => {
    const carol = await openPage(browser, server);
    try {
      await signUp(carol, 'carol');
      // ana starts the DM by choosing bob among the people online.
      await ana.locator('#people-list button[data-person="bob"]').click();
      await ana.locator('#room-name', { hasText: 'bob' }).waitFor();
      await send(ana, 'secret plans for bob');
      await waitForMessage(ana, 'secret plans for bob');
      // bob gets the DM in his sidebar, with an unread count, and can read it.
      const dm = bob.locator('#dm-list .nav-item', { hasText: 'ana' });
      await dm.locator('.badge', { hasText: '1' }).waitFor();
      await dm.click();
      await waitForMessage(bob, 'secret plans for bob');
      await send(bob, 'got it');
      await waitForMessage(ana, 'got it');
      // carol sees no DM, nowhere in her page, nor in the room list.
      await carol.click('#btn-browse');
      await carol.locator('#browse-list .browse-row').first().waitFor();
      assert.equal(await carol.locator('#dm-list .nav-item').count(), 0);
      const everything = await carol.evaluate(() => document.body.innerText);
      assert.ok(!everything.includes('secret plans'), 'carol cannot read the DM');
      assert.ok(!everything.includes('got it'), 'carol cannot read the reply');
      await carol.keyboard.press('Escape');
      assert.deepEqual(carol.problems, []);
      await ana.locator('#people-list [data-person="carol"]').waitFor();
    } finally {
      await carol.context().close();
    }
    // carol closed her only tab: she goes offline for the others.
    await ana.locator('#people-list [data-person="carol"]').waitFor({ state: 'detached' });
    await bob.locator('#people-list [data-person="carol"]').waitFor({ state: 'detached' });
    await openRoom(ana, 'general');
    await openRoom(bob, 'general');
  });

  test('message text is shown as text and never run; links are safe', async () => {
    const payloads = [
      '<img src=x onerror="window.__xss=1;document.title=\'pwned\'">',
      '<script>window.__xss=2</script>',
      '"><svg onload=window.__xss=3>',
      '<a href="javascript:window.__xss=4">click</a>',
    ];
    for (const p of payloads) await send(ana, p);
    await send(ana, 'docs at https://example.com/a?b=1&c=2. javascript:alert(1) <b>bold</b>');
    await waitForMessage(bob, 'docs at https://example.com/a?b=1&c=2. javascript:alert(1) <b>bold</b>');
    for (const p of payloads) await waitForMessage(bob, p);
    for (const page of [ana, bob]) {
      const texts = await messageTexts(page);
      for (const p of payloads) assert.ok(texts.includes(p), `${p} shown as text`);
      assert.equal(await page.locator('#message-list img, #message-list script, #message-list svg:not(.icon)').count(), 0);
      assert.equal(await page.evaluate(() => window.__xss), undefined, 'no payload ran');
      assert.ok(!(await page.title()).includes('pwned'));
      // Only the http(s) URL became a link, and it opens safely.
      const links = page.locator('#message-list .msg-text a');
      assert.equal(await links.count(), 1);
      assert.equal(await links.getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await links.getAttribute('target'), '_blank');
      assert.equal(await links.getAttribute('href'), 'https://example.com/a?b=1&c=2');
    }
    // The server forbids inline script.
    const res = await ana.request.get(`${server.url}/`);
    const csp = res.headers()['content-security-policy'] ?? '';
    const directives = csp.split(';').map((d) => d.trim());
    const scriptSrc = directives.find((d) => d.startsWith('script-src ')) ?? directives.find((d) => d.startsWith('default-src '));
    assert.ok(scriptSrc, `a script-src or default-src in ${JSON.stringify(csp)}`);
    assert.ok(!scriptSrc.includes("'unsafe-inline'"), `no inline script allowed: ${scriptSrc}`);
  });
});
