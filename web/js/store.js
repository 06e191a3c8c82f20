// store.js — everything the client knows, in one place: who I am, my rooms and their messages
// (ordered and de-duplicated by `seq`), my unsent messages, who is online, who is typing, what I
// have read. app.js calls its methods; views subscribe and re-render the parts named in each
// change. No DOM, no sockets.

import { DEFAULT_LIMITS } from './protocol.js';

/** A typing state the server never ended (a lost `active: false`) ends by itself after this. */
const TYPING_FALLBACK_MS = 8000;
/** Join/leave notices kept per room. */
const MAX_NOTICES = 50;
/** Messages kept in memory (and in the page) per room: past this, the oldest are let go,
 *  down to KEEP_AFTER_TRIM, unless the reader is scrolled up in that room. Scrolling up
 *  brings them back from `history`. A tab left open for days stays small. */
export const MAX_KEPT_MESSAGES = 1000;
export const KEEP_AFTER_TRIM = 800;

/**
 * What the client holds about one room.
 * @typedef {object} RoomState
 * @property {number} id
 * @property {object} info        the server's Room object, kept up to date by events
 * @property {object[]} messages  confirmed messages, ascending `seq`, each `seq` once
 * @property {number} lastSeq     the newest `seq` received (what `resume` asks after)
 * @property {boolean} loaded     the newest page of history has arrived
 * @property {boolean} [reloading] the server reset the room (too far behind to resume): its
 *                                newest page is on its way and replaces what was held
 * @property {boolean} hasOlder   the server has messages older than `messages[0]`
 * @property {boolean} loadingOlder
 * @property {object[]} pending   my messages the server has not acknowledged:
 *                                {client_id, body, ts, state: 'sending'|'failed', error}
 * @property {object[]} notices   "ana joined": {key, afterSeq, ts, text}
 * @property {Map<number, {user, until}>} typing  user id -> who is typing here, until when
 * @property {boolean} hasNewer   `messages` is a window opened at a linked message (`history`
 *                                `around`): newer messages exist on the server past its end
 * @property {object[]} newer     while `hasNewer`: live messages that came meanwhile, merged
 *                                once the window reaches the newest
 * @property {number[]} mentionSeqs  seqs of messages from others that mention me (or @room, or
 *                                any in a DM), thread replies too: the client's mention count
 * @property {object|null} counts the server's counts: {unread, mentions, readSeq, lastSeq}, as
 *                                of the marker `readSeq` and the room's `lastSeq` back then
 */

/** A message that shows in its room's timeline (not a thread reply kept to its thread). */
export function inTimeline(msg) {
  return !msg.thread || msg.also_room === true;
}

/** The notification levels of `room.notify`, and the default. */
export const NOTIFY_LEVELS = ['all', 'mentions', 'none'];
export const DEFAULT_NOTIFY = 'mentions';

export class Store {
  constructor() {
    this.listeners = new Set();
    this.dirty = new Set();
    this.flushQueued = false;
    this.noticeCounter = 0;
    this.typingTimer = 0;
    this.reset();
  }

  reset() {
    clearTimeout(this.typingTimer);
    this.me = null;
    this.limits = { ...DEFAULT_LIMITS };
    /** room id -> RoomState */
    this.rooms = new Map();
    /** user id -> User, everyone online on the server */
    this.online = new Map();
    /** lowercased name -> User: everyone this client has seen (for choosing a DM peer) */
    this.people = new Map();
    this.currentRoomId = null;
    /** the room to open first once the rooms are known (the last one open before a reload) */
    this.preferredRoomId = null;
    /** room id -> the newest seq the person has seen there */
    this.readSeq = {};
    /** this browser has read markers of this person from before (it is not a new device) */
    this.knownDevice = false;
    /** the reader is scrolled up in the open room: keep all of its messages */
    this.readingOlder = false;
    /** the open room as it was when opened: {room, readSeq, lastSeq} (the "new messages"
     *  divider goes above the first message from others after that marker) */
    this.opened = null;
    /** a message to scroll to and highlight once shown: {room, seq} */
    this.focus = null;
    /** the connection's status object ({status, attempt, retryAt}) */
    this.connection = { status: 'idle', attempt: 0, retryAt: 0 };
    this.changed('all');
  }

