// store.test.mjs — the client's store, loaded as the page loads it (an ES module from the
// server, in Chromium), driven directly: a long room lets its oldest messages go so that a tab
// left open stays small, but not while the reader is scrolled up in it; and every stream entry
// (message, edit, delete, reaction, thread reply, room event) is applied idempotently and moves `resume`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, NatterServer, launchBrowser, openPage, cleanup } from './harness.mjs';

browserSuite('the store keeps long rooms small', { timeout: 90000 }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    page = await openPage(browser, server);
  });

  after(async () => {
    if (page) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('the oldest messages go past the limit, unless the reader is scrolled up there', async () => {
    const result = await page.evaluate(async () => {
      const { Store, MAX_KEPT_MESSAGES, KEEP_AFTER_TRIM } = await import('/js/store.js');
      const store = new Store();
      store.setMe({ id: 1, name: 'me', guest: false });
      const bob = { id: 2, name: 'bob', guest: false };
      const message = (room, seq) => ({ id: room * 100000 + seq, room, seq, sender: bob, body: `m${seq}`, ts: 1, client_id: `c${seq}` });
      for (const id of [7, 8]) {
        store.upsertRoom({ id, name: `r${id}`, kind: 'public', member_count: 2, last_seq: 0, joined: true });
      }
      store.setCurrent(7);
      const feed = (room, from, to) => {
        for (let seq = from; seq <= to; seq++) store.addMessages(room, [message(room, seq)]);
      };
      const span = (room) => {
        const r = store.room(room);
        return { count: r.messages.length, first: r.messages[0].seq, last: r.messages.at(-1).seq, hasOlder: r.hasOlder };
      };
      feed(7, 1, MAX_KEPT_MESSAGES);
      const atLimit = span(7);
      feed(7, MAX_KEPT_MESSAGES + 1, MAX_KEPT_MESSAGES + 1);
      const trimmed = span(7);
      // Scrolled up in room 7: it keeps everything; room 8, not open, is trimmed as usual.
      store.setReadingOlder(true);
      feed(7, MAX_KEPT_MESSAGES + 2, MAX_KEPT_MESSAGES + 400);
      feed(8, 1, MAX_KEPT_MESSAGES + 1);
      const whileUp = span(7);
      const other = span(8);
      store.setReadingOlder(false);
      feed(7, MAX_KEPT_MESSAGES + 401, MAX_KEPT_MESSAGES + 401);
      const backDown = span(7);
      return { MAX_KEPT_MESSAGES, KEEP_AFTER_TRIM, atLimit, trimmed, whileUp, other, backDown };
    });
    const { MAX_KEPT_MESSAGES: max, KEEP_AFTER_TRIM: keep } = result;
    assert.deepEqual(result.atLimit, { count: max, first: 1, last: max, hasOlder: false });
    assert.deepEqual(result.trimmed, { count: keep, first: max + 2 - keep, last: max + 1, hasOlder: true });
    assert.equal(result.whileUp.count, keep + 399, 'nothing goes while the reader is scrolled up');
    assert.deepEqual(result.other, { count: keep, first: max + 2 - keep, last: max + 1, hasOlder: true });
    assert.deepEqual(result.backDown, { count: keep, first: max + 402 - keep, last: max + 401, hasOlder: true });
  });
});

