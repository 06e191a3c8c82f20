// store.js — everything the client knows, in one place: who I am, my rooms and their messages
// (ordered and de-duplicated by `seq`, with edits, deletes, reactions and reply counts applied
// from the room's stream), the open thread, my unsent messages, who is online, who is typing,
// what I have read and where I am mentioned, and people's profiles (display name, status,
// avatar, last seen) as far as `room.members` and `profile.get` have told. app.js calls its
// methods; views subscribe and re-render the parts named in each change. No DOM, no sockets.

import { ADMIN_RANK, DEFAULT_LIMITS, ROLE_RANK, ROOM_EVENT_OPS } from './protocol.js';

/** A typing state the server never ended (a lost `active: false`) ends by itself after this. */
const TYPING_FALLBACK_MS = 8000;
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
 * @property {boolean} hasOlder   the server has entries older than `oldestLoaded`
 * @property {number|null} oldestLoaded  the oldest `seq` the timeline holds from a history page
 *                                (a message or a room event): the next older page ends before it
 * @property {number|null} windowEnd  in a window opened at a linked message: the newest `seq` its
 *                                pages brought (the next newer page starts after it)
 * @property {boolean} loadingOlder
 * @property {object[]} pending   my messages the server has not acknowledged:
 *                                {client_id, body, ts, state: 'sending'|'failed', error,
 *                                files: [FileInfo]}
 * @property {object[]} notices   room events as timeline lines ("bob joined"): {key, afterSeq, ts, event}
 * @property {Map<number, {user, until}>} typing  user id -> who is typing here, until when
  * @property {boolean} hasNewer   `messages` is a window opened at a linked message (`history`
  *                                `around`): newer messages exist on the server past its end
  * @property {object[]} newer     while `hasNewer`: live messages that came meanwhile, merged
  *                                once the window reaches the newest
  * @property {number[]} mentionSeqs  ascending seqs of messages and thread replies from others,
  *                                after my read marker, that mention me (`mentions`, `@room`; in
  *                                a DM, all): the client's own mention count (a delete takes one out)
  * @property {object|null} counts the server's counts: {unread, mentions, readSeq, lastSeq}, as
  *                                of the marker `readSeq` and the room's `lastSeq` back then
  * @property {number} mutedUntil  I am muted here until then (ms since the epoch; 0: not muted),
  *                                from my room's `muted_until`, a `mute` room event or a
  *                                `muted` error
  * @property {Map<number, string>} roles  user id -> role, from `room.members` and the room
  *                                events seen since: what the member menu is offered on
  */

