// markdown.test.mjs — message bodies as a safe Markdown subset (view/markdown.js): every syntax
// renders as the element it stands for, both through the module itself and in a real
// conversation; hostile text in every syntax stays text (no element with an event handler, no
// script run, only http/https/mailto links); @mentions are highlighted, mine apart.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserSuite, NatterServer, launchBrowser, openPage, signUp, send, waitForMessage, cleanup,
} from './harness.mjs';

/** Hostile bodies, one per syntax; each would set window.__xss if any of it ran. */
const PAYLOADS = [
  'plain <img src=x onerror="window.__xss=1">',
  '**bold <img src=x onerror="window.__xss=2">**',
  '*it <svg onload="window.__xss=3">* and _it <b onmouseover="window.__xss=4">x</b>_',
  '~~gone <iframe src="javascript:window.__xss=5"></iframe>~~',
  '`</code><script>window.__xss=6</script>`',
  '```\n</code></pre><script>window.__xss=7</script><img src=x onerror="window.__xss=7">\n```',
  '> quoted <img src=x onerror="window.__xss=8">\n> <script>window.__xss=8</script>',
  '- item <img src=x onerror="window.__xss=9">\n* <a href="javascript:window.__xss=9">x</a>',
  '1. one <script>window.__xss=10</script>\n2. two <img src=x onerror=window.__xss=10>',
  '[click me](javascript:window.__xss=11) and [data](data:text/html,<script>window.__xss=11</script>)',
  '[x](javascript:alert(1)) [y](JaVaScRiPt:window.__xss=12) [z]( javascript:window.__xss=12)',
  '[<img src=x onerror="window.__xss=13">](https://example.com/ok)',
  'javascript:window.__xss=14 data:text/html,<script>window.__xss=14</script>',
  '@<img src=x onerror="window.__xss=15"> @ana"><script>window.__xss=15</script>',
  '[a](https://example.com/"onmouseover="window.__xss=16)',
];

