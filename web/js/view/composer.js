// view/composer.js — the message box: Enter sends, Shift+Enter breaks the line, blank text
// cannot be sent, a counter shows near the length limit, the box grows with its text, a
// draft is kept per room, `@` offers the room's members (mentions.js), and Up in an empty box
// edits my last message. Attachments (the paperclip's file picker, files dropped on the room,
// files pasted into the box) upload at once, each with its name, size, a progress bar and a
// cancel button, per room; Send waits until they are all uploaded. Tells app.js about sends and
// typing; talks to the server only through files.js's uploads. In an archived room the box
// gives way to a read-only notice; while I am muted it is disabled, saying until when.

import { charCount, errorText, isBlank } from '../protocol.js';
import { isDirect } from '../store.js';
import { MentionPicker } from './mentions.js';
import { h, icon, formatTime } from './dom.js';
import { humanSize, uploadFile } from '../files.js';

/** What went wrong with an upload: the kind, then the server's own words. */
const UPLOAD_ERRORS = {
  file_too_large: 'Too large',
  quota_exceeded: 'Over your upload quota',
  invalid_image: 'Not an image this server can read',
  unauthenticated: 'Signed out',
};

function uploadErrorText(err) {
  const kind = UPLOAD_ERRORS[err.code];
  return kind ? `${kind}: ${err.message}` : errorText(err.code, err.message);
}