/**
 * The open thread panel.
 * @typedef {object} ThreadState
 * @property {number} roomId
 * @property {number} parentSeq
 * @property {object|null} parent  the thread's first message (from `history`'s `parent`)
 * @property {object[]} replies    ascending `seq`, each once
 * @property {boolean} loaded
 * @property {boolean} hasOlder
 * @property {boolean} loadingOlder
 * @property {string|null} error   why the thread could not be loaded
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
    this.typingTimer = 0;
    this.reset();
  }

  reset() {
    clearTimeout(this.typingTimer);
    this.me = null;
    this.limits = { ...DEFAULT_LIMITS, ...(this.serverConfig ?? {}) };
    /** room id -> RoomState */
    this.rooms = new Map();
    /** user id -> User, everyone online on the server */
    this.online = new Map();
    /** lowercased name -> User: everyone this client has seen (for choosing a DM peer) */
    this.people = new Map();
    /** user id -> Member (docs/protocol.md `profile.get`): the newest profile heard of each
     *  person; there is no event for a change, so it is as of the last load */
    this.profiles = new Map();
    this.currentRoomId = null;
    /** the room to open first once the rooms are known (the last one open before a reload) */
    this.preferredRoomId = null;
    /** room id -> the newest seq the person has seen there */
    this.readSeq = {};
    /** this browser has read markers of this person from before (it is not a new device) */
    this.knownDevice = false;
    /** the reader is scrolled up in the open room: keep all of its messages */
    this.readingOlder = false;
    /** @type {ThreadState|null} the thread open in the side panel */
    this.thread = null;
    /** the message being edited in place: {roomId, seq, where: 'room'|'thread'|'parent', draft} */
    this.editing = null;
    /** the open room as it was when opened: {room, readSeq, lastSeq} (the "new messages"
     *  divider goes above the first message from others after that marker) */
    this.opened = null;
    /** a message to scroll to and highlight once shown: {room, seq} */
    this.focus = null;
    /** the connection's status object ({status, attempt, retryAt}) */
    this.connection = { status: 'idle', attempt: 0, retryAt: 0 };
    /** room id -> my pending invitation there: {room, name, by, ts} */
    this.invites = new Map();
    /** I am a server admin (learnt from `admin.audit` answering, not `forbidden`) */
    this.isAdmin = false;
    /** the sidebar shows archived rooms too */
    this.showArchived = false;
    this.changed('all');
  }

  // ---- subscriptions -------------------------------------------------------------------------

  /** fn(topics: Set<string>) after each batch of changes. Topics: all, session, rooms, room:ID,
   * current, presence, typing, connection, read, thread, pending. */
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

  /** `GET /api/config` (limits, the largest upload): kept across sign-outs, under `auth`'s own. */
  applyServerConfig(config) {
    this.serverConfig = config && typeof config === 'object' ? { ...config } : {};
    this.limits = { ...this.limits, ...this.serverConfig };
  }

  /** Take the `auth` reply: limits, who is online, my rooms (rooms I left meanwhile go). */
  applyAuth({ user, rooms, read, reset, online, limits }) {
    this.setMe(user);
    // The server's read markers (shared by all the person's devices) come first: a room it
    // has no marker for falls back to this browser's own guess in upsertRoom.
    for (const [id, seq] of Object.entries(read ?? {})) this.applyRead(Number(id), seq);
    this.limits = { ...DEFAULT_LIMITS, ...(this.serverConfig ?? {}), ...(limits ?? {}) };
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
      // A Room object is whole: a setting it leaves out is empty now (section 3).
      room.info = { ...room.info, topic: undefined, description: undefined, archived: undefined, ...info };
    } else {
      room = {
        id: info.id,
        info,
        messages: [],
        lastSeq: 0,
        loaded: false,
        hasOlder: false,
        oldestLoaded: null,
        windowEnd: null,
        loadingOlder: false,
        pending: [],
        notices: [],
        typing: new Map(),
        hasNewer: false,
        newer: [],
        mentionSeqs: [],
        counts: null,
        mutedUntil: 0,
        roles: new Map(),
      };
      this.rooms.set(info.id, room);
    }
    if (info.peer) this.remember(info.peer);
    for (const peer of info.peers ?? []) this.remember(peer);
    // My own view of the room says whether I am muted there (also right after a reload).
    if (info.muted_until !== undefined) room.mutedUntil = info.muted_until ?? 0;
    else if (Object.hasOwn(info, 'role')) room.mutedUntil = 0;
    if (this.readSeq[info.id] === undefined) {
      const unseen = fresh || (this.knownDevice && isDirect(info));
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
    if (this.thread?.roomId === id) this.closeThread();
    this.ensureCurrent();
    this.changed('rooms', 'current', `room:${id}`);
  }

  /** Someone left a group DM: it is named by the people still in it. */
  removePeer(id, userId) {
    const room = this.rooms.get(id);
    if (!room || room.info.kind !== 'group' || !room.info.peers?.some((p) => p.id === userId)) return;
    room.info = { ...room.info, peers: room.info.peers.filter((p) => p.id !== userId) };
    this.changed('rooms', 'current', `room:${id}`);
  }

  setMemberCount(id, count) {
    const room = this.rooms.get(id);
    if (!room || typeof count !== 'number') return;
    room.info = { ...room.info, member_count: count };
    this.changed('rooms', `room:${id}`);
  }

  /** Rooms of a kind (or of several: an array) by name (DMs by peer name). */
  sortedRooms(kind) {
    const kinds = Array.isArray(kind) ? kind : [kind];
    return [...this.rooms.values()]
      .filter((r) => kinds.includes(r.info.kind))
      .sort((a, b) => this.titleOf(a.info).localeCompare(this.titleOf(b.info)));
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
      const publics = this.sortedRooms(['public', 'private']).filter((r) => !r.info.archived);
      const general = publics.find((r) => r.info.name === 'general');
      this.currentRoomId = (general ?? publics[0] ?? [...this.rooms.values()][0])?.id ?? null;
    }
    this.noteOpened();
    this.changed('current');
  }

  // ---- messages --------------------------------------------------------------------------------

  /**
   * Take stream entries of a room (any order, duplicates ignored): events as they come, replays
   * after `resume`, history pages, send replies. Every entry advances `lastSeq` (what `resume`
   * asks after); a message of the timeline is inserted by `seq`; a thread reply sent only to
   * its thread goes to the open thread (if it is that one) and counts on its first message; a
   * change (`message_edited`, `message_deleted`, `reaction`) is applied to its target. A room
   * event is applied to the room and shown as a line; from a history page (`history`, asked
   * with `events`) it is only shown: the room's state came with the room, and an old
   * `settings` or `role` must not undo a newer one. Returns how many timeline messages were new.
   */
  addMessages(roomId, messages, { history = false } = {}) {
    const room = this.rooms.get(roomId);
    if (!room) return 0;
    let added = 0;
    let touched = false;
    for (const msg of messages) {
      this.remember(msg.sender);
      if (msg.seq > room.lastSeq) room.lastSeq = msg.seq;
      if (msg.change && ROOM_EVENT_OPS.includes(msg.change.op)) {
        // A room event: a stream entry like any other (it moved `lastSeq` above, so `resume`
        // goes past it), applied to the room and shown as a line in the timeline.
        touched = (history ? this.addNotice(room, msg) : this.applyRoomEvent(room, msg)) || touched;
        continue;
      }
      if (msg.change) {
        touched = this.applyChange(room, msg) || touched;
        continue;
      }
      this.noteMention(room, msg);
      if (!inTimeline(msg)) {
        // A thread reply kept to its thread: it moves the room's seq, not its timeline.
      } else if (room.hasNewer && msg.seq > (room.messages[room.messages.length - 1]?.seq ?? 0)) {
        // Past the end of a window opened at a linked message: kept until the window reaches it.
        if (insertBySeq(room.newer, msg)) added++;
      } else if (insertBySeq(room.messages, msg)) {
        added++;
      }
      if (msg.thread != null) touched = this.addReply(room, msg) || touched;
      if (this.me && msg.sender.id === this.me.id && msg.client_id) {
        const before = room.pending.length;
        room.pending = room.pending.filter((p) => p.client_id !== msg.client_id);
        // (its event may come before the reply: the saved outbox must forget it either way)
        if (room.pending.length !== before) this.changed('pending', `room:${roomId}`, 'thread');
      }
      if (room.typing.delete(msg.sender.id)) this.changed('typing');
    }
    if (room.lastSeq > (room.info.last_seq ?? 0)) room.info = { ...room.info, last_seq: room.lastSeq };
    if (added || touched) this.trim(room);
    if (added || touched) this.changed('rooms', `room:${roomId}`);
    return added;
  }

  /** A thread reply: into the open thread if it is its thread; its first message's count. */
  addReply(room, msg) {
    const thread = this.thread;
    if (thread && thread.roomId === room.id && thread.parentSeq === msg.thread) {
      if (insertBySeq(thread.replies, msg)) this.changed('thread');
    }
    let touched = false;
    for (const parent of this.copiesOf(room, msg.thread)) {
      const replies = Math.max(parent.replies ?? 0, msg.replies ?? 0);
      const last = Math.max(parent.last_reply_ts ?? 0, msg.ts ?? 0);
      if (replies === (parent.replies ?? 0) && last === (parent.last_reply_ts ?? 0)) continue;
      parent.replies = replies;
      parent.last_reply_ts = last;
      parent.rev = (parent.rev ?? 0) + 1;
      touched = true;
    }
    if (touched && thread?.roomId === room.id) this.changed('thread');
    return touched;
  }

  /** The timeline's copy of message `seq`: in `messages`, or past the end of a window opened at
   *  a linked message (`newer`). */
  held(room, seq) {
    return findBySeq(room.messages, seq) ?? findBySeq(room.newer, seq);
  }

  /** Every copy held of the message `seq` of a room: in its timeline (`messages` and, in a
   *  window opened at a link, `newer`), the open thread's first message and replies (one object
   *  may be in two places; each is listed once). */
  copiesOf(room, seq) {
    const found = new Set();
    for (const list of [room.messages, room.newer]) {
      const copy = findBySeq(list, seq);
      if (copy) found.add(copy);
    }
    const thread = this.thread;
    if (thread && thread.roomId === room.id) {
      if (thread.parent?.seq === seq) found.add(thread.parent);
      const reply = findBySeq(thread.replies, seq);
      if (reply) found.add(reply);
    }
    return found;
  }

  /**
   * Apply a change entry to its target, idempotently: an edit sets the text (unless a newer
   * edit is already shown, or the message is deleted), a delete leaves a tombstone, a reaction
   * adds or removes one person under one emoji. A target not held is skipped: `history` gives
   * it in its current state when it is loaded. A delete also takes the message out of the
   * unread and mention counts. True when something shown changed.
   */
  applyChange(room, entry) {
    const change = entry.change;
    const copies = this.copiesOf(room, change.target);
    const live = change.op === 'delete' ? [...copies].find((m) => !m.deleted) : null;
    // What the deleted message counted as, while it still could (before the tombstone).
    const was = live && { mention: this.mentionsMe(live, room), unread: inTimeline(live) && live.sender?.id !== this.me?.id };
    let touched = false;
    for (const msg of copies) {
      if (applyTo(msg, entry, change)) {
        msg.rev = (msg.rev ?? 0) + 1;
        touched = true;
      }
    }
    if (change.op === 'delete') touched = this.uncount(room, entry, was) || touched;
    if (touched && this.thread?.roomId === room.id) this.changed('thread');
    return touched;
  }

  /** A message deleted: out of the mentions seen here, and out of the server's counts when they
   *  were taken before the delete (its entry is newer) and counted it (`was`, from the held copy). */
  uncount(room, entry, was) {
    let changed = removeSorted(room.mentionSeqs, entry.change.target);
    const c = this.serverCounts(room);
    if (was && c && entry.change.target > c.readSeq && entry.change.target <= c.lastSeq && entry.seq > c.lastSeq) {
      if (was.mention && c.mentions > 0) {
        c.mentions--;
        changed = true;
      }
      if (was.unread && c.unread > 0) {
        c.unread--;
        changed = true;
      }
    }
    return changed;
  }

  /** A change entry from a request's reply: applied now (its event follows, and that moves
   *  `lastSeq`: a reply may overtake events of lower seq still on their way). */
  applyEntry(entry) {
    const room = this.rooms.get(entry.room);
    if (!room || !entry.change) return;
    if (this.applyChange(room, entry)) this.changed('rooms', `room:${room.id}`);
  }

  /**
   * Apply a room event (kick, ban, unban, mute, unmute, role, settings), idempotently: the
   * settings it names, a role (mine: `info.role`), my mute; and a line in the timeline, once per
   * `seq`. True when something shown changed.
   */
  applyRoomEvent(room, entry) {
    const c = entry.change;
    const mine = c.user && c.user.id === this.me?.id;
    switch (c.op) {
      case 'settings': {
        const patch = {};
        for (const key of ['name', 'topic', 'description', 'archived']) if (c[key] !== undefined) patch[key] = c[key];
        room.info = { ...room.info, ...patch };
        this.changed('rooms', 'current');
        break;
      }
      case 'role':
        room.roles.set(c.user.id, c.role);
        if (mine) room.info = { ...room.info, role: c.role };
        if (mine) this.changed('rooms');
        break;
      case 'mute':
      case 'unmute':
        if (mine) {
          room.mutedUntil = c.op === 'mute' ? c.until ?? 0 : 0;
          this.changed('current');
        }
        break;
      default:
        break;
    }
    this.addNotice(room, entry);
    this.changed(`room:${room.id}`);
    return true;
  }

  /** A room event's line in the timeline, once per `seq`. True if it is new. */
  addNotice(room, entry) {
    const key = `e${entry.seq}`;
    if (room.notices.some((n) => n.key === key)) return false;
    const notice = { key, afterSeq: entry.seq, ts: entry.ts, event: entry };
    let i = room.notices.length;
    while (i > 0 && room.notices[i - 1].afterSeq > entry.seq) i--;
    room.notices.splice(i, 0, notice);
    return true;
  }

  /** A room event from a request's reply: applied now, without moving `lastSeq` (its event
   *  follows and does that, as for applyEntry). */
  applyRoomEntry(entry) {
    const room = this.rooms.get(entry?.room);
    if (!room || !entry.change || !ROOM_EVENT_OPS.includes(entry.change.op)) return;
    this.applyRoomEvent(room, entry);
  }

  /** I am muted in the room until `until` (a `muted` error's `retry_after_ms`). */
  setMuted(roomId, until) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.mutedUntil = until;
    this.changed(`room:${roomId}`, 'current');
  }

  /** The room turned out to be archived (a `room_archived` error). */
  setArchived(roomId) {
    const room = this.rooms.get(roomId);
    if (!room || room.info.archived) return;
    room.info = { ...room.info, archived: true };
    this.changed('rooms', 'current', `room:${roomId}`);
  }

  /** When my mute in the room ends (0: not muted now). */
  mutedUntil(roomId) {
    const until = this.rooms.get(roomId)?.mutedUntil ?? 0;
    return until > Date.now() ? until : 0;
  }

  /** My rank in a room: an admin's 3, else my role's (DMs and group DMs: none, -1). */
  rank(roomId) {
    const info = this.rooms.get(roomId)?.info;
    // DMs and group DMs have no roles.
    if (!info || info.kind === 'dm' || info.kind === 'group') return -1;
    if (this.isAdmin) return ADMIN_RANK;
    return ROLE_RANK[info.role] ?? 0;
  }

  /** I may moderate the room (delete others' messages, kick, ban, mute, change settings). */
  canModerate(roomId) {
    return this.rank(roomId) >= ROLE_RANK.moderator;
  }

  /** Someone's rank in the room, when room events seen here tell it (else null: unknown). */
  rankOf(roomId, userId) {
    const role = this.rooms.get(roomId)?.roles.get(userId);
    return role === undefined ? null : ROLE_RANK[role] ?? 0;
  }

  setAdmin(yes) {
    if (this.isAdmin === yes) return;
    this.isAdmin = yes;
    this.changed('session', 'rooms', 'current');
    for (const id of this.rooms.keys()) this.changed(`room:${id}`);
  }

  setShowArchived(yes) {
    this.showArchived = yes;
    this.changed('rooms');
  }

  // ---- invitations -----------------------------------------------------------------------------

  /** The pending invitations (`invite.list`), replacing what was held. */
  setInvites(invites) {
    this.invites = new Map((invites ?? []).map((inv) => [inv.room, inv]));
    for (const inv of invites ?? []) this.remember(inv.by);
    this.changed('invites');
  }

  addInvite(invite) {
    this.remember(invite.by);
    this.invites.set(invite.room, invite);
    this.changed('invites');
  }

  removeInvite(roomId) {
    if (this.invites.delete(roomId)) this.changed('invites');
  }

  /** The message mentions me: by name, with `@room`, or anything from someone else in a DM. */
  mentionsMe(msg, room = this.rooms.get(msg.room)) {
    const me = this.me;
    if (!me || msg.sender?.id === me.id || msg.deleted || msg.change) return false;
    if (isDirect(room?.info)) return true;
    return msg.mentions_room === true || (Array.isArray(msg.mentions) && msg.mentions.includes(me.id));
  }

  /** Counts a message or thread reply that mentions me, after my read marker (once per seq). */
  noteMention(room, msg) {
    if (msg.seq > (this.readSeq[room.id] ?? 0) && this.mentionsMe(msg, room)) insertSorted(room.mentionSeqs, msg.seq);
  }

  /** Lets the oldest entries of a long room go (messages and room-event lines counted
   *  together, see MAX_KEPT_MESSAGES). */
  trim(room) {
    const held = room.messages.length + room.notices.length;
    if (held <= MAX_KEPT_MESSAGES) return;
    if (room.id === this.currentRoomId && this.readingOlder) return;
    // The seq from which the newest KEEP_AFTER_TRIM entries are kept.
    const seqs = [...room.messages.map((m) => m.seq), ...room.notices.map((n) => n.afterSeq)].sort((a, b) => a - b);
    const oldest = seqs[seqs.length - KEEP_AFTER_TRIM];
    room.messages = room.messages.filter((m) => m.seq >= oldest);
    room.notices = room.notices.filter((n) => n.afterSeq >= oldest);
    room.oldestLoaded = oldest;
    room.hasOlder = true;
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
      room.notices = room.notices.filter((n) => n.afterSeq >= oldest);
    }
    if (room.hasNewer) {
      // A window opened at a linked message gives way to the newest page.
      room.hasNewer = false;
      room.newer = [];
      room.messages = [];
    }
    const hadMessages = room.messages.length > 0 && !room.reloading;
    this.addMessages(roomId, messages, { history: true });
    if (!hadMessages) {
      room.hasOlder = has_more;
      room.oldestLoaded = messages[0]?.seq ?? null;
    } else {
      this.reachOlder(room, messages);
    }
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
    room.oldestLoaded = null;
    room.windowEnd = null;
    room.reloading = true;
    if (this.thread?.roomId === roomId) Object.assign(this.thread, { replies: [], loaded: false, hasOlder: false });
    this.changed(`room:${roomId}`, 'rooms', 'thread');
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
    this.addMessages(roomId, messages, { history: true });
    room.hasNewer = has_newer === true;
    room.oldestLoaded = messages[0]?.seq ?? null;
    room.windowEnd = room.hasNewer ? messages.at(-1)?.seq ?? null : null;
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
    this.addMessages(roomId, messages, { history: true });
    room.hasNewer = true;
    room.windowEnd = Math.max(room.windowEnd ?? 0, messages.at(-1)?.seq ?? 0) || null;
    // Live ones the window now reaches are in it (the page's copy, in its current state).
    const end = room.messages[room.messages.length - 1]?.seq ?? 0;
    room.newer = room.newer.filter((m) => m.seq > end);
    room.loadingNewer = false;
    if (!has_more) this.leaveWindow(room);
    this.changed(`room:${roomId}`, 'rooms');
  }

  /** The window reached the newest message (or is given up): the live ones join it. */
  leaveWindow(room) {
    room.hasNewer = false;
    room.windowEnd = null;
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
    room.oldestLoaded = null;
    room.windowEnd = null;
    room.reloading = true;
    this.changed(`room:${roomId}`, 'rooms');
  }

  /** An older page (the answer to `history` with `before`). */
  addOlder(roomId, { messages, has_more }) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    this.addMessages(roomId, messages, { history: true });
    this.reachOlder(room, messages);
    room.hasOlder = has_more;
    room.loadingOlder = false;
    this.changed(`room:${roomId}`);
  }

  /** A page's first entry (message or room event), if older than what the timeline held
   *  from pages, is where the next older page ends. */
  reachOlder(room, messages) {
    const first = messages[0]?.seq;
    if (first != null && (room.oldestLoaded == null || first < room.oldestLoaded)) room.oldestLoaded = first;
  }

  setLoadingOlder(roomId, loading) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.loadingOlder = loading;
    this.changed(`room:${roomId}`);
  }

  /** One of my messages on its way; `thread` (and `also_room`) for a thread reply; `files`
   *  the FileInfos of its uploads. */
  addPending(roomId, { client_id, body, ts = Date.now(), state = 'sending', thread = null, also_room = false, files = [] }) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.pending.push({ client_id, body, ts, state, error: null, thread, also_room, files });
    this.changed(`room:${roomId}`, 'pending', 'thread');
  }

  updatePending(client_id, patch) {
    for (const room of this.rooms.values()) {
      const p = room.pending.find((x) => x.client_id === client_id);
      if (!p) continue;
      Object.assign(p, patch);
      this.changed(`room:${room.id}`, 'pending', 'thread');
      return p;
    }
    return null;
  }

  removePending(client_id) {
    for (const room of this.rooms.values()) {
      const before = room.pending.length;
      room.pending = room.pending.filter((p) => p.client_id !== client_id);
      if (room.pending.length !== before) this.changed(`room:${room.id}`, 'pending', 'thread');
    }
  }

  // ---- the thread panel and the message being edited ------------------------------------------

  /** Open the thread of message `parentSeq` (its replies come with `setThreadPage`). */
  openThread(roomId, parentSeq) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    if (this.thread?.roomId === roomId && this.thread.parentSeq === parentSeq) return;
    this.thread = {
      roomId,
      parentSeq,
      parent: this.held(room, parentSeq) ?? null,
      replies: [],
      loaded: false,
      hasOlder: false,
      loadingOlder: false,
      error: null,
    };
    this.changed('thread');
  }

  closeThread() {
    if (!this.thread) return;
    this.thread = null;
    this.changed('thread');
  }

  /** A `history {thread}` page for the open thread: newest (`older` false) or an older one. */
  setThreadPage(roomId, parentSeq, { messages, has_more, parent }, older = false) {
    const thread = this.thread;
    if (!thread || thread.roomId !== roomId || thread.parentSeq !== parentSeq) return;
    const room = this.rooms.get(roomId);
    // The copy the timeline holds is kept current by the stream; else the page's.
    if (parent) thread.parent = (room && this.held(room, parentSeq)) ?? parent;
    const first = !thread.loaded;
    // A page is a snapshot, not the stream: it does not move `lastSeq` (live replies and the
    // changes to them come as events, applied to whatever is held by then).
    for (const msg of messages) {
      this.remember(msg.sender);
      insertBySeq(thread.replies, msg);
    }
    if (older || first) thread.hasOlder = has_more;
    thread.loaded = true;
    thread.loadingOlder = false;
    thread.error = null;
    this.changed('thread');
  }

  setThreadState(patch) {
    if (!this.thread) return;
    Object.assign(this.thread, patch);
    this.changed('thread');
  }

  /** Edit message `seq` in place (null: stop editing). */
  setEditing(editing) {
    const before = this.editing;
    this.editing = editing;
    for (const e of [before, editing]) if (e) this.changed(`room:${e.roomId}`, 'thread');
  }

  /** My newest message in the room's timeline that can still be edited. */
  lastOwnMessage(roomId) {
    const room = this.rooms.get(roomId);
    if (!room || !this.me) return null;
    for (let i = room.messages.length - 1; i >= 0; i--) {
      const msg = room.messages[i];
      if (msg.sender.id === this.me.id && !msg.deleted) return msg;
    }
    return null;
  }

  /** Every unacknowledged message of mine: [{room, client_id, body, ts, state}]. */
  allPending() {
    const all = [];
    for (const room of this.rooms.values()) {
      for (const p of room.pending) all.push({ room: room.id, ...p });
    }
    return all;
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

  /**
   * Members of a room (`room.members`) or one profile (`profile.get`, `profile.update`): their
   * profiles are kept, and with `roomId` their roles there (what the member menu needs).
   */
  setProfiles(members, roomId = null) {
    const room = roomId === null ? null : this.rooms.get(roomId);
    let changed = false;
    for (const m of members ?? []) {
      if (!m?.user) continue;
      this.remember(m.user);
      const was = this.profiles.get(m.user.id);
      if (profileSig(was) !== profileSig(m)) changed = true;
      this.profiles.set(m.user.id, { ...m });
      if (room && m.role) {
        room.roles.set(m.user.id, m.role);
        if (m.user.id === this.me?.id && room.info.role !== m.role) room.info = { ...room.info, role: m.role };
      }
    }
    if (!changed) return;
    this.changed('profiles', 'rooms', 'current');
    for (const id of this.rooms.keys()) this.changed(`room:${id}`);
  }

  /** The Member held for a person (null: not loaded yet). */
  profileOf(userId) {
    return this.profiles.get(userId) ?? null;
  }

  /** What a person is called in the UI: their display name where known, else their username. */
  displayName(user) {
    if (!user) return 'someone';
    return this.profiles.get(user.id)?.display_name || user.name;
  }

  /** What a profile contributes to how a person is drawn on a message (display name,
   *  picture, the "bot" tag): for signatures, so a profile without any rebuilds nothing. */
  personSig(userId) {
    const m = this.profiles.get(userId);
    return m ? `${m.display_name ?? ''}|${m.avatar?.id ?? ''}|${m.bot ? 1 : 0}` : '||0';
  }

  /** A room's title for the sidebar and header, with display names for DM and group peers. */
  titleOf(info) {
    return roomTitle(info, (u) => this.displayName(u));
  }

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
    return [...room.typing.values()].filter((t) => t.until > now).map((t) => this.displayName(t.user));
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

/** A direct conversation: a DM or a group DM (no roles, no settings, every message is for me). */
export function isDirect(info) {
  return info?.kind === 'dm' || info?.kind === 'group';
}

/** What a room is called in the UI: its name, the peer's name for a DM, the peers' names for
 *  a group DM ("bob, carol"); `nameOf(user)` says how a person is called (default: username). */
export function roomTitle(info, nameOf = (u) => u.name) {
  if (info.kind === 'dm') return info.peer ? nameOf(info.peer) : 'direct message';
  if (info.kind === 'group') {
    const names = (info.peers ?? []).map(nameOf);
    return names.length ? names.join(', ') : 'group';
  }
  return info.name;
}

/** The parts of a Member that change how a person is drawn. */
function profileSig(m) {
  return m ? `${m.display_name ?? ''}|${m.avatar?.id ?? ''}|${m.status ?? ''}|${m.online ? 1 : 0}|${m.last_seen ?? ''}|${m.bot ? 1 : 0}` : '';
}

/** The message with this seq in `list` (ascending seq), or undefined. */
function findBySeq(list, seq) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return list[lo]?.seq === seq ? list[lo] : undefined;
}

