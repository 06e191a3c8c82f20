// view/room.js — the open conversation: its header (name with a lock for a private room and a
// mark for an archived one, member count or presence, the topic (description on hover), room
// details, leave; a group DM's people, "Add person" and leave),
// the message list (day separators, grouping, own messages apart, pending and failed sends,
// join/leave notices and room events as system lines; each message drawn by message.js with its edits, tombstone, reactions,
// thread summary and actions), scrolling (stick to the newest, a "new messages" pill when the
// reader has scrolled up, older history on scrolling up) and the "is typing" line.

import { h, icon, formatFull, formatDay, dayKey } from './dom.js';
import { describeMembers, describeRoomEvent } from '../protocol.js';
import { isDirect } from '../store.js';
import { personAvatar, seenText } from './people.js';
import { buildMessage, messageSig, reconcileList } from './message.js';

/** Messages from one sender closer together than this share one header. */
const GROUP_GAP_MS = 5 * 60 * 1000;
/** Within this many pixels of the bottom counts as "at the bottom". */
const BOTTOM_SLACK = 48;
/** Older history is asked for when the reader is this close to the top. */
const TOP_SLACK = 240;
/** How long a linked message stays highlighted. */
const HIGHLIGHT_MS = 2500;

export class RoomView {
  /**
   * @param {object} actions loadOlder(id), markRead(id), readingOlder(yes), retry(client_id),
   *                         discard(client_id), leaveRoom(id), showMembers(id), and the
   *                         message actions of message.js (react, openThread, startEdit, ...)
   */
  constructor(actions) {
    this.actions = actions;
    const $ = (id) => document.getElementById(id);
    this.name = $('room-name');
    this.meta = $('room-meta');
    this.leave = $('btn-leave');
    this.topic = $('room-topic');
    this.infoBtn = $('btn-room-info');
    this.groupAddBtn = $('btn-group-add');
    this.groupAddBtn.addEventListener('click', () => this.roomId !== null && actions.addToGroup(this.roomId));
    this.timeline = $('timeline');
    this.list = $('message-list');
    this.historyStatus = $('history-status');
    this.pill = $('new-pill');
    this.empty = $('room-empty');
    this.typing = $('typing');
    this.roomId = null;
    /** key -> {el, sig}: the rendered items, reused while unchanged */
    this.rendered = new Map();
    /** the reader is at (or near) the newest message; new ones keep it there */
    this.stick = true;
    this.store = null;

    this.leave.addEventListener('click', () => this.roomId !== null && actions.leaveRoom(this.roomId));
    this.meta.addEventListener('click', () => this.roomId !== null && actions.showMembers(this.roomId));
    this.topic.addEventListener('click', () => this.roomId !== null && actions.roomInfo(this.roomId));
    this.infoBtn.addEventListener('click', () => this.roomId !== null && actions.roomInfo(this.roomId));
    this.pill.addEventListener('click', () => {
      if (this.store?.room(this.roomId)?.hasNewer) actions.jumpToLatest(this.roomId);
      this.scrollToBottom(true);
      this.timeline.focus({ preventScroll: true });
    });
    this.timeline.addEventListener('scroll', () => this.onScroll(), { passive: true });
    new ResizeObserver(() => {
      if (this.stick) this.scrollToBottom();
    }).observe(this.timeline);
    document.addEventListener('visibilitychange', () => this.maybeMarkRead());
  }

  render(store, topics) {
    this.store = store;
    const room = store.currentRoom;
    const switched = (room?.id ?? null) !== this.roomId || topics.has('all');
    if (switched) {
      this.roomId = room?.id ?? null;
      this.rendered.clear();
      this.list.replaceChildren();
      this.setStick(true);
      this.pill.hidden = true;
      /** show the "new messages" divider once this room's messages are in */
      this.dividerShown = false;
    }
    const key = room ? `room:${room.id}` : null;
    if (switched || topics.has('current') || topics.has(key) || topics.has('presence') || topics.has('rooms')
      || topics.has('connection') || topics.has('profiles')) {
      this.renderHeader(store, room);
    }
    if (switched || topics.has(key) || (topics.has('connection') && room?.pending.length)) {
      this.renderTimeline(store, room, switched);
    }
    if (switched || topics.has('typing')) this.renderTyping(store, room);
  }

