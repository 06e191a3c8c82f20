// view/thread.js — the thread panel: a side panel beside the room on a desktop, the whole
// screen (with a back button) on a phone. It shows the thread's first message, its replies
// (older ones load on scrolling up, new ones stick to the bottom), my pending replies, and its
// own composer (Enter sends, "Also send to room", @-mention autocomplete). Reads the store's
// `thread`; acts only through `actions`.

import { h, formatDay, dayKey } from './dom.js';
import { charCount, isBlank } from '../protocol.js';
import { isDirect, roomTitle } from '../store.js';
import { buildMessage, messageSig, reconcileList } from './message.js';
import { MentionPicker } from './mentions.js';

const GROUP_GAP_MS = 5 * 60 * 1000;
const BOTTOM_SLACK = 48;
const TOP_SLACK = 160;
const MAX_HEIGHT_PX = 160;

export class ThreadView {
  /**
   * @param {object} actions closeThread(), loadThreadOlder(), sendThread(body, alsoRoom),
   *                         members(roomId), and the message actions of message.js
   */
  constructor(actions) {
    this.actions = actions;
    const $ = (id) => document.getElementById(id);
    this.chat = $('chat');
    this.panel = $('thread-panel');
    this.title = $('thread-room');
    this.scroller = $('thread-scroll');
    this.parentList = $('thread-parent');
    this.status = $('thread-status');
    this.list = $('thread-list');
    this.form = $('thread-composer');
    this.input = $('thread-input');
    this.alsoRoom = $('thread-also-room');
    this.sendBtn = $('thread-send');
    this.key = null;
    this.rendered = new Map();
    this.parentRendered = new Map();
    this.stick = true;
    this.store = null;
    this.mentions = new MentionPicker(this.input, {
      members: () => (this.store?.thread ? actions.members(this.store.thread.roomId) : Promise.resolve([])),
      me: () => this.store?.me,
      changed: () => this.update(),
    });

    $('thread-close').addEventListener('click', () => actions.closeThread());
    $('thread-back').addEventListener('click', () => actions.closeThread());
    this.panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !e.defaultPrevented && !e.target.closest('.msg-editor')) actions.closeThread();
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (e) => {
      if (this.mentions.handleKey(e)) return;
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => this.update());
    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.phone = window.matchMedia('(max-width: 760px)');
    this.phone.addEventListener('change', () => this.coverRoom());
  }

  /** On a phone the panel covers the room: keep the keyboard and screen readers out of it. */
  coverRoom() {
    const room = document.getElementById('room');
    const covered = !this.panel.hidden && this.phone.matches;
    if (covered) room.inert = true;
    else if (this.wasCovering) room.inert = false;
    this.wasCovering = covered;
  }

  render(store, topics) {
    this.store = store;
    const thread = store.thread;
    if (!(topics.has('thread') || topics.has('all') || topics.has('connection') || topics.has('pending')
      || (thread && topics.has(`room:${thread.roomId}`) && topics.has('current')))) return;
    const key = thread ? `${thread.roomId}:${thread.parentSeq}` : null;
    const opened = key !== this.key;
    if (opened) {
      this.key = key;
      this.rendered.clear();
      this.parentRendered.clear();
      this.list.replaceChildren();
      this.parentList.replaceChildren();
      this.stick = true;
      this.input.value = '';
      this.alsoRoom.checked = false;
      this.mentions.close();
    }
    this.panel.hidden = !thread;
    this.chat.classList.toggle('with-thread', !!thread);
    this.coverRoom();
    if (!thread) return;
    const room = store.room(thread.roomId);
    this.title.textContent = room ? (isDirect(room.info) ? store.titleOf(room.info) : `#${roomTitle(room.info)}`) : '';
    // An archived room is read-only: no replies (the room's own notice says why); muted: none
    // for now.
    this.form.hidden = room?.info.archived === true;
    this.input.disabled = store.mutedUntil(thread.roomId) > 0;
    this.renderList(store, thread, room);
    this.update();
    if (opened) {
      this.scrollToBottom();
      if (!matchMedia('(hover: none)').matches) this.input.focus({ preventScroll: true });
    }
  }

  renderList(store, thread, room) {
    const offline = store.connection.status !== 'online';
    const ctx = { store, actions: this.actions, offline, where: 'thread' };
    const me = store.me;
    const anchor = this.stick ? null : this.list.firstElementChild;
    const anchorTop = anchor?.offsetTop ?? 0;

    const parent = thread.parent;
    const parentItems = parent ? [{
      key: `p${parent.seq}`,
      msg: parent,
      ts: parent.ts,
      sender: parent.sender,
      body: parent.body,
      own: parent.sender.id === me?.id,
      first: true,
      last: true,
    }] : [];
    const pctx = { ...ctx, where: 'parent' };
    for (const e of parentItems) {
      e.sig = messageSig(e, pctx);
      e.build = () => buildMessage(e, pctx);
    }
    this.parentRendered = reconcileList(this.parentList, this.parentRendered, parentItems);

    let text = '';
    if (thread.error) text = thread.error;
    else if (!thread.loaded) text = 'Loading replies…';
    else if (thread.loadingOlder) text = 'Loading older replies…';
    else if (!thread.replies.length && !room?.pending.some((p) => p.thread === thread.parentSeq)) text = 'No replies yet.';
    this.status.textContent = text;

    const entries = thread.replies.map((msg) => ({
      key: `m${msg.seq}`, msg, ts: msg.ts, sender: msg.sender, body: msg.body, own: msg.sender.id === me?.id,
    }));
    for (const p of room?.pending ?? []) {
      if (p.thread !== thread.parentSeq) continue;
      entries.push({ key: `p${p.client_id}`, ts: p.ts, sender: me, body: p.body, own: true, pending: p });
    }
    const items = [];
    let prev = null;
    let day = null;
    for (const e of entries) {
      const d = dayKey(e.ts);
      if (d !== day) {
        day = d;
        const label = formatDay(e.ts);
        items.push({ key: `d${d}`, sig: label, build: () => h('li', { class: 'day-sep', attrs: { role: 'separator' } }, h('span', {}, label)) });
        prev = null;
      }
      e.first = !(prev && prev.sender?.id === e.sender?.id && e.ts - prev.ts < GROUP_GAP_MS);
      if (prev && !e.first) prev.last = false;
      e.last = true;
      prev = e;
      items.push(e);
    }
    for (const e of items) {
      if (!e.sender) continue;
      e.sig = messageSig(e, ctx);
      e.build = () => buildMessage(e, ctx);
    }
    const lastBefore = this.list.lastElementChild?.dataset.key;
    this.rendered = reconcileList(this.list, this.rendered, items);
    const lastAfter = this.list.lastElementChild?.dataset.key;
    const mine = lastAfter !== lastBefore && this.list.lastElementChild?.classList.contains('own');
    if (this.stick || mine) this.scrollToBottom();
    else if (anchor?.isConnected) this.scroller.scrollTop += anchor.offsetTop - anchorTop;
    this.maybeLoadOlder();
  }

  update() {
    const text = this.input.value;
    const max = this.store?.limits.max_message_chars ?? 4000;
    this.sendBtn.disabled = isBlank(text) || charCount(text) > max;
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  submit() {
    const body = this.input.value;
    const max = this.store?.limits.max_message_chars ?? 4000;
    if (isBlank(body) || charCount(body) > max) return;
    if (!this.actions.sendThread(body, this.alsoRoom.checked)) return;
    this.input.value = '';
    this.alsoRoom.checked = false; // each reply chooses again
    this.mentions.close();
    this.update();
    this.stick = true;
    this.input.focus();
  }

  focus() {
    if (!this.panel.hidden) this.input.focus({ preventScroll: true });
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.stick = true;
  }

  onScroll() {
    const s = this.scroller;
    this.stick = s.scrollHeight - s.scrollTop - s.clientHeight < BOTTOM_SLACK;
    this.maybeLoadOlder();
  }

  maybeLoadOlder() {
    const thread = this.store?.thread;
    if (!thread || !thread.loaded || !thread.hasOlder || thread.loadingOlder) return;
    // The first message sits above the replies: "near the top" is near the first reply.
    if (this.scroller.scrollTop < this.list.offsetTop + TOP_SLACK) this.actions.loadThreadOlder();
  }
}
