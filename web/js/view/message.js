// view/message.js — one message as the room timeline and the thread panel show it: sender (by
// display name where known, with their picture; a click opens the profile card) and time, the text (or the "Message deleted" tombstone, or the inline editor), "(edited)" (opens
// the version history), the reaction chips, the thread summary ("3 replies · last reply 14:02"),
// "replied to a thread" on a reply also sent to the room, the mention highlight, pending and
// failed sends, its files (view/files.js), and the action toolbar ("…" menu, long-press on
// touch). Also `reconcileList`, which keeps a list's elements while their signature is
// unchanged. Reads; acts via `actions`.

import { h, icon, formatTime, formatFull } from './dom.js';
import { personAvatar } from './people.js';
import { charCount, isBlank } from '../protocol.js';
import { renderBody } from './markdown.js';
import { inTimeline } from '../store.js';
import { openMenu, openReactionPicker } from './message-actions.js';
import { fileList } from './files.js';

/** How long a rebuilt message keeps a highlight it had (room.js highlights for 2.5 s). */
const KEEP_HIGHLIGHT_MS = 2500;
/** A touch held this long opens the message's menu. */
const LONG_PRESS_MS = 500;

/**
 * The signature of a message entry: when it changes, the element is built again.
 * @param {object} e  {msg?, pending?, first, last}
 * @param {object} ctx {store, offline, where}
 */
export function messageSig(e, ctx) {
  const state = e.pending ? `${e.pending.state}|${e.pending.error}|${ctx.offline}` : '';
  const msg = e.msg;
  if (!msg) return `${e.first}|${e.last}|${state}`;
  const editing = isEditing(ctx, msg);
  return `${e.first}|${e.last}|${state}|${msg.rev ?? 0}|${editing}|${ctx.store.mentionsMe(msg)}|${ctx.store.personSig(msg.sender?.id)}`;
}

/** This copy of the message is the one being edited (one place only: the room or the thread). */
function isEditing(ctx, msg) {
  const ed = ctx.store.editing;
  return !!ed && ed.roomId === msg.room && ed.seq === msg.seq && ed.where === ctx.where;
}

/**
 * Build the <li> of one message.
 * @param {object} e    {msg?, pending?, sender, ts, body, own, first, last}
 * @param {object} ctx  {store, actions, offline, where: 'room'|'thread'|'parent'}
 */
export function buildMessage(e, ctx) {
  const { store, actions } = ctx;
  const msg = e.msg;
  const classes = ['msg', e.own ? 'own' : 'other'];
  if (e.first) classes.push('first');
  if (e.last) classes.push('last');
  if (e.pending) classes.push(e.pending.state === 'failed' ? 'failed' : 'pending');
  if (msg?.deleted) classes.push('deleted');
  if (msg && store.mentionsMe(msg)) classes.push('mentioned');
  const time = h('time', { class: 'msg-time', dateTime: new Date(e.ts).toISOString(), title: formatFull(e.ts) }, formatTime(e.ts));
  const meta = e.first
    ? h('div', { class: 'msg-meta' },
      e.own ? h('span', { class: 'sr-only' }, 'You') : senderName(e.sender, ctx),
      !e.own && e.sender && (e.sender.bot || store.profileOf(e.sender.id)?.bot) ? h('span', { class: 'bot-tag' }, 'bot') : null,
      time)
    : null;
  const threadRef = msg?.thread != null && ctx.where === 'room'
    ? h('button', {
      type: 'button',
      class: 'msg-thread-ref',
      on: { click: () => actions.openThread(msg.room, msg.thread) },
    }, 'replied to a thread')
    : null;
  let content;
  // A deleted message shows no files (the server drops them from it too).
  const files = msg?.deleted ? null : fileList(msg ? msg.files : e.pending?.files);
  if (msg && isEditing(ctx, msg)) content = editor(msg, ctx);
  else if (msg?.deleted) content = h('p', { class: 'msg-tombstone' }, 'Message deleted');
  else if (files && isBlank(e.body ?? '') && !msg?.edited_at) content = null;
  else {
    content = h('div', { class: 'bubble', title: formatFull(e.ts) },
      bodyText(e.body, store),
      msg?.edited_at ? h('button', {
        type: 'button',
        class: 'msg-edited',
        title: `Edited ${formatFull(msg.edited_at)}. Show the earlier versions`,
        attrs: { 'aria-label': 'Edited: show the earlier versions' },
        on: { click: () => actions.showEdits(msg.room, msg.seq) },
      }, '(edited)') : null);
  }
  const lead = e.own ? null : e.first ? personAvatar(store, e.sender) : h('span', { class: 'avatar-spacer', attrs: { 'aria-hidden': 'true' } });
  const li = h('li', { class: classes.join(' '), dataset: { sender: e.sender?.name ?? '', seq: msg ? String(msg.seq) : '' } },
    lead,
    h('div', { class: 'msg-main' },
      meta,
      threadRef,
      content,
      files,
      msg ? reactionRow(msg, ctx) : null,
      msg && ctx.where === 'room' && msg.thread == null && msg.replies ? threadSummary(msg, ctx) : null,
      e.pending ? pendingState(e.pending, ctx) : null),
    msg && !msg.deleted && !isEditing(ctx, msg) ? toolbar(msg, e.own, ctx) : null);
  if (msg && !msg.deleted) addLongPress(li, () => openMenu(li, menuItems(msg, e.own, ctx)));
  return li;
}