  renderHeader(store, room) {
    this.empty.hidden = !!room;
    this.timeline.hidden = !room;
    if (!room) {
      const connecting = store.connection.status !== 'online';
      this.empty.querySelector('.room-empty-title').textContent = connecting ? 'Connecting…' : 'No conversation open';
      this.empty.querySelector('p:last-child').textContent = connecting
        ? 'Your conversations will appear here in a moment.'
        : 'Create a room or browse the rooms on this server to get going.';
      this.name.replaceChildren('Natter');
      this.meta.hidden = true;
      this.leave.hidden = true;
      this.topic.hidden = true;
      this.infoBtn.hidden = true;
      this.groupAddBtn.hidden = true;
      document.title = 'Natter';
      return;
    }
    const info = room.info;
    const title = store.titleOf(info);
    this.meta.hidden = false;
    this.groupAddBtn.hidden = info.kind !== 'group';
    if (info.kind === 'group') {
      const peers = info.peers ?? [];
      const known = store.presenceKnown;
      const online = peers.filter((p) => store.isOnline(p.id)).length;
      const count = peers.length + 1;
      this.name.replaceChildren(
        h('span', { class: 'group-avatars', attrs: { 'aria-hidden': 'true' } },
          ...peers.slice(0, 3).map((p) => personAvatar(store, p, { size: 'sm' }))),
        h('span', { class: 'group-title', title: peers.map((p) => `${store.displayName(p)} (@${p.name})`).join(', ') }, title));
      this.meta.textContent = known ? `${count} people, ${online + 1} online` : `${count} people`;
      this.meta.setAttribute('aria-label', `Group of ${count}: you, ${title}. Show members`);
      this.leave.hidden = false;
      this.leave.setAttribute('aria-label', `Leave the group with ${title}`);
      this.topic.hidden = true;
      this.infoBtn.hidden = true;
    } else if (info.kind === 'dm') {
      const online = store.presenceOf(info.peer?.id);
      const said = online === null ? 'Status unknown' : online ? 'Online'
        : seenText(store.profileOf(info.peer?.id), false).replace(/^./, (c) => c.toUpperCase());
      this.name.replaceChildren(personAvatar(store, info.peer, { online, size: 'sm' }), h('span', {}, title));
      this.meta.textContent = said;
      this.meta.setAttribute('aria-label', online === null
        ? `Not connected: whether ${title} is online is not known. Show members`
        : `${title} is ${online ? 'online' : 'offline'}. Show members`);
      this.leave.hidden = true;
      this.topic.hidden = true;
      this.infoBtn.hidden = true;
    } else {
      const count = info.member_count ?? 0;
      const lead = info.kind === 'private'
        ? h('span', { class: 'room-lock', title: 'Private room: invite only' }, icon('lock', 16), h('span', { class: 'sr-only' }, 'Private room'))
        : h('span', { class: 'room-hash', attrs: { 'aria-hidden': 'true' } }, '#');
      const archived = info.archived
        ? h('span', { class: 'archived-tag', title: 'Archived: read-only' }, icon('archive', 14), h('span', { class: 'archived-word' }, 'archived'))
        : null;
      // (the title stays the last child: it is the part that shortens with an ellipsis)
      this.name.replaceChildren(...[lead, archived, h('span', {}, title)].filter(Boolean));
      this.topic.hidden = !info.topic && !info.description;
      this.topic.textContent = info.topic || 'About this room';
      this.topic.title = info.description ? `${info.topic ? `${info.topic}\n\n` : ''}${info.description}` : info.topic ?? '';
      this.topic.setAttribute('aria-label', `Topic: ${info.topic || 'none'}. Room details`);
      this.infoBtn.hidden = false;
      this.meta.textContent = `${count} ${count === 1 ? 'member' : 'members'}`;
      this.meta.setAttribute('aria-label', `${count} ${count === 1 ? 'member' : 'members'}. Show members`);
      this.leave.hidden = false;
      this.leave.setAttribute('aria-label', `Leave #${title}`);
    }
    this.timeline.setAttribute('aria-label', `Messages in ${isDirect(info) ? title : `#${title}`}`);
  }

  renderTyping(store, room) {
    const names = room ? store.typingIn(room.id) : [];
    if (names.length === 0) {
      this.typing.replaceChildren();
      this.typing.classList.remove('active');
      return;
    }
    let text;
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else text = 'Several people are typing…';
    this.typing.classList.add('active');
    this.typing.replaceChildren(
      h('span', { class: 'typing-dots', attrs: { 'aria-hidden': 'true' } }, h('span'), h('span'), h('span')),
      h('span', { class: 'typing-text' }, text),
    );
  }

  // ---- the message list --------------------------------------------------------------------

  renderTimeline(store, room, switched) {
    if (!room) return;
    // A window opened at a linked message that has just reached the newest: at the bottom is
    // at the newest now.
    if (this.windowed && !room.hasNewer && !switched) this.setStick(this.distanceFromBottom() < BOTTOM_SLACK);
    this.windowed = room.hasNewer;
    const stick = switched || this.stick;
    // Keep the first message in view where it is while things change above it. By key: its
    // element may be rebuilt (e.g. it stops starting a group when older messages arrive).
    const anchor = stick ? null : this.firstVisibleItem();
    const anchorKey = anchor?.dataset.key;
    const anchorTop = anchor?.offsetTop ?? 0;
    const lastBefore = this.list.lastElementChild?.dataset.key;

    this.renderHistoryStatus(room);
    const items = this.items(store, room);
    this.reconcile(items);

    const lastAfter = this.list.lastElementChild?.dataset.key;
    const mineArrived = lastAfter !== lastBefore && this.list.lastElementChild?.classList.contains('own');
    if ((stick || mineArrived) && !room.hasNewer) {
      this.scrollToBottom();
    } else if (!stick) {
      const moved = anchorKey && this.rendered.get(anchorKey)?.el;
      if (moved) this.timeline.scrollTop += moved.offsetTop - anchorTop;
      if (lastAfter !== lastBefore) this.pill.hidden = false;
    }
    if (room.hasNewer) this.pill.hidden = false;
    if (!this.showFocus(store, room)) this.showDivider(room);
    this.maybeMarkRead();
    this.maybeLoadOlder();
    this.maybeLoadNewer();
  }

  /** A linked message asked for (store.focus) and shown: scroll to it and highlight it. */
  showFocus(store, room) {
    const focus = store.focus;
    if (!focus || focus.room !== room.id) return false;
    const el = this.rendered.get(`m${focus.seq}`)?.el;
    if (!el) return false;
    store.focus = null;
    this.dividerShown = true;
    el.scrollIntoView({ block: 'center', behavior: 'instant' });
    this.setStick(this.distanceFromBottom() < BOTTOM_SLACK && !room.hasNewer);
    el.classList.remove('highlight');
    void el.offsetWidth; // restart the animation when the same message is linked again
    el.classList.add('highlight');
    setTimeout(() => el.classList.remove('highlight'), HIGHLIGHT_MS);
    return true;
  }

  /** Once per opening: bring the "new messages" divider into view when it is above it. */
  showDivider(room) {
    if (this.dividerShown || !room.loaded) return;
    this.dividerShown = true;
    const el = this.rendered.get('unread-divider')?.el;
    if (!el || el.offsetTop >= this.timeline.scrollTop) return;
    this.timeline.scrollTop = Math.max(0, el.offsetTop - 8);
    this.setStick(this.distanceFromBottom() < BOTTOM_SLACK);
  }

  renderHistoryStatus(room) {
    let text = '';
    if (!room.loaded) text = 'Loading messages…';
    else if (room.loadingOlder) text = 'Loading older messages…';
    else if (!room.hasOlder) {
      text = isDirect(room.info)
        ? `This is the start of your conversation with ${this.store.titleOf(room.info)}.`
        : `This is the very beginning of #${room.info.name}.`;
    }
    this.historyStatus.textContent = text;
  }

  /** The entries to show, in order, each {key, sig, build}. */
  items(store, room) {
    const me = store.me;
    const entries = [];
    const notices = room.notices;
    let n = 0;
    const addNotice = (notice) => {
      // Joins in a row (nothing else between them) are one line, "ana, bob and carol joined";
      // so are leaves in a row. A busy room's sign-ups do not fill the screen.
      const op = notice.event.change.op;
      const last = entries.at(-1);
      if ((op === 'join' || op === 'leave') && last?.kind === 'notice' && last.event.change.op === op && last.day === dayKey(notice.ts)) {
        last.events.push(notice.event);
        last.ts = notice.ts;
        return;
      }
      entries.push({ kind: 'notice', ...notice, events: [notice.event], day: dayKey(notice.ts) });
    };
    for (const msg of room.messages) {
      while (n < notices.length && notices[n].afterSeq < msg.seq) addNotice(notices[n++]);
      entries.push({ kind: 'msg', key: `m${msg.seq}`, msg, seq: msg.seq, ts: msg.ts, sender: msg.sender, body: msg.body, own: msg.sender.id === me?.id });
    }
    while (n < notices.length) addNotice(notices[n++]);
    // "New messages" above the first message from others after the marker as it was when the
    // room was opened (it stays while the room is open).
    const opened = store.opened?.room === room.id ? store.opened : null;
    if (opened && opened.readSeq < opened.lastSeq) {
      const at = entries.findIndex((e) => e.kind === 'msg' && !e.own && e.seq > opened.readSeq && e.seq <= opened.lastSeq);
      if (at >= 0) entries.splice(at, 0, { kind: 'divider', key: 'unread-divider', ts: entries[at].ts });
    }
    for (const p of room.pending) {
      if (p.thread != null && !p.also_room) continue; // shown in its thread only
      entries.push({ kind: 'pending', key: `p${p.client_id}`, ts: p.ts, sender: me, body: p.body, own: true, pending: p });
    }

    // Group consecutive messages of one sender, and put a separator before each new day.
    const out = [];
    let prev = null;
    let day = null;
    const offline = store.connection.status !== 'online';
    for (const e of entries) {
      const d = dayKey(e.ts);
      if (d !== day) {
        day = d;
        const label = formatDay(e.ts);
        out.push({ key: `d${d}`, sig: label, build: () => dayItem(label) });
        prev = null;
      }
      if (e.kind === 'divider') {
        out.push({ key: e.key, sig: 'divider', build: unreadDivider });
        prev = null;
        continue;
      }
      if (e.kind === 'notice') {
        const text = e.events.length > 1 ? describeMembers(e.events) : describeRoomEvent(e.event);
        out.push({ key: e.key, sig: text, build: () => noticeItem({ ...e, text }) });
        prev = null;
        continue;
      }
      e.first = !(prev && prev.sender?.id === e.sender?.id && e.ts - prev.ts < GROUP_GAP_MS);
      if (prev && !e.first) prev.last = false;
      e.last = true;
      prev = e;
      out.push(e);
    }
    const ctx = { store, actions: this.actions, offline, where: 'room' };
    for (const e of out) {
      if (!e.kind) continue;
      e.sig = messageSig(e, ctx);
      e.build = () => buildMessage(e, ctx);
    }
    return out;
  }

  /** Make the list show `items` in order, reusing elements whose key and signature match. */
  reconcile(items) {
    this.rendered = reconcileList(this.list, this.rendered, items);
  }

  // ---- scrolling ---------------------------------------------------------------------------

  distanceFromBottom() {
    const t = this.timeline;
    return t.scrollHeight - t.scrollTop - t.clientHeight;
  }

  scrollToBottom(smooth = false) {
    this.timeline.scrollTo({ top: this.timeline.scrollHeight, behavior: smooth ? 'smooth' : 'instant' });
    this.setStick(true);
    this.pill.hidden = true;
    this.maybeMarkRead();
  }

  /** At the newest message (true) or scrolled up; the store keeps a long room whole while up. */
  setStick(stick) {
    if (stick !== this.stick) this.actions.readingOlder(!stick);
    this.stick = stick;
  }

  onScroll() {
    const room = this.store?.room(this.roomId);
    this.setStick(this.distanceFromBottom() < BOTTOM_SLACK && !room?.hasNewer);
    if (this.stick) this.pill.hidden = true;
    this.maybeMarkRead();
    this.maybeLoadOlder();
    this.maybeLoadNewer();
  }

  /** In a window opened at a linked message: the next newer page when near its end. */
  maybeLoadNewer() {
    const room = this.store?.room(this.roomId);
    if (!room?.hasNewer || room.loadingNewer || this.store.focus) return;
    if (this.distanceFromBottom() < TOP_SLACK) this.actions.loadNewer(room.id);
  }

  /** The first message or notice in view: it must stay put when older history comes in above.
   * (Not a day separator: older messages of the same day are inserted below it.) */
  firstVisibleItem() {
    const top = this.timeline.scrollTop;
    for (const el of this.list.children) {
      if (el.classList.contains('day-sep')) continue;
      if (el.offsetTop + el.offsetHeight > top) return el;
    }
    return null;
  }

  maybeMarkRead() {
    if (this.roomId === null || !this.stick || document.visibilityState !== 'visible') return;
    this.actions.markRead(this.roomId);
  }

  maybeLoadOlder() {
    const room = this.store?.room(this.roomId);
    if (!room || !room.loaded || !room.hasOlder || room.loadingOlder) return;
    if (this.timeline.scrollTop < TOP_SLACK) this.actions.loadOlder(room.id);
  }
}

function unreadDivider() {
  return h('li', { class: 'unread-sep', attrs: { role: 'separator', 'aria-label': 'New messages' } }, h('span', {}, 'New messages'));
}

function dayItem(label) {
  return h('li', { class: 'day-sep', attrs: { role: 'separator' } }, h('span', {}, label));
}

function noticeItem(notice) {
  // A room event (joins and leaves, moderation, settings) is a system line of its own kind.
  const cls = `notice room-event op-${notice.event.change.op}`;
  return h('li', { class: cls, title: formatFull(notice.ts) }, notice.text);
}
