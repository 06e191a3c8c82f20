// view/message-actions.js — the small pop-ups around a message: the action menu ("…" and
// long-press: React, Reply in thread, Copy link, Edit, Delete), the reaction picker (the
// documented set plus a box for any single emoji), the delete confirmation and the edit
// history dialog. One pop-up at a time; Escape or a click elsewhere closes it and gives the
// focus back to what opened it. Knows nothing of the server: callers pass what to do.

import { h, formatFull } from './dom.js';
import { REACTION_SET } from '../protocol.js';

let open = null; // {el, anchor, onDoc}

/** Close the open pop-up (menu or picker), focus back to its opener unless told otherwise. */
export function closePopup(refocus = true) {
  if (!open) return;
  const { el, anchor, onDoc } = open;
  open = null;
  document.removeEventListener('pointerdown', onDoc, true);
  el.remove();
  if (refocus && anchor?.isConnected) anchor.focus({ preventScroll: true });
}

function showPopup(anchor, el) {
  closePopup(false);
  el.classList.add('popup');
  // Inside an open modal dialog (the members list) the rest of the page is inert: stay in it.
  (anchor.closest('dialog[open]') ?? document.body).append(el);
  place(el, anchor);
  const onDoc = (e) => {
    if (!el.contains(e.target) && e.target !== anchor) closePopup(false);
  };
  document.addEventListener('pointerdown', onDoc, true);
  el.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      closePopup();
    }
  });
  open = { el, anchor, onDoc };
}

/** Put `el` next to `anchor`, inside the window (below it, or above when there is no room). */
function place(el, anchor) {
  let r = anchor.getBoundingClientRect();
  if (!r.width && !r.height) {
    // The opener is gone from view (a hover toolbar hidden once the pointer left it): use
    // its message instead.
    const msg = anchor.closest('.msg');
    const near = msg?.querySelector('.bubble, .msg-tombstone') ?? msg;
    if (near) r = near.getBoundingClientRect();
  }
  const w = el.offsetWidth;
  const ht = el.offsetHeight;
  const vw = document.documentElement.clientWidth;
  const vh = document.documentElement.clientHeight;
  const left = Math.max(8, Math.min(r.right - w, vw - w - 8));
  let top = r.bottom + 4;
  if (top + ht > vh - 8) top = Math.max(8, r.top - ht - 4);
  el.style.left = `${left}px`;
  el.style.top = `${top}px`;
}

/**
 * The action menu. `items`: [{label, run(anchor), danger?}]; `label` names the menu.
 */
export function openMenu(anchor, items, { label = 'Message actions' } = {}) {
  const buttons = items.map((item) => h('button', {
    type: 'button',
    class: `menu-item${item.danger ? ' danger' : ''}`,
    attrs: { role: 'menuitem' },
    on: {
      click: () => {
        closePopup(false);
        item.run(anchor);
      },
    },
  }, item.label));
  const menu = h('div', { class: 'menu', attrs: { role: 'menu', 'aria-label': label } }, buttons);
  menu.addEventListener('keydown', (e) => {
    const i = buttons.indexOf(document.activeElement);
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const n = buttons.length;
      buttons[(i + (e.key === 'ArrowDown' ? 1 : n - 1) + n) % n].focus();
    }
  });
  showPopup(anchor, menu);
  buttons[0]?.focus();
}

/** The reaction picker: `onPick(emoji)` with one of the set or what was typed. */
export function openReactionPicker(anchor, onPick) {
  const pick = (emoji) => {
    closePopup();
    onPick(emoji);
  };
  const input = h('input', {
    type: 'text',
    class: 'picker-input',
    maxLength: 32,
    placeholder: 'Any emoji',
    autocomplete: 'off',
    attrs: { 'aria-label': 'Any other emoji' },
  });
  const picker = h('div', { class: 'reaction-picker', attrs: { role: 'dialog', 'aria-label': 'Add a reaction' } },
    h('div', { class: 'picker-set' },
      REACTION_SET.map((emoji) => h('button', {
        type: 'button',
        class: 'picker-emoji',
        title: emoji,
        attrs: { 'aria-label': `React with ${emoji}` },
        on: { click: () => pick(emoji) },
      }, emoji))),
    h('form', {
      class: 'picker-form',
      on: {
        submit: (e) => {
          e.preventDefault();
          const emoji = input.value.trim();
          if (emoji) pick(emoji);
        },
      },
    }, input, h('button', { type: 'submit', class: 'btn btn-sm btn-ghost' }, 'Add')));
  showPopup(anchor, picker);
  picker.querySelector('.picker-emoji')?.focus();
}

/** Ask before deleting; resolves true when confirmed. */
export function confirmDelete(text) {
  const dlg = document.getElementById('dlg-delete');
  document.getElementById('delete-preview').textContent = text;
  return new Promise((resolve) => {
    const done = () => {
      dlg.removeEventListener('close', done);
      resolve(dlg.returnValue === 'delete');
    };
    dlg.returnValue = '';
    dlg.addEventListener('close', done);
    dlg.showModal();
    dlg.querySelector('[value="cancel"]')?.focus();
  });
}

/** The edit history dialog: `load()` resolves with `versions` (oldest first) or rejects. */
export async function showEditHistory(load, describeError) {
  const dlg = document.getElementById('dlg-edits');
  const list = document.getElementById('edits-list');
  const status = document.getElementById('edits-status');
  list.replaceChildren();
  status.textContent = 'Loading…';
  if (!dlg.open) dlg.showModal();
  let versions;
  try {
    versions = await load();
  } catch (err) {
    status.textContent = describeError(err);
    return;
  }
  status.textContent = `${versions.length} ${versions.length === 1 ? 'version' : 'versions'}, oldest first`;
  list.replaceChildren(...versions.map((v, i) => h('li', { class: 'edit-version' },
    h('div', { class: 'edit-version-head' },
      h('span', { class: 'edit-version-label' }, i === 0 ? 'Original' : i === versions.length - 1 ? 'Current' : `Edit ${i}`),
      h('time', { dateTime: new Date(v.ts).toISOString() }, formatFull(v.ts))),
    h('p', { class: 'edit-version-body' }, v.body))));
}

/** Wire the two dialogs' buttons (once, at start). */
export function initMessageDialogs() {
  for (const id of ['dlg-delete', 'dlg-edits']) {
    const dlg = document.getElementById(id);
    dlg.addEventListener('click', (e) => {
      if (e.target === dlg) dlg.close();
      const btn = e.target.closest('[data-close]');
      if (btn) dlg.close(btn.value || '');
    });
  }
}
