// view/search.js — message search: the search panel (a dialog over the chat; the whole screen on
// a phone), the keyboard shortcuts that open it (Ctrl+K / Cmd+K anywhere, "/" outside a text
// field; Escape closes), the query box and its options ("Newest" / "Best match", "Include
// public rooms"), the results (room, author, time and the text with its hits as `mark`
// elements, built from the reply's `parts` with text nodes only), "Load more", and the empty and
// error states. It asks app.js through `actions`; an answer to an older query is dropped.

import { h, formatDay, formatTime, formatFull } from './dom.js';
import { SEARCH_DEBOUNCE_MS, SEARCH_QUERY_ERRORS, errorText } from '../protocol.js';
import { roomTitle } from '../store.js';

/** A result's text longer than this (UTF-16 units) is cut to an excerpt around its first hit. */
export const EXCERPT_CHARS = 280;
/** How much of the text before the first hit an excerpt keeps. */
const EXCERPT_LEAD = 60;

export class SearchView {
  /**
   * @param {object} actions
   *   enabled() -> bool: signed in, the chat shown (the shortcuts do nothing otherwise);
   *   search({query, public, order, cursor}) -> Promise<{results, next}>, rejecting with {code, message};
   *   isMember(roomId) -> bool;
   *   open(result) -> Promise: the room at that message (joining a public room first).
   */
  constructor(actions) {
    this.actions = actions;
    const $ = (id) => document.getElementById(id);
    this.dialog = $('dlg-search');
    this.input = $('search-query');
    this.status = $('search-status');
    this.list = $('search-results');
    this.more = $('search-more');
    this.publicBox = $('search-public');
    this.orderButtons = [...this.dialog.querySelectorAll('[data-order]')];
    /** what is shown and which answer it waits for (`generation`: the latest request's number) */
    this.state = { query: '', order: 'newest', public: false, next: null, shown: 0, generation: 0, timer: 0 };

    if (/Mac|iPhone|iPad/.test(navigator.platform ?? '')) $('search-key').textContent = '⌘K';
    $('btn-search').addEventListener('click', () => this.open());
    $('search-close').addEventListener('click', () => this.close());
    this.dialog.addEventListener('click', (e) => {
      if (e.target === this.dialog) this.close(); // a click on the backdrop
    });
    // Escape closes at once (in a search field it would first only clear the text).
    this.dialog.addEventListener('keydown', (e) => this.onKey(e));
    this.dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      this.close();
    });
    this.input.addEventListener('input', () => {
      clearTimeout(this.state.timer);
      this.state.timer = setTimeout(() => this.run(), SEARCH_DEBOUNCE_MS);
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        this.run();
      }
    });
    for (const btn of this.orderButtons) {
      btn.addEventListener('click', () => {
        if (this.state.order === btn.dataset.order) return;
        this.state.order = btn.dataset.order;
        for (const b of this.orderButtons) b.setAttribute('aria-pressed', String(b === btn));
        this.run();
      });
    }
    this.publicBox.addEventListener('change', () => {
      this.state.public = this.publicBox.checked;
      this.run();
    });
    this.more.addEventListener('click', () => this.load(false));
    document.addEventListener('keydown', (e) => this.onShortcut(e));
  }

  // ---- opening and closing -----------------------------------------------------------------

  /** Shows the panel (with the last search, if any) and puts the cursor in the box. */
  open() {
    if (!this.dialog.open) this.dialog.showModal();
    this.input.focus();
    this.input.select();
  }

  close() {
    clearTimeout(this.state.timer);
    if (this.dialog.open) this.dialog.close();
  }

  /** Forgets everything (signing out): the next person starts with an empty search. */
  reset() {
    this.close();
    this.input.value = '';
    this.publicBox.checked = false;
    this.state.public = false;
    this.state.order = 'newest';
    for (const b of this.orderButtons) b.setAttribute('aria-pressed', String(b.dataset.order === 'newest'));
    this.clear();
  }

  /** Ctrl+K / Cmd+K anywhere, "/" when not typing in a field; not over another dialog. */
  onShortcut(e) {
    if (e.defaultPrevented || !this.actions.enabled()) return;
    if (document.querySelector('dialog[open]:not(#dlg-search)')) return;
    const ctrlK = (e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && String(e.key ?? '').toLowerCase() === 'k';
    const slash = e.key === '/' && !e.ctrlKey && !e.metaKey && !e.altKey && !this.dialog.open && !isTyping(e.target);
    if (!ctrlK && !slash) return;
    e.preventDefault();
    this.open();
  }

  /** Inside the panel: Escape closes; Down/Up move between the box and the results. */
  onKey(e) {
    if (e.key === 'Escape') {
      e.preventDefault();
      this.close();
      return;
    }
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const items = [...this.list.querySelectorAll('.search-result')];
    if (!items.length) return;
    const at = items.indexOf(document.activeElement);
    if (at === -1 && document.activeElement !== this.input) return;
    e.preventDefault();
    const next = e.key === 'ArrowDown' ? at + 1 : at - 1;
    if (next < 0) this.input.focus();
    else items[Math.min(next, items.length - 1)].focus();
  }

  // ---- asking ------------------------------------------------------------------------------

  /** Starts over with the box's text: the first page of results. */
  run() {
    clearTimeout(this.state.timer);
    this.state.query = this.input.value.trim();
    if (!this.state.query) {
      this.clear();
      return Promise.resolve();
    }
    return this.load(true);
  }

  /** No query: nothing shown, and any answer on its way is dropped. */
  clear() {
    const s = this.state;
    s.generation++;
    s.query = '';
    s.next = null;
    s.shown = 0;
    this.list.replaceChildren();
    this.more.hidden = true;
    this.setStatus('');
  }

  /**
   * Loads the first page (`fresh`) or the next one and shows it. An answer that comes after a
   * newer search started (another query, order or scope) is dropped.
   */
  async load(fresh) {
    const s = this.state;
    const generation = ++s.generation;
    if (fresh) {
      this.list.replaceChildren();
      s.next = null;
      s.shown = 0;
      this.setStatus('Searching…');
    } else {
      this.more.disabled = true;
      this.more.textContent = 'Loading…';
    }
    if (fresh) this.more.hidden = true;
    let page;
    try {
      page = await this.actions.search({ query: s.query, public: s.public, order: s.order, cursor: fresh ? null : s.next });
    } catch (err) {
      if (generation !== s.generation) return;
      this.resetMore();
      const text = SEARCH_QUERY_ERRORS.includes(err.code) && err.message ? err.message : errorText(err.code, err.message);
      this.setStatus(text, 'error');
      return;
    }
    if (generation !== s.generation) return;
    const results = Array.isArray(page?.results) ? page.results : [];
    this.list.append(...results.map((r) => this.resultRow(r)));
    s.shown += results.length;
    s.next = page?.next ?? null;
    this.resetMore();
    this.setStatus(this.summary());
  }

  resetMore() {
    this.more.disabled = false;
    this.more.textContent = 'Load more';
    this.more.hidden = !this.state.next;
  }

  summary() {
    const { shown, query, next, public: pub } = this.state;
    if (!shown) {
      return pub ? `No messages match “${query}”.`
        : `No messages match “${query}” in your conversations. Try “Include public rooms”.`;
    }
    const found = `${shown} ${shown === 1 ? 'message' : 'messages'}`;
    return next ? `${found} shown, more below.` : `${found}.`;
  }

  setStatus(text, state = null) {
    this.status.textContent = text;
    if (state) this.status.dataset.state = state;
    else delete this.status.dataset.state;
  }

  // ---- results -----------------------------------------------------------------------------

  /** One result: who wrote it, where and when, and the text with its hits marked. */
  resultRow(result) {
    const { message, room } = result;
    const member = this.actions.isMember(room.id);
    const where = room.kind === 'dm' || room.kind === 'group' ? roomTitle(room) : `#${room.name}`;
    const ts = message.ts;
    const btn = h('button', {
      type: 'button',
      class: 'search-result',
      dataset: { room: String(room.id), seq: String(message.seq) },
      on: { click: () => this.choose(result, btn) },
    },
    h('span', { class: 'search-meta' },
      h('span', { class: 'search-author' }, message.sender?.name ?? 'someone'),
      h('span', { class: 'search-in' }, room.kind === 'dm' || room.kind === 'group' ? '· DM with' : 'in'),
      h('span', { class: 'search-room' }, where),
      message.thread != null ? h('span', { class: 'search-tag' }, 'thread reply') : null,
      member ? null : h('span', { class: 'search-tag' }, 'not joined'),
      h('time', { class: 'search-time', dateTime: new Date(ts).toISOString(), title: formatFull(ts) },
        `${formatDay(ts)}, ${formatTime(ts)}`)),
    h('span', { class: 'search-text' }, highlighted(result)));
    return h('li', { class: 'search-row' }, btn);
  }

  /** Opens the result's room at the message; a room not joined is joined first. */
  async choose(result, btn) {
    btn.disabled = true;
    const joining = !this.actions.isMember(result.room.id);
    if (joining) this.setStatus(`Joining #${result.room.name}…`);
    try {
      await this.actions.open(result);
      this.close();
    } catch (err) {
      this.setStatus(errorText(err.code, err.message), 'error');
    } finally {
      btn.disabled = false;
    }
  }
}