/** The most files one message may carry (`message.send` `files`). */
export const MAX_FILES = 10;

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
    this.fileList = $('composer-files');
    this.fileInput = $('composer-file-input');
    this.dropOverlay = $('drop-overlay');
    this.notice = $('composer-notice');
    /** re-renders when a mute ends */
    this.muteTimer = 0;
    this.mutedUntil = 0;
    /** room id -> [attachment]: {key, name, size, state: 'uploading'|'done'|'error', error,
     *  info (the FileInfo once uploaded), abort, el} */
    this.attachments = new Map();
    this.nextKey = 1;
    $('composer-attach').addEventListener('click', () => this.fileInput.click());
    this.fileInput.addEventListener('change', () => {
      this.attach([...this.fileInput.files]);
      this.fileInput.value = '';
    });
    this.setUpDrop($('room'));
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
    // Pasting an image (a screenshot) or files attaches them; pasting text stays text.
    this.input.addEventListener('paste', (e) => {
      const files = [...(e.clipboardData?.files ?? [])];
      if (!files.length) return;
      e.preventDefault();
      this.attach(files);
    });
  }

  /** Files dragged over the room show the overlay; dropped, they are attached. */
  setUpDrop(area) {
    const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
    let depth = 0;
    const hide = () => {
      depth = 0;
      this.dropOverlay.hidden = true;
    };
    area.addEventListener('dragenter', (e) => {
      if (!hasFiles(e) || this.form.hidden) return;
      e.preventDefault();
      depth += 1;
      this.dropOverlay.hidden = false;
    });
    area.addEventListener('dragover', (e) => {
      if (!hasFiles(e) || this.form.hidden) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
      this.dropOverlay.hidden = false;
    });
    area.addEventListener('dragleave', (e) => {
      if (!hasFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0 || !area.contains(e.relatedTarget)) hide();
    });
    area.addEventListener('drop', (e) => {
      const files = [...(e.dataTransfer?.files ?? [])];
      hide();
      if (!files.length || this.form.hidden) return;
      e.preventDefault();
      this.attach(files);
    });
  }

  /** This room's attachments (an empty list when none). */
  current() {
    return this.roomId === null ? [] : this.attachments.get(this.roomId) ?? [];
  }

  /** Start uploading `files` for the open room. */
  attach(files) {
    if (this.roomId === null || !files.length) return;
    const roomId = this.roomId;
    const list = this.attachments.get(roomId) ?? [];
    this.attachments.set(roomId, list);
    const maxBytes = this.store?.limits?.max_upload_bytes;
    for (const file of files) {
      const a = {
        key: this.nextKey++, name: file.name || 'file', size: file.size, state: 'uploading', error: null, info: null, abort: null, el: null,
      };
      list.push(a);
      if (list.length > MAX_FILES) {
        this.fail(a, `At most ${MAX_FILES} files go with one message.`);
        continue;
      }
      if (maxBytes && file.size > maxBytes) {
        this.fail(a, `The file is too large: this server takes files up to ${humanSize(maxBytes)}.`);
        continue;
      }
      const up = uploadFile(file, (loaded, total) => this.progress(a, loaded, total));
      a.abort = up.abort;
      up.promise.then((info) => {
        a.state = 'done';
        a.info = info;
        a.abort = null;
        this.renderFiles();
      }, (err) => {
        a.abort = null;
        if (err.code === 'aborted') return;
        this.fail(a, uploadErrorText(err));
      });
    }
    this.renderFiles();
    this.input.focus({ preventScroll: true });
  }

  fail(a, text) {
    a.state = 'error';
    a.error = text;
    this.renderFiles();
  }

  progress(a, loaded, total) {
    const bar = a.el?.querySelector('progress');
    if (!bar) return;
    bar.max = total || a.size || 1;
    bar.value = Math.min(loaded, bar.max);
    bar.setAttribute('aria-valuetext', `${Math.round((100 * bar.value) / bar.max)}%`);
  }

  /** Take an attachment away (aborting its upload). */
  remove(a) {
    a.abort?.();
    for (const [roomId, list] of this.attachments) {
      const i = list.indexOf(a);
      if (i < 0) continue;
      list.splice(i, 1);
      if (!list.length) this.attachments.delete(roomId);
    }
    this.renderFiles();
    this.input.focus({ preventScroll: true });
  }

  /** Abort every upload and forget every attachment (sign-out). */
  clearAttachments() {
    for (const list of this.attachments.values()) for (const a of list) a.abort?.();
    this.attachments.clear();
    this.renderFiles();
  }

  /** Draw the open room's attachments above the box. */
  renderFiles() {
    const list = this.current();
    this.fileList.hidden = !list.length;
    this.fileList.replaceChildren(...list.map((a) => {
      if (!a.el || a.el.dataset.state !== a.state) a.el = this.buildAttachment(a);
      return a.el;
    }));
    this.update();
  }

  buildAttachment(a) {
    const label = a.state === 'uploading' ? 'Cancel the upload of' : 'Remove';
    return h('li', { class: `attachment ${a.state}`, dataset: { state: a.state, key: String(a.key) } },
      icon(a.state === 'error' ? 'alert' : 'file', 16),
      h('span', { class: 'attachment-text' },
        h('span', { class: 'attachment-name' }, a.name),
        h('span', { class: 'attachment-size' }, humanSize(a.size)),
        a.state === 'uploading'
          ? h('progress', { class: 'attachment-progress', max: a.size || 1, value: 0, attrs: { 'aria-label': `Uploading ${a.name}` } })
          : null,
        a.state === 'error' ? h('span', { class: 'attachment-error', attrs: { role: 'alert' } }, a.error) : null),
      h('button', {
        type: 'button',
        class: 'icon-btn icon-btn-sm attachment-remove',
        title: a.state === 'uploading' ? 'Cancel' : 'Remove',
        attrs: { 'aria-label': `${label} ${a.name}` },
        on: { click: () => this.remove(a) },
      }, icon('close', 14)));
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
      this.renderFiles();
    }
    this.max = store.limits.max_message_chars;
    const archived = room?.info.archived === true;
    this.form.hidden = !room || archived;
    this.renderRestriction(store, room, archived);
    if (room) {
      const where = isDirect(room.info) ? store.titleOf(room.info) : `#${room.info.name}`;
      this.input.placeholder = `Message ${where}`;
      this.input.setAttribute('aria-label', `Message ${where}`);
    }
    this.update();
  }

  /** Archived: a read-only notice instead of the box. Muted: the box disabled until the mute
   *  ends (then it comes back by itself). */
  renderRestriction(store, room, archived) {
    clearTimeout(this.muteTimer);
    const until = room && !archived ? store.mutedUntil(room.id) : 0;
    this.mutedUntil = until;
    let text = '';
    if (archived) text = 'This room is archived: it is read-only.';
    else if (until) text = `You are muted until ${formatTime(until)}.`;
    this.notice.hidden = !text;
    this.notice.textContent = text;
    this.notice.classList.toggle('muted', Boolean(until));
    this.input.disabled = Boolean(until);
    this.form.classList.toggle('muted', Boolean(until));
    if (until) {
      // (a timer of at most a day; longer mutes are checked again then)
      this.muteTimer = setTimeout(() => this.render(store, new Set()), Math.min(until - Date.now() + 50, 86400000));
    }
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
    const files = this.current();
    const waiting = files.some((a) => a.state === 'uploading');
    const failed = files.some((a) => a.state === 'error');
    this.sendBtn.disabled = (isBlank(text) && !files.length) || remaining < 0 || waiting || failed || this.mutedUntil > Date.now();
    this.sendBtn.title = waiting ? 'Waiting for the uploads' : failed ? 'Remove the files that failed first' : 'Send (Enter)';
    this.input.setAttribute('aria-invalid', String(remaining < 0));
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  submit() {
    if (this.mutedUntil > Date.now()) return;
    const body = this.input.value;
    const files = this.current();
    if ((isBlank(body) && !files.length) || charCount(body) > this.max) return;
    if (files.some((a) => a.state !== 'done')) return;
    if (!this.actions.send(isBlank(body) ? '' : body, files.map((a) => a.info))) return;
    this.attachments.delete(this.roomId);
    this.renderFiles();
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