  // ---- subscriptions -------------------------------------------------------------------------

  /** fn(topics: Set<string>) after each batch of changes. Topics: all, session, rooms, room:ID,
   * current, presence, typing, connection, read. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed(...topics) {
    for (const t of topics) this.dirty.add(t);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  flush() {
    this.flushQueued = false;
    const topics = this.dirty;
    this.dirty = new Set();
    for (const fn of this.listeners) {
      try {
        fn(topics);
      } catch (err) {
        console.error('natter: view failed to render', err);
      }
    }
  }

  // ---- session and connection ---------------------------------------------------------------

  setMe(user) {
    this.me = user;
    this.remember(user);
    this.changed('session');
  }

  setConnection(status) {
    this.connection = status;
    this.changed('connection');
  }

  /** Take the `auth` reply: limits, who is online, my rooms (rooms I left meanwhile go). */
  applyAuth({ user, rooms, read, reset, online, limits }) {
    this.setMe(user);
    // The server's read markers (shared by all the person's devices) come first: a room it
    // has no marker for falls back to this browser's own guess in upsertRoom.
    for (const [id, seq] of Object.entries(read ?? {})) this.applyRead(Number(id), seq);
    this.limits = { ...DEFAULT_LIMITS, ...(limits ?? {}) };
    this.setOnline(online);
    const ids = new Set(rooms.map((r) => r.id));
    for (const id of [...this.rooms.keys()]) if (!ids.has(id)) this.rooms.delete(id);
    // The rooms' unread/mention counts are the server's, after ITS marker (this browser's own
    // may be ahead: then they do not apply, and the client counts).
    for (const room of rooms) this.upsertRoom(room, { countsAfter: read?.[room.id] ?? read?.[String(room.id)] ?? null });
    // Rooms too far behind to resume: what is held of them is dropped, and loaded afresh.
    for (const id of reset ?? []) this.resetRoom(id);
    // Typing states may have ended while the link was down.
    for (const room of this.rooms.values()) room.typing.clear();
    this.ensureCurrent();
    this.changed('rooms', 'presence', 'typing', 'current');
  }

  /** room id -> last seq, for `auth.resume`: only rooms whose recent history this client holds. */
  resumeMap() {
    const resume = {};
    for (const room of this.rooms.values()) {
      if (room.loaded) resume[String(room.id)] = room.lastSeq;
    }
    return resume;
  }

  // ---- rooms -----------------------------------------------------------------------------------

  room(id) {
    return this.rooms.get(id) ?? null;
  }

  get currentRoom() {
    return this.room(this.currentRoomId);
  }

  /**
   * Add or update a room. A room seen here for the first time starts unread when it is `fresh`
   * (a DM someone just opened with me) or a DM on a device I used before (it was opened while I
   * was away); otherwise (a new device, a public room) it starts as read.
   */
  upsertRoom(info, { fresh = false, countsAfter } = {}) {
    let room = this.rooms.get(info.id);
    if (room) {
      room.info = { ...room.info, ...info };
    } else {
      room = {
        id: info.id,
        info,
        messages: [],
        lastSeq: 0,
        loaded: false,
        hasOlder: false,
        loadingOlder: false,
        pending: [],
        notices: [],
        typing: new Map(),
        hasNewer: false,
        newer: [],
        mentionSeqs: [],
        counts: null,
      };
      this.rooms.set(info.id, room);
    }
    if (info.peer) this.remember(info.peer);
    if (this.readSeq[info.id] === undefined) {
      const unseen = fresh || (this.knownDevice && info.kind === 'dm');
      this.readSeq[info.id] = unseen ? 0 : info.last_seq ?? 0;
      this.changed('read');
    }
    // Counted by the server after its marker (`countsAfter`; by default the marker held here),
    // up to the room's newest seq (what a resume replays is in them).
    const marker = countsAfter === undefined ? this.readSeq[info.id] : countsAfter;
    if (Number.isInteger(info.unread) && Number.isInteger(marker)) {
      this.setCounts(room, info.unread, info.mentions, marker, Math.max(room.lastSeq, info.last_seq ?? 0));
    }
    this.changed('rooms', `room:${info.id}`);
    return room;
  }