browserSuite('the store applies every stream entry idempotently', { timeout: 90000 }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await NatterServer.start();
    browser = await launchBrowser();
    page = await openPage(browser, server);
  });

  after(async () => {
    if (page) assert.deepEqual(page.problems, []);
    await cleanup({ browser, servers: [server] });
  });

  test('live, replayed twice, or history then replay: one state; resume seq counts every entry', async () => {
    const result = await page.evaluate(async () => {
      const { Store } = await import('/js/store.js');
      const me = { id: 1, name: 'me', guest: false };
      const bob = { id: 2, name: 'bob', guest: false };
      let seq = 0;
      const msg = (sender, body, extra = {}) => ({ id: ++seq, room: 7, seq, sender, body, ts: 1000 + seq, client_id: `c${seq}`, ...extra });
      const change = (sender, op, target, extra = {}, body = '') => msg(sender, body, { change: { op, target, ...extra } });
      const stream = [
        msg(bob, 'one'), // 1
        msg(bob, 'two', { mentions: [1] }), // 2
        msg(me, 'three'), // 3
        change(bob, 'edit', 1, {}, 'one!'), // 4
        change(me, 'react', 1, { emoji: '👍', add: true }), // 5
        change(bob, 'react', 1, { emoji: '👍', add: true }), // 6
        msg(bob, 'in thread', { thread: 3, replies: 1 }), // 7
        change(me, 'react', 1, { emoji: '👍', add: false }), // 8
        change(bob, 'delete', 2), // 9
        msg(bob, 'also in room', { thread: 3, also_room: true, replies: 2 }), // 10
        change(bob, 'edit', 1, {}, 'one!!'), // 11
        change(me, 'react', 3, { emoji: '🎉', add: true }), // 12
      ];
      const fresh = () => {
        const store = new Store();
        store.setMe(me);
        store.upsertRoom({ id: 7, name: 'r', kind: 'public', member_count: 2, last_seq: 0, joined: true });
        return store;
      };
      const copy = (x) => JSON.parse(JSON.stringify(x));
      const view = (store) => store.room(7).messages.map((m) => ({
        seq: m.seq, body: m.body, deleted: !!m.deleted, edited_at: m.edited_at ?? null, replies: m.replies ?? 0,
        reactions: (m.reactions ?? []).map((r) => `${r.emoji}:${r.users.map((u) => u.name).join('+')}`),
      }));
      // A: online all along.
      const a = fresh();
      for (const e of stream) a.addMessages(7, [copy(e)]);
      // B: the same entries delivered twice (a replay overlapping what was held).
      const b = fresh();
      for (const e of stream) b.addMessages(7, [copy(e)]);
      for (const e of stream) b.addMessages(7, [copy(e)]);
      // C: held up to seq 3, then a history page in the current state, then the replay of 4..12.
      const c = fresh();
      for (const e of stream.slice(0, 3)) c.addMessages(7, [copy(e)]);
      const current = copy(view(a)).map((v) => {
        const orig = stream.find((e) => e.seq === v.seq);
        return {
          ...copy(orig), body: v.body, deleted: v.deleted || undefined, edited_at: v.edited_at ?? undefined,
          replies: v.replies || undefined,
          reactions: copy(a.room(7).messages.find((m) => m.seq === v.seq).reactions ?? []),
        };
      });
      c.setLatest(7, { messages: current, has_more: false });
      for (const e of stream.slice(3)) c.addMessages(7, [copy(e)]);
      return {
        a: view(a), b: view(b), c: view(c),
        lastSeq: [a.room(7).lastSeq, b.room(7).lastSeq, c.room(7).lastSeq],
        mentions: a.mentions(7),
        resume: a.resumeMap(),
      };
    });
    assert.deepEqual(result.a, [
      { seq: 1, body: 'one!!', deleted: false, edited_at: 1011, replies: 0, reactions: ['👍:bob'] },
      { seq: 2, body: '', deleted: true, edited_at: null, replies: 0, reactions: [] },
      { seq: 3, body: 'three', deleted: false, edited_at: null, replies: 2, reactions: ['🎉:me'] },
      { seq: 10, body: 'also in room', deleted: false, edited_at: null, replies: 2, reactions: [] },
    ]);
    assert.deepEqual(result.b, result.a, 'entries seen twice change nothing');
    assert.deepEqual(result.c, result.a, 'history in its current state, then the replay: the same');
    assert.deepEqual(result.lastSeq, [12, 12, 12], 'every entry moves the resume position');
    assert.equal(result.mentions, 0, 'a deleted mention no longer counts');
  });

  test('a deep link\'s window: changes and replies reach the live messages past it; counts once', async () => {
    const result = await page.evaluate(async () => {
      const { Store } = await import('/js/store.js');
      const me = { id: 1, name: 'me', guest: false };
      const bob = { id: 2, name: 'bob', guest: false };
      const msg = (seq, body, extra = {}) => ({ id: seq, room: 7, seq, sender: bob, body, ts: 1000 + seq, ...extra });
      const change = (seq, op, target, extra = {}, body = '') => msg(seq, body, { change: { op, target, ...extra } });
      const store = new Store();
      store.setMe(me);
      store.readSeq[7] = 20;
      // The server counted 2 unread, 1 of them a mention (seq 30), after marker 20, up to seq 30.
      store.upsertRoom({ id: 7, name: 'r', kind: 'public', member_count: 2, last_seq: 30, unread: 2, mentions: 1 });
      const room = store.room(7);
      // A link to seq 10 opened the window 9..11; newer ones exist on the server.
      store.setAround(7, { messages: [msg(9, 'nine'), msg(10, 'ten'), msg(11, 'eleven')], has_more: true, has_newer: true });
      store.addMessages(7, [msg(30, 'hey @me', { mentions: [1] })]); // held since the count
      const before = { unread: store.unread(7), mentions: store.mentions(7) };
      // Live past the window's end: a message mentioning me, then changes and a thread reply.
      store.addMessages(7, [
        msg(31, 'live @me', { mentions: [1] }),
        change(32, 'edit', 31, {}, 'live, edited @me'),
        change(33, 'react', 31, { emoji: '👍', add: true }),
        msg(34, 'a reply', { thread: 31, replies: 1 }),
      ]);
      const live = room.newer.find((m) => m.seq === 31);
      const during = {
        shown: room.messages.map((m) => m.seq),
        newer: room.newer.map((m) => m.seq),
        body: live?.body, reactions: live?.reactions?.length ?? 0, replies: live?.replies ?? 0,
        unread: store.unread(7), mentions: store.mentions(7),
      };
      // Both mentions are deleted: the live one and the one the server had counted.
      store.addMessages(7, [change(35, 'delete', 31), change(36, 'delete', 30)]);
      const after = { unread: store.unread(7), mentions: store.mentions(7), deleted: !!live?.deleted };
      // The window reaches the newest: the live ones join it, in their current state.
      store.addNewer(7, { messages: [msg(30, 'hey @me', { mentions: [1], deleted: true, body: '' })], has_more: false });
      return { before, during, after, end: { hasNewer: room.hasNewer, shown: room.messages.map((m) => m.seq), lastSeq: room.lastSeq } };
    });
    assert.deepEqual(result.before, { unread: 2, mentions: 1 }, 'the server\'s counts, not the held message again');
    assert.deepEqual(result.during, {
      shown: [9, 10, 11], newer: [30, 31], body: 'live, edited @me', reactions: 1, replies: 1, unread: 3, mentions: 2,
    });
    assert.deepEqual(result.after, { unread: 1, mentions: 0, deleted: true }, 'deletes take both out of the counts');
    assert.deepEqual(result.end, { hasNewer: false, shown: [9, 10, 11, 30, 31], lastSeq: 36 });
  });
  test('room events: applied once (live, replayed, from a reply), counted by resume', async () => {
    const result = await page.evaluate(async () => {
      const { Store } = await import('/js/store.js');
      const me = { id: 1, name: 'me', guest: false };
      const ana = { id: 2, name: 'ana', guest: false };
      const bob = { id: 3, name: 'bob', guest: false };
      const entry = (seq, change) => ({ id: 500 + seq, room: 7, seq, sender: ana, body: '', ts: 1000 * seq, client_id: `e${seq}`, change });
      const stream = [
        { id: 1, room: 7, seq: 1, sender: ana, body: 'hi', ts: 1000, client_id: 'c1' },
        entry(2, { op: 'settings', topic: 'Ship it', description: 'd' }),
        entry(3, { op: 'role', user: me, role: 'moderator' }),
        entry(4, { op: 'mute', user: me, until: Date.now() + 600000 }),
        entry(5, { op: 'ban', user: bob, reason: 'spam' }),
        entry(6, { op: 'settings', archived: true }),
      ];
      const build = (feed) => {
        const store = new Store();
        store.setMe(me);
        store.upsertRoom({ id: 7, name: 'town', kind: 'public', member_count: 2, last_seq: 0, joined: true, role: 'member' });
        feed(store);
        const room = store.room(7);
        return {
          resume: store.resumeMap(),
          lastSeq: room.lastSeq,
          topic: room.info.topic,
          archived: room.info.archived,
          role: room.info.role,
          muted: store.mutedUntil(7) > Date.now(),
          canModerate: store.canModerate(7),
          lines: room.notices.map((n) => n.key),
          messages: room.messages.length,
        };
      };
      // From history pages (asked with `events`): lines only, the room's state untouched (an
      // older page's `settings` must not undo a newer one), and the page's first entry, room
      // event or not, is where the next older page ends.
      const paged = (() => {
        const store = new Store();
        store.setMe(me);
        store.upsertRoom({ id: 7, name: 'town', kind: 'public', member_count: 2, last_seq: 6, joined: true, role: 'member', topic: 'Now' });
        store.setLatest(7, { messages: stream.slice(3), has_more: true });
        const room = store.room(7);
        const latest = { oldest: room.oldestLoaded, lines: room.notices.map((n) => n.key), hasOlder: room.hasOlder };
        store.addOlder(7, { messages: stream.slice(0, 3), has_more: false });
        return {
          latest,
          oldest: room.oldestLoaded,
          hasOlder: room.hasOlder,
          lines: room.notices.map((n) => n.key),
          topic: room.info.topic,
          role: room.info.role,
          archived: room.info.archived ?? false,
          lastSeq: room.lastSeq,
          messages: room.messages.length,
        };
      })();
      const live = build((s) => {
        s.setLatest(7, { messages: [], has_more: false });
        for (const e of stream) s.addMessages(7, [e]);
      });
      const twice = build((s) => {
        s.setLatest(7, { messages: [], has_more: false });
        for (const e of stream) s.applyRoomEntry(e); // the replies first...
        s.addMessages(7, stream); // ...then the events
        s.addMessages(7, stream); // ...and a replay
      });
      return { live, twice, paged };
    });
    assert.deepEqual(result.paged, {
      latest: { oldest: 4, lines: ['e4', 'e5', 'e6'], hasOlder: true },
      oldest: 1,
      hasOlder: false,
      lines: ['e2', 'e3', 'e4', 'e5', 'e6'],
      topic: 'Now',
      role: 'member',
      archived: false,
      lastSeq: 6,
      messages: 1,
    });
    assert.deepEqual(result.live, {
      resume: { 7: 6 },
      lastSeq: 6,
      topic: 'Ship it',
      archived: true,
      role: 'moderator',
      muted: true,
      canModerate: true,
      lines: ['e2', 'e3', 'e4', 'e5', 'e6'],
      messages: 1,
    });
    assert.deepEqual(result.twice, result.live);
  });
});