// ---- parts ------------------------------------------------------------------------------------

/** The sender's shown name (display name where known): a button that opens their profile card
 *  (not for a deleted account, which has none). */
function senderName(sender, ctx) {
  const shown = ctx.store.displayName(sender);
  if (!sender?.id || !ctx.actions.showProfile) return h('span', { class: 'msg-sender' }, shown);
  return h('button', {
    type: 'button',
    class: 'msg-sender person-link',
    title: shown === sender.name ? `Profile of ${shown}` : `${shown} (@${sender.name})`,
    on: { click: () => ctx.actions.showProfile(sender) },
  }, shown);
}

/** Block elements markdown.js makes of a body that is more than one paragraph. */
const BLOCK_TAGS = new Set(['P', 'PRE', 'BLOCKQUOTE', 'UL', 'OL']);

/**
 * The body as Markdown (view/markdown.js), mentions of me marked. One paragraph (most
 * messages) is inline content: "(edited)" then follows on its last line (`.msg-text.inline`).
 * Blocks (quotes, lists, code, paragraphs) are a block: "(edited)" comes after the last one.
 */
function bodyText(body, store) {
  const content = renderBody(body, { me: store.me?.name });
  const blocks = [...content.children].some((el) => BLOCK_TAGS.has(el.tagName));
  return h('div', { class: blocks ? 'msg-text' : 'msg-text inline' }, content);
}

function pendingState(p, ctx) {
  if (p.state !== 'failed') {
    return h('div', { class: 'msg-state', attrs: { role: 'status' } }, icon('clock', 12),
      ctx.offline ? 'Waiting for connection…' : 'Sending…');
  }
  return h('div', { class: 'msg-state failed', attrs: { role: 'alert' } },
    icon('alert', 12),
    h('span', {}, `Not sent${p.error ? `: ${p.error}.` : '.'}`),
    h('button', { type: 'button', class: 'link-btn', on: { click: () => ctx.actions.retry(p.client_id) } }, 'Retry'),
    h('button', { type: 'button', class: 'link-btn', on: { click: () => ctx.actions.discard(p.client_id) } }, 'Discard'));
}