  removeRoom(id) {
    if (!this.rooms.delete(id)) return;
    if (this.currentRoomId === id) this.currentRoomId = null;
    this.ensureCurrent();
    this.changed('rooms', 'current', `room:${id}`);
  }

  setMemberCount(id, count) {
    const room = this.rooms.get(id);
    if (!room || typeof count !== 'number') return;
    room.info = { ...room.info, member_count: count };
    this.changed('rooms', `room:${id}`);
  }

  /** Rooms in sidebar order: public rooms by name, then DMs by peer name. */
  sortedRooms(kind) {
    return [...this.rooms.values()]
      .filter((r) => r.info.kind === kind)
      .sort((a, b) => roomTitle(a.info).localeCompare(roomTitle(b.info)));
  }

  setCurrent(id) {
    if (!this.rooms.has(id) || this.currentRoomId === id) return;
    this.currentRoomId = id;
    this.noteOpened();
    this.changed('current', `room:${id}`, 'typing');
  }

  /** Remembers the open room's read marker as it is now, for the "new messages" divider. */
  noteOpened() {
    const room = this.currentRoom;
    this.opened = room
      ? { room: room.id, readSeq: this.readSeq[room.id] ?? 0, lastSeq: Math.max(room.lastSeq, room.info.last_seq ?? 0) }
      : null;
  }

  /** Scroll to message `seq` of room `roomId` (and highlight it) once it is shown. */
  setFocus(roomId, seq) {
    this.focus = seq ? { room: roomId, seq } : null;
    this.changed(`room:${roomId}`);
  }

  /** The room's notification level ("all", "mentions", "none"). */
  notifyLevel(roomId) {
    const level = this.rooms.get(roomId)?.info.notify;
    return NOTIFY_LEVELS.includes(level) ? level : DEFAULT_NOTIFY;
  }

  setNotify(roomId, level) {
    const room = this.rooms.get(roomId);
    if (!room || !NOTIFY_LEVELS.includes(level)) return;
    room.info = { ...room.info, notify: level };
    this.changed('rooms', `room:${roomId}`, 'notify');
  }

  ensureCurrent(preferred) {
    if (this.currentRoomId !== null && this.rooms.has(this.currentRoomId)) return;
    const wanted = preferred ?? this.preferredRoomId;
    if (wanted != null && this.rooms.has(wanted)) {
      this.currentRoomId = wanted;
    } else {
      const publics = this.sortedRooms('public');
      const general = publics.find((r) => r.info.name === 'general');
      this.currentRoomId = (general ?? publics[0] ?? [...this.rooms.values()][0])?.id ?? null;
    }
    this.noteOpened();
    this.changed('current');
  }

  // ---- messages --------------------------------------------------------------------------------

  /** Insert confirmed messages (any order, duplicates ignored). Returns how many were new. */
  addMessages(roomId, messages) {
    const room = this.rooms.get(roomId);
    if (!room) return 0;
    let added = 0;
    for (const msg of messages) {
      this.remember(msg.sender);
      this.noteMention(room, msg);
      if (!inTimeline(msg)) {
        // A thread reply kept to its thread: it moves the room's seq, not its timeline.
      } else if (room.hasNewer && msg.seq > (room.messages[room.messages.length - 1]?.seq ?? 0)) {
        // Past the end of a window opened at a linked message: kept until the window reaches it.
        if (insertBySeq(room.newer, msg)) added++;
      } else if (insertBySeq(room.messages, msg)) {
        added++;
      }
      if (msg.seq > room.lastSeq) room.lastSeq = msg.seq;
      if (this.me && msg.sender.id === this.me.id && msg.client_id) {
        const before = room.pending.length;
        room.pending = room.pending.filter((p) => p.client_id !== msg.client_id);
        // (its event may come before the reply: the saved outbox must forget it either way)
        if (room.pending.length !== before) this.changed('pending');
      }
      if (room.typing.delete(msg.sender.id)) this.changed('typing');
    }
    if (room.lastSeq > (room.info.last_seq ?? 0)) room.info = { ...room.info, last_seq: room.lastSeq };
    if (added) {
      this.trim(room);
      this.changed('rooms', `room:${roomId}`);
    }
    return added;
  }

