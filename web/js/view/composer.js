// view/composer.js — the message box: Enter sends, Shift+Enter breaks the line, blank text
// cannot be sent, a counter shows near the length limit, the box grows with its text, a
// draft is kept per room, `@` offers the room's members (mentions.js), and Up in an empty box
// edits my last message. Tells app.js about sends and typing; never talks to the server.

import { charCount, isBlank } from '../protocol.js';
import { roomTitle } from '../store.js';
import { MentionPicker } from './mentions.js';

/** The counter shows once fewer than this many characters are left. */
const COUNTER_FROM_REMAINING = 500;
const MAX_HEIGHT_PX = 180;

export class ComposerView {
  /** @param {object} actions send(body) -> boolean, typing(active), editLast() -> boolean,
   *                          members(roomId) -> Promise<[{user, online}]> */
  constructor(actions) {
    this.actions = actions;
    const $ = (id) => document.getElementById(id);
    this.form = $('composer');
    this.input = $('composer-input');
    this.counter = $('composer-counter');
    this.sendBtn = $('composer-send');
    this.roomId = null;
    this.max = 4000;
    /** room id -> unsent text */
    this.drafts = new Map();

    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.store = null;
    this.mentions = new MentionPicker(this.input, {
      members: () => (this.roomId === null ? Promise.resolve([]) : actions.members(this.roomId)),
      me: () => this.store?.me,
      changed: () => this.update(),
    });
    this.input.addEventListener('keydown', (e) => {
      if (this.mentions.handleKey(e)) return;
      const plain = !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey;
      if (e.key === 'Enter' && !e.shiftKey && plain) {
        e.preventDefault();
        this.submit();
      } else if (e.key === 'ArrowUp' && !e.shiftKey && plain && this.input.value === '') {
        if (this.actions.editLast()) e.preventDefault();
      }
    });
    this.input.addEventListener('input', () => {
      this.update();
      this.actions.typing(!isBlank(this.input.value));
    });
    this.input.addEventListener('blur', () => this.actions.typing(false));
  }

  render(store, topics) {
    this.store = store;
    const room = store.currentRoom;
    const id = room?.id ?? null;
    if (id !== this.roomId || topics.has('all')) {
      if (this.roomId !== null) this.drafts.set(this.roomId, this.input.value);
      this.roomId = id;
      this.mentions.close();
      this.input.value = this.drafts.get(id) ?? '';
      this.update();
    }
    this.max = store.limits.max_message_chars;
    this.form.hidden = !room;
    if (room) {
      const where = room.info.kind === 'dm' ? roomTitle(room.info) : `#${room.info.name}`;
      this.input.placeholder = `Message ${where}`;
      this.input.setAttribute('aria-label', `Message ${where}`);
    }
    this.update();
  }

  /** Refresh the counter, the send button and the height. */
  update() {
    const text = this.input.value;
    const count = charCount(text);
    const remaining = this.max - count;
    const near = remaining < COUNTER_FROM_REMAINING;
    this.counter.hidden = !near;
    this.counter.textContent = near ? `${count.toLocaleString()} / ${this.max.toLocaleString()}` : '';
    this.counter.classList.toggle('over', remaining < 0);
    this.counter.setAttribute('aria-label', remaining < 0
      ? `${-remaining} characters over the limit`
      : `${remaining} characters left`);
    this.sendBtn.disabled = isBlank(text) || remaining < 0;
    this.input.setAttribute('aria-invalid', String(remaining < 0));
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  submit() {
    const body = this.input.value;
    if (isBlank(body) || charCount(body) > this.max) return;
    if (!this.actions.send(body)) return;
    this.input.value = '';
    this.mentions.close();
    this.drafts.delete(this.roomId);
    this.update();
    this.input.focus();
  }

  focus() {
    if (!this.form.hidden) this.input.focus({ preventScroll: true });
  }
}