function reactionRow(msg, ctx) {
  const reactions = msg.reactions ?? [];
  if (!reactions.length || msg.deleted) return null;
  const me = ctx.store.me;
  return h('div', { class: 'reactions' },
    reactions.map((r) => {
      const mine = r.users.some((u) => u.id === me?.id);
      const names = r.users.map((u) => u.name).join(', ');
      return h('button', {
        type: 'button',
        class: `reaction-chip${mine ? ' mine' : ''}`,
        title: `${names} reacted with ${r.emoji}`,
        attrs: {
          'aria-pressed': String(mine),
          'aria-label': `${r.emoji} ${r.users.length}: ${names}. ${mine ? 'Remove your reaction' : 'React with this too'}`,
        },
        dataset: { emoji: r.emoji, users: names },
        on: { click: () => ctx.actions.react(msg.room, msg.seq, r.emoji, !mine) },
      }, h('span', { class: 'reaction-emoji' }, r.emoji), h('span', { class: 'reaction-count' }, String(r.users.length)));
    }),
    h('button', {
      type: 'button',
      class: 'reaction-chip reaction-add',
      title: 'Add a reaction',
      attrs: { 'aria-label': 'Add a reaction' },
      on: { click: (ev) => pickReaction(ev.currentTarget, msg, ctx) },
    }, '+'));
}

function threadSummary(msg, ctx) {
  const n = msg.replies;
  const when = msg.last_reply_ts ? ` · last reply ${formatTime(msg.last_reply_ts)}` : '';
  return h('button', {
    type: 'button',
    class: 'thread-summary',
    title: msg.last_reply_ts ? `Last reply ${formatFull(msg.last_reply_ts)}` : '',
    on: { click: () => ctx.actions.openThread(msg.room, msg.seq) },
  }, `${n} ${n === 1 ? 'reply' : 'replies'}${when}`);
}

function pickReaction(anchor, msg, ctx) {
  openReactionPicker(anchor, (emoji) => {
    const mine = (msg.reactions ?? []).some((r) => r.emoji === emoji && r.users.some((u) => u.id === ctx.store.me?.id));
    if (!mine) ctx.actions.react(msg.room, msg.seq, emoji, true);
  });
}

/** What the "…" menu (and a long press) offers for a message. */
function menuItems(msg, own, ctx) {
  const { actions } = ctx;
  const items = [
    { label: 'React', run: (anchor) => pickReaction(anchor, msg, ctx) },
  ];
  if (ctx.where === 'room' && msg.thread == null) items.push({ label: 'Reply in thread', run: () => actions.openThread(msg.room, msg.seq) });
  // A reply kept to its thread has no place in the timeline: its link is its thread's start.
  items.push({ label: 'Copy link', run: () => actions.copyLink(msg.room, inTimeline(msg) ? msg.seq : msg.thread) });
  if (own) {
    items.push({ label: 'Edit', run: () => actions.startEdit(msg.room, msg.seq, ctx.where) });
    items.push({ label: 'Delete', danger: true, run: () => actions.deleteMessage(msg.room, msg.seq) });
  } else if (ctx.store.canModerate(msg.room)) {
    // Moderators, owners and admins delete others' messages (of a lower rank: the server
    // decides). Asked when the menu opens, so a role that changes needs no rebuild.
    items.push({ label: 'Delete', danger: true, run: () => actions.deleteMessage(msg.room, msg.seq) });
  }
  return items;
}

/** The hover toolbar: React, Reply in thread, and "…" with everything. */
function toolbar(msg, own, ctx) {
  const btn = (label, text, run, cls = '') => h('button', {
    type: 'button',
    class: `msg-action ${cls}`,
    title: label,
    attrs: { 'aria-label': label },
    on: { click: (ev) => run(ev.currentTarget) },
  }, text);
  const canThread = ctx.where === 'room' && msg.thread == null;
  return h('div', { class: 'msg-actions', attrs: { role: 'toolbar', 'aria-label': 'Message actions' } },
    btn('React', '☺', (anchor) => pickReaction(anchor, msg, ctx), 'desktop-only'),
    canThread ? btn('Reply in thread', '↩', () => ctx.actions.openThread(msg.room, msg.seq), 'desktop-only') : null,
    own ? btn('Edit', '✎', () => ctx.actions.startEdit(msg.room, msg.seq, ctx.where), 'desktop-only') : null,
    btn('More actions', '…', (anchor) => openMenu(anchor, menuItems(msg, own, ctx)), 'msg-more'));
}