  /** Counts a message from someone else that mentions me (by id, @room, or any in a DM). */
  noteMention(room, msg) {
    const me = this.me;
    if (!me || msg.sender?.id === me.id || msg.deleted) return;
    const mine = room.info.kind === 'dm' || msg.mentions_room === true
      || (Array.isArray(msg.mentions) && msg.mentions.includes(me.id));
    if (mine) insertSorted(room.mentionSeqs, msg.seq);
  }

  /** Lets the oldest messages of a long room go (see MAX_KEPT_MESSAGES). */
  trim(room) {
    if (room.messages.length <= MAX_KEPT_MESSAGES) return;
    if (room.id === this.currentRoomId && this.readingOlder) return;
    room.messages.splice(0, room.messages.length - KEEP_AFTER_TRIM);
    room.hasOlder = true;
    const oldest = room.messages[0].seq;
    room.notices = room.notices.filter((n) => n.afterSeq >= oldest);
  }

  /** The reader scrolled up in the open room (true) or is back at the newest (false). */
  setReadingOlder(yes) {
    this.readingOlder = yes;
  }

  /** The newest page of a room (the answer to `history` without `before`/`after`). */
  setLatest(roomId, { messages, has_more }) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    const oldest = messages[0]?.seq;
    if (oldest !== undefined && room.messages.length && oldest > room.lastSeq + 1) {
      // What this client held ends before the page starts: drop it rather than show a hole.
      room.messages = [];
    }
    if (room.hasNewer) {
      // A window opened at a linked message gives way to the newest page.
      room.hasNewer = false;
      room.newer = [];
      room.messages = [];
    }
    const hadMessages = room.messages.length > 0 && !room.reloading;
    this.addMessages(roomId, messages);
    if (!hadMessages) room.hasOlder = has_more;
    room.loaded = true;
    room.reloading = false;
    this.changed(`room:${roomId}`, 'rooms');
  }

  /** Forgets a room's messages (kept: its pending sends); its newest page is loaded next. */
  resetRoom(roomId) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.messages = [];
    room.newer = [];
    room.hasNewer = false;
    room.lastSeq = 0;
    room.loaded = false;
    room.hasOlder = false;
    room.reloading = true;
    this.changed(`room:${roomId}`, 'rooms');
  }

  /** The page around a linked message (`history` with `around`): it replaces what was held.
   *  With `has_newer` the room shows that window until scrolling down reaches the newest. */
  setAround(roomId, { messages, has_more, has_newer }) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    const held = [...room.messages, ...room.newer];
    room.messages = [];
    room.newer = [];
    room.hasNewer = false;
    this.addMessages(roomId, messages);
    room.hasNewer = has_newer === true;
    // What was held and is newer than the window waits with the live ones.
    if (room.hasNewer) this.addMessages(roomId, held.filter((m) => m.seq > (messages[messages.length - 1]?.seq ?? 0)));
    else this.addMessages(roomId, held.filter((m) => m.seq > (messages[0]?.seq ?? 0)));
    room.hasOlder = has_more;
    room.loaded = true;
    room.reloading = false;
    this.changed(`room:${roomId}`, 'rooms');
  }

  /** A newer page of a window (the answer to `history` with `after`). */
  addNewer(roomId, { messages, has_more }) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.hasNewer = false; // (the page extends the window: into `messages`, not `newer`)
    this.addMessages(roomId, messages);
    room.hasNewer = true;
    room.loadingNewer = false;
    if (!has_more) this.leaveWindow(room);
    this.changed(`room:${roomId}`, 'rooms');
  }

  /** The window reached the newest message (or is given up): the live ones join it. */
  leaveWindow(room) {
    room.hasNewer = false;
    const newer = room.newer;
    room.newer = [];
    for (const msg of newer) insertBySeq(room.messages, msg);
    this.changed(`room:${room.id}`);
  }

  /** Forgets a window opened at a linked message; the newest page is loaded next. */
  dropWindow(roomId) {
    const room = this.rooms.get(roomId);
    if (!room || !room.hasNewer) return;
    room.hasNewer = false;
    room.newer = [];
    room.messages = [];
    room.loaded = false;
    room.hasOlder = false;
    room.reloading = true;
    this.changed(`room:${roomId}`, 'rooms');
  }

  /** An older page (the answer to `history` with `before`). */
  addOlder(roomId, { messages, has_more }) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    this.addMessages(roomId, messages);
    room.hasOlder = has_more;
    room.loadingOlder = false;
    this.changed(`room:${roomId}`);
  }

  setLoadingOlder(roomId, loading) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.loadingOlder = loading;
    this.changed(`room:${roomId}`);
  }

  addPending(roomId, { client_id, body, ts = Date.now(), state = 'sending' }) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.pending.push({ client_id, body, ts, state, error: null });
    this.changed(`room:${roomId}`, 'pending');
  }

  updatePending(client_id, patch) {
    for (const room of this.rooms.values()) {
      const p = room.pending.find((x) => x.client_id === client_id);
      if (!p) continue;
      Object.assign(p, patch);
      this.changed(`room:${room.id}`, 'pending');
      return p;
    }
    return null;
  }

  removePending(client_id) {
    for (const room of this.rooms.values()) {
      const before = room.pending.length;
      room.pending = room.pending.filter((p) => p.client_id !== client_id);
      if (room.pending.length !== before) this.changed(`room:${room.id}`, 'pending');
    }
  }

  /** Every unacknowledged message of mine: [{room, client_id, body, ts, state}]. */
  allPending() {
    const all = [];
    for (const room of this.rooms.values()) {
      for (const p of room.pending) all.push({ room: room.id, ...p });
    }
    return all;
  }

  addNotice(roomId, text) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.notices.push({ key: `n${++this.noticeCounter}`, afterSeq: room.lastSeq, ts: Date.now(), text });
    if (room.notices.length > MAX_NOTICES) room.notices.shift();
    this.changed(`room:${roomId}`);
  }

  // ---- read markers --------------------------------------------------------------------------

  /** The person has seen the room's newest message; true if that moved the marker. */
  markRead(roomId) {
    const room = this.rooms.get(roomId);
    // In a window opened at a linked message, only what is shown has been seen.
    const seen = room?.hasNewer ? room.messages[room.messages.length - 1]?.seq ?? 0 : room?.lastSeq;
    if (!room || (this.readSeq[roomId] ?? 0) >= seen) return false;
    this.readSeq[roomId] = seen;
    room.mentionSeqs = room.mentionSeqs.filter((seq) => seq > seen);
    this.changed('read', 'rooms');
    return true;
  }

  /** A read marker from the server (this person read the room elsewhere): only forward.
   *  `counts` ({unread, mentions}, from `room.read` / `room_read`) are the server's counts
   *  after the marker, when it sent them. */
  applyRead(roomId, seq, counts = null) {
    const room = this.rooms.get(roomId);
    if (room && Number.isInteger(counts?.unread) && seq >= (this.readSeq[roomId] ?? 0)) {
      this.setCounts(room, counts.unread, counts.mentions, seq);
      this.changed('rooms');
    }
    if (!Number.isInteger(seq) || (this.readSeq[roomId] ?? -1) >= seq) return;
    this.readSeq[roomId] = seq;
    if (room) room.mentionSeqs = room.mentionSeqs.filter((s) => s > seq);
    this.changed('read', 'rooms');
  }

  /** The server's unread/mention counts after marker `readSeq`, as of what is held now. */
  setCounts(room, unread, mentions, readSeq, lastSeq = room.lastSeq) {
    room.counts = { unread, mentions: Number.isInteger(mentions) ? mentions : 0, readSeq, lastSeq };
    room.mentionSeqs = room.mentionSeqs.filter((seq) => seq > readSeq);
  }

  /** The server's counts while they still apply (the marker has not moved since), else null. */
  serverCounts(room) {
    const c = room.counts;
    return c && c.readSeq === (this.readSeq[room.id] ?? 0) ? c : null;
  }

  /** Timeline messages from others newer than what I have read (not deleted ones). */
  unread(roomId) {
    const room = this.rooms.get(roomId);
    if (!room) return 0;
    const read = this.readSeq[roomId] ?? 0;
    const base = this.serverCounts(room);
    // The server counted up to base.lastSeq; what came after is counted here.
    const after = base ? Math.max(read, base.lastSeq) : read;
    if (!base && !room.loaded) return Math.max(0, (room.info.last_seq ?? 0) - read);
    let n = base ? base.unread : 0;
    for (const list of [room.newer, room.messages]) {
      for (let i = list.length - 1; i >= 0 && list[i].seq > after; i--) {
        if (list[i].sender.id !== this.me?.id && !list[i].deleted) n++;
      }
    }
    return n;
  }

  /** Messages from others after my marker that mention me (or @room; in a DM, all of them). */
  mentions(roomId) {
    const room = this.rooms.get(roomId);
    if (!room) return 0;
    const read = this.readSeq[roomId] ?? 0;
    const base = this.serverCounts(room);
    const after = base ? Math.max(read, base.lastSeq) : read;
    let n = base ? base.mentions : 0;
    const seqs = room.mentionSeqs;
    for (let i = seqs.length - 1; i >= 0 && seqs[i] > after; i--) n++;
    return n;
  }

  // ---- people ----------------------------------------------------------------------------------

  remember(user) {
    if (user?.name) this.people.set(user.name.toLowerCase(), user);
  }

  /** Everyone online, replacing what was known (the `auth` reply, `presence_reset`). */
  setOnline(users) {
    this.online = new Map((users ?? []).map((u) => [u.id, u]));
    for (const u of users ?? []) this.remember(u);
  }

  /** `presence_reset`: this connection fell behind the server's presence changes; here is
   *  who is online now. */
  resetPresence(users) {
    this.setOnline(users);
    this.changed('presence');
  }

  setPresence(user, online) {
    this.remember(user);
    if (online) this.online.set(user.id, user);
    else this.online.delete(user.id);
    this.changed('presence');
  }

  isOnline(userId) {
    return this.online.has(userId);
  }

  /** Whether `online` is current: only while connected. While disconnected it is only the last
   *  thing heard, so the views show presence as unknown (grey) rather than green. */
  get presenceKnown() {
    return this.connection.status === 'online';
  }

  /** A person's presence as the views show it: true, false, or null (unknown: disconnected). */
  presenceOf(userId) {
    return this.presenceKnown ? this.isOnline(userId) : null;
  }

  setTyping(roomId, user, active) {
    const room = this.rooms.get(roomId);
    if (!room || user.id === this.me?.id) return;
    if (active) room.typing.set(user.id, { user, until: Date.now() + TYPING_FALLBACK_MS });
    else room.typing.delete(user.id);
    this.changed('typing');
    this.scheduleTypingSweep();
  }

  /** Names typing in a room now. */
  typingIn(roomId) {
    const room = this.rooms.get(roomId);
    if (!room) return [];
    const now = Date.now();
    return [...room.typing.values()].filter((t) => t.until > now).map((t) => t.user.name);
  }

  scheduleTypingSweep() {
    clearTimeout(this.typingTimer);
    let next = Infinity;
    for (const room of this.rooms.values()) {
      for (const t of room.typing.values()) next = Math.min(next, t.until);
    }
    if (next === Infinity) return;
    this.typingTimer = setTimeout(() => {
      const now = Date.now();
      for (const room of this.rooms.values()) {
        for (const [id, t] of room.typing) if (t.until <= now) room.typing.delete(id);
      }
      this.changed('typing');
      this.scheduleTypingSweep();
    }, Math.max(0, next - Date.now()) + 50);
  }
}

/** What a room is called in the UI: its name, or the peer's name for a DM. */
export function roomTitle(info) {
  return info.kind === 'dm' ? info.peer?.name ?? 'direct message' : info.name;
}

/** Insert number `n` into the ascending `list` unless it is there. */
function insertSorted(list, n) {
  let i = list.length;
  while (i > 0 && list[i - 1] > n) i--;
  if (list[i - 1] !== n) list.splice(i, 0, n);
}

/** Insert `msg` into `list` (ascending seq) unless its seq is there. True when inserted. */
function insertBySeq(list, msg) {
  const n = list.length;
  if (n === 0 || list[n - 1].seq < msg.seq) {
    list.push(msg);
    return true;
  }
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].seq < msg.seq) lo = mid + 1;
    else hi = mid;
  }
  if (list[lo]?.seq === msg.seq) return false;
  list.splice(lo, 0, msg);
  return true;
}