/** Apply one change entry to one message (idempotent); true when it changed anything. */
function applyTo(msg, entry, change) {
  if (msg.deleted) return false;
  switch (change.op) {
    case 'edit':
      // An empty body: deleted since (its delete entry follows). An older edit than the one
      // shown (a replay after `history` gave the current text) changes nothing.
      if (!entry.body || (msg.edited_at ?? 0) > entry.ts) return false;
      if (msg.body === entry.body && msg.edited_at === entry.ts) return false;
      msg.body = entry.body;
      msg.edited_at = entry.ts;
      return true;
    case 'delete':
      msg.deleted = true;
      msg.body = '';
      msg.reactions = [];
      return true;
    case 'react': {
      const reactions = msg.reactions ?? [];
      const who = entry.sender;
      let r = reactions.find((x) => x.emoji === change.emoji);
      const has = !!r?.users.some((u) => u.id === who.id);
      if (change.add === has) return false;
      if (change.add) {
        if (!r) {
          r = { emoji: change.emoji, users: [] };
          reactions.push(r);
        }
        r.users.push(who);
      } else {
        r.users = r.users.filter((u) => u.id !== who.id);
      }
      msg.reactions = reactions.filter((x) => x.users.length > 0);
      return true;
    }
    default:
      return false;
  }
}

/** Insert number `n` into the ascending `list` unless it is there. */
function insertSorted(list, n) {
  let i = list.length;
  while (i > 0 && list[i - 1] > n) i--;
  if (list[i - 1] !== n) list.splice(i, 0, n);
}

/** Remove number `n` from `list`; true when it was there. */
function removeSorted(list, n) {
  const i = list.indexOf(n);
  if (i < 0) return false;
  list.splice(i, 1);
  return true;
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