/** The inline editor: Enter saves, Shift+Enter breaks the line, Escape cancels. */
function editor(msg, ctx) {
  const { store, actions } = ctx;
  const max = store.limits.max_message_chars;
  const input = h('textarea', {
    class: 'msg-editor-input',
    rows: 2,
    attrs: { 'aria-label': 'Edit message' },
  });
  input.value = store.editing.draft ?? msg.body;
  const save = () => {
    const body = input.value;
    if (isBlank(body) || charCount(body) > max) return;
    if (body === msg.body) actions.cancelEdit();
    else actions.saveEdit(msg.room, msg.seq, body);
  };
  input.addEventListener('input', () => {
    if (store.editing) store.editing.draft = input.value;
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      save();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      actions.cancelEdit();
    }
  });
  const form = h('form', {
    class: 'msg-editor',
    on: { submit: (e) => { e.preventDefault(); save(); } },
  },
  input,
  h('div', { class: 'msg-editor-bar' },
    h('span', { class: 'msg-editor-help' }, 'Enter to save, Escape to cancel'),
    h('button', { type: 'button', class: 'btn btn-ghost btn-sm', on: { click: () => actions.cancelEdit() } }, 'Cancel'),
    h('button', { type: 'submit', class: 'btn btn-primary btn-sm' }, 'Save')));
  // Once in the page: focus, caret at the end.
  requestAnimationFrame(() => {
    if (!input.isConnected) return;
    input.style.height = `${Math.min(input.scrollHeight + 2, 240)}px`;
    // Already in it (a click, or text typed before this frame): leave the caret and selection.
    if (document.activeElement === input) return;
    input.focus({ preventScroll: true });
    input.setSelectionRange(input.value.length, input.value.length);
  });
  return form;
}

function addLongPress(el, open) {
  let timer = 0;
  el.addEventListener('pointerdown', (e) => {
    if (e.pointerType !== 'touch' || e.target.closest('button, a, textarea')) return;
    clearTimeout(timer);
    timer = setTimeout(open, LONG_PRESS_MS);
  });
  for (const type of ['pointerup', 'pointercancel', 'pointermove', 'pointerleave']) {
    el.addEventListener(type, () => clearTimeout(timer));
  }
  el.addEventListener('contextmenu', (e) => {
    if (e.pointerType === 'touch' || matchMedia('(hover: none)').matches) e.preventDefault();
  });
}

// ---- lists -------------------------------------------------------------------------------------

/**
 * Make `list` show `items` ({key, sig, build}) in order, reusing the elements of `rendered`
 * (key -> {el, sig}) whose signature matches. Returns the new `rendered`.
 */
export function reconcileList(list, rendered, items) {
  const next = new Map();
  // Items gone first (the oldest, when a long room is trimmed): the rest then stay in place
  // instead of each being moved in front of them.
  const keys = new Set(items.map((item) => item.key));
  for (const [key, old] of rendered) {
    if (!keys.has(key)) old.el.remove();
  }
  let cursor = list.firstChild;
  for (const item of items) {
    const old = rendered.get(item.key);
    let el;
    if (old && old.sig === item.sig) {
      el = old.el;
    } else {
      el = item.build();
      el.dataset.key = item.key;
      // A message rebuilt while highlighted (a linked one whose sender's profile just came)
      // keeps the highlight for a moment more.
      if (old?.el.classList.contains('highlight')) {
        el.classList.add('highlight');
        setTimeout(() => el.classList.remove('highlight'), KEEP_HIGHLIGHT_MS);
      }
      if (old) {
        if (old.el === cursor) cursor = cursor.nextSibling;
        old.el.remove();
      }
    }
    next.set(item.key, { el, sig: item.sig });
    if (el === cursor) cursor = cursor.nextSibling;
    else list.insertBefore(el, cursor);
  }
  while (cursor) {
    const gone = cursor;
    cursor = cursor.nextSibling;
    gone.remove();
  }
  return next;
}
