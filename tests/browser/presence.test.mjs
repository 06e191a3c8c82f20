// presence.test.mjs — who is online, as the page shows it: the `presence_reset` a connection
// gets when it falls behind the server's presence changes (protocol.md, sections 5 and 7)
// replaces the page's list, and the `presence` events after it apply on top.
//
// A browser reads its socket too quickly to fall 4096 changes behind, so the reset is handed
// to the page by the test relay, exactly as documented; the server side of it (a stalled
// reader really getting one) is tested in tests/resilience.rs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, NatterServer, launchBrowser, openPage, signUp, cleanup, WAIT_MS } from './harness.mjs';

browserSuite('presence in the browser', { timeout: 90000 }, () => {
  let server;
  let browser;
  let ana;
  let anaUser;
  let bob;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    ana = await openPage(browser, server, { relay: true });
    // ana's own User, from her `auth` reply on its way to the page.
    ana.relay.onServerFrame = (raw) => {
      const frame = JSON.parse(raw);
      if (!anaUser && frame.type === 'ok' && frame.data?.user) anaUser = frame.data.user;
    };
    await signUp(ana, 'ana');
    bob = await openPage(browser, server);
    await signUp(bob, 'bob');
  });

  after(async () => {
    for (const page of [ana, bob]) if (page) assert.deepEqual(page.problems, [], 'no page errors or CSP violations');
    await cleanup({ browser, servers: [server] });
  });

  /** The names in ana's "people online" list. */
  async function online(page) {
    return page.locator('#people-list').evaluate((el) => el.textContent);
  }

  test('a presence_reset replaces who is online, and later presence events apply on top', async () => {
    await ana.locator('#people-list', { hasText: 'bob' }).waitFor();
    assert.equal(anaUser?.name, 'ana');
    // The server's word, as a connection that fell behind gets it: ana and zoe are online.
    // (bob is in fact online: the reset is what the page must believe, until told otherwise.)
    ana.relay.live.ws.send(JSON.stringify({
      type: 'presence_reset',
      data: { online: [anaUser, { id: 987654, name: 'zoe', guest: true }] },
    }));
    await ana.locator('#people-list', { hasText: 'zoe' }).waitFor();
    await ana.waitForFunction(() => !document.getElementById('people-list').textContent.includes('bob'), null, { timeout: WAIT_MS });

    // Changes after the reset apply on top of it: bob goes away and comes back.
    await bob.context().close();
    bob = await openPage(browser, server);
    await signUp(bob, 'bob', 'correct horse battery', 'signin');
    await ana.locator('#people-list', { hasText: 'bob' }).waitFor();
    const names = await online(ana);
    assert.ok(names.includes('zoe'), `zoe is still listed: ${names}`);
  });
});
