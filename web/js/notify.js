// notify.js — getting the person's attention while the tab is not looked at: desktop
// notifications (the Notification API) for DMs and mentions (or every message, per the room's
// level), a short tone made with WebAudio (no audio file; can be turned off), and the unread
// count drawn on the favicon. Decides from the store what deserves a notification; knows
// nothing of the views. The sound setting and "prompt answered" live in localStorage.

import { inTimeline, isDirect, roomTitle } from './store.js';

const SOUND_KEY = 'natter.sound';
const PROMPT_KEY = 'natter.notifyPrompt';
/** At most one tone per this long, however many messages arrive. */
const SOUND_GAP_MS = 2000;
/** Text shown in a notification is cut to this many characters. */
const BODY_CHARS = 160;
const ICON_PATH = '/favicon.svg';

export class Attention {
  /** @param {{open(roomId: number, seq: number|null, thread: number|null): void}} actions what a click on a notification does */
  constructor(actions) {
    this.actions = actions;
    this.badgeCount = 0;
    this.iconImage = null;
    this.audio = null;
    this.lastSoundAt = 0;
    // Browsers only let a page make sound after the person has interacted with it.
    const unlock = () => {
      this.unlocked = true;
      if (this.audio?.state === 'suspended') this.audio.resume().catch(() => {});
    };
    this.unlocked = false;
    document.addEventListener('pointerdown', unlock, { capture: true });
    document.addEventListener('keydown', unlock, { capture: true });
  }

  // ---- settings ------------------------------------------------------------------------------

  /** 'granted' | 'denied' | 'default' | 'unsupported' */
  get permission() {
    return typeof window.Notification === 'function' ? window.Notification.permission : 'unsupported';
  }

  async requestPermission() {
    if (this.permission !== 'default') return this.permission;
    try {
      return await window.Notification.requestPermission();
    } catch {
      return this.permission;
    }
  }

  get soundOn() {
    return readLocal(SOUND_KEY) !== 'off';
  }

  setSound(on) {
    writeLocal(SOUND_KEY, on ? 'on' : 'off');
  }

  /** Whether to offer "Enable desktop notifications" (once: until answered or dismissed). */
  get promptWanted() {
    return this.permission === 'default' && readLocal(PROMPT_KEY) !== 'done';
  }

  promptAnswered() {
    writeLocal(PROMPT_KEY, 'done');
  }

  // ---- messages ------------------------------------------------------------------------------

  /** Whether a live message deserves attention, given the room's level; why, or null. */
  reason(store, msg) {
    const me = store.me;
    const room = store.room(msg.room);
    if (!me || !room || msg.sender?.id === me.id || msg.deleted) return null;
    if (msg.seq <= (store.readSeq[room.id] ?? 0)) return null; // already read (a replay)
    const level = store.notifyLevel(room.id);
    if (level === 'none') return null;
    if (isDirect(room.info)) return 'dm';
    if (store.mentionsMe(msg, room)) return 'mention';
    if (level === 'all' && inTimeline(msg)) return 'message';
    return null;
  }

  /** A `message` event arrived: notify (and sound) when the tab is hidden and it deserves it. */
  consider(store, msg) {
    if (!document.hidden) return;
    const why = this.reason(store, msg);
    if (!why) return;
    this.playSound();
    if (this.permission !== 'granted') return;
    const room = store.room(msg.room);
    const where = room.info.kind === 'dm' ? null : room.info.kind === 'group' ? store.titleOf(room.info) : `#${roomTitle(room.info)}`;
    const who = store.displayName(msg.sender);
    const title = where === null ? who : `${who} in ${where}`;
    const n = msg.files?.length ?? 0;
    const text = msg.body || (n ? `sent ${n === 1 ? 'a file' : `${n} files`}` : '');
    const body = [...text].slice(0, BODY_CHARS).join('');
    // A thread reply opens at its thread's first message, with the thread open.
    const target = inTimeline(msg) ? msg.seq : msg.thread;
    const thread = msg.thread ?? null;
    let note;
    try {
      note = new window.Notification(title, {
        body,
        tag: `natter-room-${room.id}`,
        icon: ICON_PATH,
        data: { room: room.id, seq: target },
      });
    } catch (err) {
      console.warn('natter: notification failed', err);
      return;
    }
    note.onclick = () => {
      window.focus();
      note.close?.();
      this.actions.open(room.id, target, thread);
    };
  }

  // ---- sound ---------------------------------------------------------------------------------

  /** A short two-note tone, when sound is on and the page may make sound. */
  playSound() {
    if (!this.soundOn || !this.unlocked) return;
    const now = Date.now();
    if (now - this.lastSoundAt < SOUND_GAP_MS) return;
    this.lastSoundAt = now;
    const Ctx = window.AudioContext ?? window.webkitAudioContext;
    if (!Ctx) return;
    try {
      this.audio ??= new Ctx();
      const ctx = this.audio;
      if (ctx.state === 'suspended') ctx.resume().catch(() => {});
      const t = ctx.currentTime;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.setValueAtTime(880, t);
      osc.frequency.setValueAtTime(1320, t + 0.09);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.12, t + 0.015);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.28);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 0.3);
    } catch {
      // no audio device: silence is fine
    }
  }

  // ---- favicon -------------------------------------------------------------------------------

  /** Draws `count` on the favicon (a data: URL of a canvas), or restores the plain one. */
  setBadge(count) {
    if (count === this.badgeCount) return;
    this.badgeCount = count;
    const link = document.querySelector('link[rel="icon"]');
    if (!link) return;
    if (!count) {
      link.type = 'image/svg+xml';
      link.href = ICON_PATH;
      return;
    }
    this.loadIcon().then((img) => {
      if (this.badgeCount !== count) return; // a newer count is being drawn
      const size = 64;
      const canvas = document.createElement('canvas');
      canvas.width = size;
      canvas.height = size;
      const g = canvas.getContext('2d');
      if (!g) return;
      if (img) g.drawImage(img, 0, 0, size, size);
      const text = count > 99 ? '99+' : String(count);
      const r = text.length > 1 ? 22 : 18;
      g.fillStyle = '#dc2626';
      g.beginPath();
      g.arc(size - r, r, r, 0, Math.PI * 2);
      g.fill();
      g.fillStyle = '#ffffff';
      g.font = `bold ${text.length > 2 ? 18 : 26}px system-ui, sans-serif`;
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText(text, size - r, r + 1);
      link.type = 'image/png';
      link.href = canvas.toDataURL('image/png');
    });
  }

  /** The favicon as an image (once); null when it cannot be loaded. */
  loadIcon() {
    this.iconImage ??= new Promise((resolve) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => resolve(null);
      img.src = ICON_PATH;
    });
    return this.iconImage;
  }
}

function readLocal(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeLocal(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // storage disabled: the setting lasts for this page only
  }
}
