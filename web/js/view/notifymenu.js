// view/notifymenu.js — the bell in the room header: the open room's notification level (All,
// Mentions, Nothing), the notification sound on/off, and "Enable desktop notifications"; and the
// one-time prompt above the composer that asks for that permission after one's first message.
// Reads the store and `attention` (notify.js); acts through `actions.setNotify`.

const LEVEL_TEXT = { all: 'all messages', mentions: 'mentions', none: 'nothing' };

export class NotifyMenuView {
  /**
   * @param {object} actions setNotify(roomId, level)
   * @param {import('../notify.js').Attention} attention
   */
  constructor(actions, attention) {
    this.actions = actions;
    this.attention = attention;
    const $ = (id) => document.getElementById(id);
    this.button = $('btn-notify');
    this.menu = $('notify-menu');
    this.offMark = $('notify-off');
    this.sound = $('notify-sound');
    this.enable = $('notify-enable');
    this.blocked = $('notify-blocked');
    this.prompt = $('notify-prompt');
    this.roomId = null;
    this.level = 'mentions';

    this.button.addEventListener('click', () => (this.menu.hidden ? this.open() : this.close()));
    for (const item of this.menu.querySelectorAll('[data-level]')) {
      item.addEventListener('click', () => {
        if (this.roomId !== null) actions.setNotify(this.roomId, item.dataset.level);
        this.close(true);
      });
    }
    this.sound.addEventListener('click', () => {
      attention.setSound(!attention.soundOn);
      this.renderMenu();
    });
    this.enable.addEventListener('click', () => this.askPermission());
    this.menu.addEventListener('keydown', (e) => this.onMenuKey(e));
    document.addEventListener('pointerdown', (e) => {
      if (!this.menu.hidden && !this.menu.contains(e.target) && !this.button.contains(e.target)) this.close();
    });
    $('notify-prompt-yes').addEventListener('click', () => {
      this.hidePrompt();
      this.askPermission();
    });
    $('notify-prompt-no').addEventListener('click', () => this.hidePrompt());
  }

  render(store, topics) {
    const room = store.currentRoom;
    if (!(topics.has('all') || topics.has('current') || topics.has('rooms') || topics.has('notify'))) return;
    this.roomId = room?.id ?? null;
    this.button.hidden = !room;
    if (!room) {
      this.close();
      return;
    }
    this.level = store.notifyLevel(room.id);
    this.offMark.hidden = this.level !== 'none';
    this.button.classList.toggle('muted', this.level === 'none');
    this.button.setAttribute('aria-label', `Notifications: ${LEVEL_TEXT[this.level]}`);
    this.button.title = `Notifications: ${LEVEL_TEXT[this.level]}`;
    this.renderMenu();
  }

  renderMenu() {
    for (const item of this.menu.querySelectorAll('[data-level]')) {
      item.setAttribute('aria-checked', String(item.dataset.level === this.level));
    }
    this.sound.setAttribute('aria-checked', String(this.attention.soundOn));
    const permission = this.attention.permission;
    this.enable.hidden = permission !== 'default';
    this.blocked.hidden = permission !== 'denied';
  }

  open() {
    this.renderMenu();
    this.menu.hidden = false;
    this.button.setAttribute('aria-expanded', 'true');
    (this.menu.querySelector('[aria-checked="true"][data-level]') ?? this.menu.querySelector('.menu-item')).focus();
  }

  close(returnFocus = false) {
    if (this.menu.hidden) return;
    this.menu.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
    if (returnFocus) this.button.focus();
  }

  onMenuKey(e) {
    const items = [...this.menu.querySelectorAll('.menu-item:not([hidden])')];
    const at = items.indexOf(document.activeElement);
    if (e.key === 'Escape') {
      e.preventDefault();
      this.close(true);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const step = e.key === 'ArrowDown' ? 1 : -1;
      items[(at + step + items.length) % items.length]?.focus();
    } else if (e.key === 'Tab') {
      this.close();
    }
  }

  /** After the person's first message: offer desktop notifications, once. */
  offerPrompt() {
    if (this.attention.promptWanted) this.prompt.hidden = false;
  }

  hidePrompt() {
    this.prompt.hidden = true;
    this.attention.promptAnswered();
  }

  async askPermission() {
    this.attention.promptAnswered();
    await this.attention.requestPermission();
    this.renderMenu();
  }
}
