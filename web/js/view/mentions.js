// view/mentions.js — the @-mention autocomplete of a message box (the room's composer and the
// thread's): typing `@` lists the room's members (with their display names) and `@room`,
// filtered by what follows the `@` (a username, or a word of a display name);
// Up/Down move, Enter or Tab picks (the box gets `@name `; Enter after a name typed out in full
// sends instead), Escape closes. The members come
// from `room.members` through the `members` callback (app.js caches them per room).

import { h } from './dom.js';

/** At most this many names are offered at once. */
const MAX_SHOWN = 8;
/** The `@word` just before the caret: start of text or after a space/bracket. */
const TOKEN_RE = /(^|[\s(])@([A-Za-z0-9_.-]*)$/;

let counter = 0;

export class MentionPicker {
  /**
   * @param {HTMLTextAreaElement} input
   * @param {object} opts members() -> Promise<[{user, online}]>, me() -> User, changed()
   */
  constructor(input, { members, me, changed = () => {} }) {
    this.input = input;
    this.members = members;
    this.me = me;
    this.changed = changed;
    this.id = `mention-list-${++counter}`;
    this.list = h('ul', { class: 'mention-list', id: this.id, attrs: { role: 'listbox', 'aria-label': 'People to mention' } });
    this.list.hidden = true;
    input.parentElement.append(this.list);
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-controls', this.id);
    input.setAttribute('aria-expanded', 'false');
    /** {start, query} of the `@word` being typed, or null */
    this.token = null;
    this.options = [];
    this.active = 0;
    this.generation = 0;
    input.addEventListener('input', () => this.refresh());
    input.addEventListener('click', () => this.refresh());
    input.addEventListener('blur', () => setTimeout(() => {
      if (document.activeElement !== input) this.close();
    }, 150));
    // A click on an option must not take the focus from the box first.
    this.list.addEventListener('pointerdown', (e) => e.preventDefault());
  }

  get isOpen() {
    return !this.list.hidden;
  }

  /** Look at the text before the caret; open, filter or close. */
  async refresh() {
    const caret = this.input.selectionStart;
    if (caret !== this.input.selectionEnd) return this.close();
    const m = this.input.value.slice(0, caret).match(TOKEN_RE);
    if (!m) return this.close();
    this.token = { start: caret - m[2].length - 1, query: m[2].toLowerCase() };
    const generation = ++this.generation;
    let members = [];
    try {
      members = await this.members();
    } catch {
      members = [];
    }
    if (generation !== this.generation || !this.token) return undefined;
    const me = this.me();
    const q = this.token.query;
    // By username, or by a word of the display name ("li" finds "Ana Lima"); the display name
    // is the hint, the mention is always the username.
    const matches = (m2) => m2.user.name.toLowerCase().startsWith(q)
      || (m2.display_name ?? '').toLowerCase().split(/\s+/).some((w) => w.startsWith(q));
    const names = members
      .filter((m2) => m2.user.id !== me?.id && matches(m2))
      .sort((a, b) => a.user.name.localeCompare(b.user.name))
      .map((m2) => ({ name: m2.user.name, hint: m2.display_name && m2.display_name !== m2.user.name ? m2.display_name : '' }));
    if ('room'.startsWith(q)) names.push({ name: 'room', hint: 'everyone in the room' });
    this.options = names.slice(0, MAX_SHOWN);
    if (!this.options.length) return this.close();
    this.active = Math.min(this.active, this.options.length - 1);
    this.show();
    return undefined;
  }

  show() {
    this.list.replaceChildren(...this.options.map((opt, i) => h('li', {
      id: `${this.id}-${i}`,
      class: `mention-option${i === this.active ? ' active' : ''}`,
      attrs: { role: 'option', 'aria-selected': String(i === this.active) },
      dataset: { name: opt.name },
      on: { click: () => this.pick(i) },
    }, h('span', { class: 'mention-name' }, `@${opt.name}`), opt.hint ? h('span', { class: 'mention-hint' }, opt.hint) : null)));
    this.list.hidden = false;
    this.input.setAttribute('aria-expanded', 'true');
    this.input.setAttribute('aria-activedescendant', `${this.id}-${this.active}`);
  }

  close() {
    this.generation++;
    this.token = null;
    this.options = [];
    this.active = 0;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.input.setAttribute('aria-expanded', 'false');
    this.input.removeAttribute('aria-activedescendant');
  }

  /** Replace the `@word` with the chosen name. */
  pick(i) {
    const opt = this.options[i];
    if (!opt || !this.token) return;
    const value = this.input.value;
    const caret = this.input.selectionStart;
    const before = `${value.slice(0, this.token.start)}@${opt.name} `;
    this.input.value = before + value.slice(caret).replace(/^ /, '');
    this.input.setSelectionRange(before.length, before.length);
    this.close();
    this.input.focus();
    this.changed();
    this.input.dispatchEvent(new Event('input', { bubbles: true }));
  }

  /** The box's keydown: true when the autocomplete took the key. */
  handleKey(e) {
    if (!this.isOpen || e.isComposing) return false;
    const n = this.options.length;
    switch (e.key) {
      case 'ArrowDown':
      case 'ArrowUp':
        this.active = (this.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
        this.show();
        break;
      case 'Enter':
      case 'Tab':
        if (e.shiftKey) return false;
        // The name is typed out in full: nothing is left to complete, so Enter does what it
        // does in the box (sends) instead of only adding a space.
        if (e.key === 'Enter' && this.options[this.active]?.name.toLowerCase() === this.token?.query) {
          this.close();
          return false;
        }
        this.pick(this.active);
        break;
      case 'Escape':
        this.close();
        break;
      default:
        return false;
    }
    e.preventDefault();
    e.stopPropagation();
    return true;
  }
}