browserSuite('markdown in messages', { timeout: 120000 }, () => {
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

  /** renderBody(text) in the page, as {html, text} of a container holding the fragment. */
  const render = (page, text, me = 'ana') => page.evaluate(async ([t, m]) => {
    const { renderBody } = await import('/js/view/markdown.js');
    const div = document.createElement('div');
    div.append(renderBody(t, { me: m }));
    // Only for reading the structure back in the test: the module itself never uses HTML.
    return {
      html: div.innerHTML,
      text: div.textContent,
      tags: [...div.querySelectorAll('*')].map((el) => el.localName),
      links: [...div.querySelectorAll('a')].map((el) => el.getAttribute('href')),
      handlers: [...div.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => /^on/i.test(a.name))).length,
    };
  }, [text, me]);

  test('every syntax renders as its element', async () => {
    const cases = [
      ['**bold**', '<strong>bold</strong>'],
      ['*italic* and _also_', '<em>italic</em> and <em>also</em>'],
      ['~~strike~~', '<del>strike</del>'],
      ['use `a < b` here', 'use <code class="md-inline-code">a &lt; b</code> here'],
      ['**bold *and italic***', '<strong>bold <em>and italic</em></strong>'],
      ['snake_case_name and 2 * 3 * 4', 'snake_case_name and 2 * 3 * 4'],
      ['**not closed', '**not closed'],
      ['line one\nline two', 'line one\nline two'],
      ['see [the docs](https://example.com/docs?a=1&b=2)',
        'see <a href="https://example.com/docs?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">the docs</a>'],
      ['[write](mailto:ana@example.com)',
        '<a href="mailto:ana@example.com" target="_blank" rel="noopener noreferrer">write</a>'],
      ['at https://example.com/x.', 'at <a href="https://example.com/x" target="_blank" rel="noopener noreferrer">https://example.com/x</a>.'],
      ['hi @bob and @ana', 'hi <span class="mention" data-mention="bob">@bob</span> and <span class="mention me" data-mention="ana">@ana</span>'],
      ['@ROOM, listen.', '<span class="mention me" data-mention="ROOM">@ROOM</span>, listen.'],
      ['mail ana@example.com', 'mail ana@example.com'],
      ['```\nfn main() {\n    let x = "<b>";\n}\n```',
        '<pre class="md-code"><code>fn main() {\n    let x = "&lt;b&gt;";\n}</code></pre>'],
      ['> quoted **text**\n> more\n\nafter',
        '<blockquote class="md-quote"><p class="md-p">quoted <strong>text</strong>\nmore</p></blockquote><p class="md-p">after</p>'],
      ['- one\n- two\n* three', '<ul class="md-list"><li>one</li><li>two</li><li>three</li></ul>'],
      ['3. c\n4. d', '<ol class="md-list" start="3"><li>c</li><li>d</li></ol>'],
      ['intro\n1. first\n2. `second`',
        '<p class="md-p">intro</p><ol class="md-list"><li>first</li><li><code class="md-inline-code">second</code></li></ol>'],
    ];
    for (const [input, html] of cases) {
      assert.equal((await render(ana, input)).html, html, `rendering of ${JSON.stringify(input)}`);
    }
  });

  test('hostile text in every syntax stays text', async () => {
    for (const p of PAYLOADS) {
      const { tags, links, handlers } = await render(ana, p);
      const allowed = new Set(['strong', 'em', 'del', 'code', 'pre', 'blockquote', 'p', 'ul', 'ol', 'li', 'a', 'span']);
      for (const tag of tags) assert.ok(allowed.has(tag), `<${tag}> from ${JSON.stringify(p)}`);
      assert.equal(handlers, 0, `no event handler from ${JSON.stringify(p)}`);
      for (const href of links) assert.match(href, /^(https?:|mailto:)/, `only safe links from ${JSON.stringify(p)}`);
    }
    // javascript:/data: links stay as written.
    assert.equal((await render(ana, PAYLOADS[9])).text, PAYLOADS[9]);
    assert.equal((await render(ana, '[x](javascript:alert(1))')).text, '[x](javascript:alert(1))');
  });

  test('in a conversation: formatted, hostile text inert, mentions marked', async () => {
    await send(ana, '**Deploy** is _done_, see `make ship` and [notes](https://example.com/n) @bob');
    await waitForMessage(bob, 'Deploy is done, see make ship and notes @bob');
    const last = bob.locator('#message-list .msg').last().locator('.msg-text');
    assert.equal(await last.locator('strong').textContent(), 'Deploy');
    assert.equal(await last.locator('em').textContent(), 'done');
    assert.equal(await last.locator('code').textContent(), 'make ship');
    const a = last.locator('a');
    assert.equal(await a.getAttribute('href'), 'https://example.com/n');
    assert.equal(await a.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await a.getAttribute('target'), '_blank');
    // @bob is bob's own mention on bob's screen, an ordinary one on ana's.
    assert.equal(await last.locator('.mention.me').textContent(), '@bob');
    const anaLast = ana.locator('#message-list .msg').last().locator('.msg-text');
    await anaLast.locator('.mention').waitFor();
    assert.equal(await anaLast.locator('.mention.me').count(), 0);

    // A long code line scrolls sideways inside its box instead of wrapping.
    const long = `\`\`\`\n${'const value = compute(everything);'.repeat(12)}\n\`\`\``;
    await send(ana, long);
    const pre = bob.locator('#message-list .md-code').last();
    await pre.waitFor();
    const box = await pre.evaluate((el) => ({
      scroll: el.scrollWidth, client: el.clientWidth, ws: getComputedStyle(el).whiteSpace, overflow: getComputedStyle(el).overflowX,
      lines: Math.round(el.querySelector('code').getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight)),
    }));
    assert.ok(box.scroll > box.client, 'the line is wider than the box');
    assert.equal(box.ws, 'pre');
    assert.equal(box.overflow, 'auto');
    assert.equal(box.lines, 1, 'not wrapped');
    assert.equal(await bob.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true);

    for (const p of PAYLOADS) await send(ana, p);
    await bob.waitForFunction((n) => document.querySelectorAll('#message-list .msg:not(.pending)').length >= n, PAYLOADS.length + 2);
    for (const page of [ana, bob]) {
      await page.waitForFunction((n) => document.querySelectorAll('#message-list .msg:not(.pending)').length >= n, PAYLOADS.length + 2);
      const found = await page.evaluate(() => {
        const list = document.getElementById('message-list');
        const handlers = [...list.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => /^on/i.test(a.name)));
        const links = [...list.querySelectorAll('.msg-text a')].map((el) => el.getAttribute('href'));
        return {
          handlers: handlers.length,
          bad: list.querySelectorAll('img, script, iframe, object, embed, svg:not(.icon), b, .msg-text a[href^="javascript"], .msg-text a[href^="data"]').length,
          links,
          xss: window.__xss,
        };
      });
      assert.equal(found.handlers, 0, 'no element with an event handler');
      assert.equal(found.bad, 0, 'no element made from the payloads');
      for (const href of found.links) assert.match(href, /^(https?:|mailto:)/);
      assert.equal(found.xss, undefined, 'no payload ran');
    }
    // Interacting with the rendered payloads runs nothing either.
    for (const link of await bob.locator('#message-list .msg-text .mention').all()) await link.hover();
    assert.equal(await bob.evaluate(() => window.__xss), undefined);
  });
});