/** True when a key press goes to a text field (where "/" is a character, not a shortcut). */
function isTyping(target) {
  if (!(target instanceof Element)) return false;
  return target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]') !== null;
}

/**
 * A result's text as nodes: each hit run in a `mark`, the rest as text; a long text cut to an
 * excerpt around its first hit ("…" where cut). Built from `parts` (their texts joined are the
 * body); a reply without usable `parts` shows the body unmarked.
 */
export function highlighted(result) {
  const frag = document.createDocumentFragment();
  let parts = Array.isArray(result.parts) && result.parts.every((p) => typeof p?.text === 'string')
    ? result.parts : [{ text: String(result.message?.body ?? ''), hit: false }];
  const { start, end, total } = excerptRange(parts);
  parts = sliceParts(parts, start, end);
  if (start > 0) frag.append('…');
  for (const part of parts) frag.append(part.hit ? h('mark', {}, part.text) : document.createTextNode(part.text));
  if (end < total) frag.append('…');
  return frag;
}

/** Which stretch of the joined text to show: all of it, or EXCERPT_CHARS around the first hit. */
function excerptRange(parts) {
  const joined = parts.map((p) => p.text).join('');
  const total = joined.length;
  if (total <= EXCERPT_CHARS) return { start: 0, end: total, total };
  let firstHit = 0;
  let pos = 0;
  for (const p of parts) {
    if (p.hit) {
      firstHit = pos;
      break;
    }
    pos += p.text.length;
  }
  let start = Math.max(0, Math.min(firstHit - EXCERPT_LEAD, total - EXCERPT_CHARS));
  // Begin at a word when one starts shortly after the cut, and never inside a surrogate pair.
  const space = joined.slice(start, Math.min(firstHit, start + 20)).search(/\s\S/);
  if (start > 0 && space !== -1) start += space + 1;
  if (isLowSurrogate(joined.charCodeAt(start))) start--;
  let end = Math.min(total, start + EXCERPT_CHARS);
  if (end < total && isLowSurrogate(joined.charCodeAt(end))) end++;
  return { start, end, total };
}

function isLowSurrogate(code) {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** The runs of `parts` that fall within [start, end) of the joined text, cut to it. */
function sliceParts(parts, start, end) {
  const out = [];
  let pos = 0;
  for (const p of parts) {
    const from = Math.max(start, pos);
    const to = Math.min(end, pos + p.text.length);
    if (to > from) out.push({ text: p.text.slice(from - pos, to - pos), hit: p.hit === true });
    pos += p.text.length;
  }
  return out;
}
