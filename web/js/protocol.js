// protocol.js — the wire contract of docs/protocol.md in one place: request names, close codes,
// error codes and their wording for people, the naming rules and how lengths are counted.
// No DOM, no sockets, no state: every other module asks this one what the server means.

/** Request names (docs/protocol.md section 4). */
export const Req = Object.freeze({
  AUTH: 'auth',
  ROOM_LIST: 'room.list',
  ROOM_CREATE: 'room.create',
  ROOM_JOIN: 'room.join',
  ROOM_LEAVE: 'room.leave',
  ROOM_MEMBERS: 'room.members',
  ROOM_READ: 'room.read',
  ROOM_NOTIFY: 'room.notify',
  DM_OPEN: 'dm.open',
  SEND: 'message.send',
  EDIT: 'message.edit',
  DELETE: 'message.delete',
  EDITS: 'message.edits',
  REACTION_ADD: 'reaction.add',
  REACTION_REMOVE: 'reaction.remove',
  HISTORY: 'history',
  SEARCH: 'search',
  TYPING: 'typing',
  PRESENCE_LIST: 'presence.list',
  PING: 'ping',
  // private rooms, settings, roles and moderation (section 4, "Roles and moderation")
  ROOM_INVITE: 'room.invite',
  INVITE_LIST: 'invite.list',
  INVITE_DECLINE: 'invite.decline',
  ROOM_UPDATE: 'room.update',
  ROOM_KICK: 'room.kick',
  ROOM_BAN: 'room.ban',
  ROOM_UNBAN: 'room.unban',
  ROOM_MUTE: 'room.mute',
  ROOM_UNMUTE: 'room.unmute',
  ROOM_ROLE: 'room.role',
  ROOM_BANS: 'room.bans',
  ADMIN_AUDIT: 'admin.audit',
  // group DMs and profiles
  GROUP_OPEN: 'group.open',
  GROUP_ADD: 'group.add',
  PROFILE_GET: 'profile.get',
  PROFILE_UPDATE: 'profile.update',
});

/** Event names (section 5). */
export const Ev = Object.freeze({
  MESSAGE: 'message',
  MESSAGE_EDITED: 'message_edited',
  MESSAGE_DELETED: 'message_deleted',
  REACTION: 'reaction',
  MEMBER_JOINED: 'member_joined',
  MEMBER_LEFT: 'member_left',
  TYPING: 'typing',
  PRESENCE: 'presence',
  PRESENCE_RESET: 'presence_reset',
  ROOM_ADDED: 'room_added',
  ROOM_REMOVED: 'room_removed',
  ROOM_READ: 'room_read',
  ROOM_NOTIFY: 'room_notify',
  ROOM_EVENT: 'room_event',
  ROOM_INVITED: 'room_invited',
});

/** How long reading settles before the read marker goes to the server (one `room.read` per
 *  room per pause, not one per message). */
export const READ_SYNC_MS = 700;

/** WebSocket close codes (section 7) and what the client does about each. */
export const Close = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  UNAUTHENTICATED: 4001,
  REVOKED: 4003,
  SLOW_CONSUMER: 4008,
  DEACTIVATED: 4010,
});

/** Close codes after which reconnecting cannot help: the person must sign in again (or, for
 *  `4010`, an admin deactivated the account: no reconnecting at all). */
export function closeNeedsSignIn(code) {
  return code === Close.UNAUTHENTICATED || code === Close.REVOKED || code === Close.DEACTIVATED;
}

// ---- roles and moderation (section 4, "Roles and moderation") ---------------------------------

/** A room's roles by rank; a server admin outranks them all (rank 3). */
export const ROLE_RANK = Object.freeze({ member: 0, moderator: 1, owner: 2 });
export const ADMIN_RANK = 3;
/** The `change.op`s of room events (`room_event`): stream entries that change the room, not a message. */
export const ROOM_EVENT_OPS = Object.freeze(['join', 'leave', 'kick', 'ban', 'unban', 'mute', 'unmute', 'role', 'settings']);
/** The mute lengths the member menu offers (`room.mute` takes 1 to 43200 minutes). */
export const MUTE_CHOICES = Object.freeze([
  { minutes: 10, label: '10 minutes' },
  { minutes: 60, label: '1 hour' },
  { minutes: 1440, label: '1 day' },
]);
/** `room.update` limits (section 7). */
export const TOPIC_MAX = 250;
export const DESCRIPTION_MAX = 2000;
export const REASON_MAX = 500;
/** `admin.audit` page size of the audit log view (the server allows 1 to 200). */
export const AUDIT_PAGE = 50;

/** "10 minutes", "1 hour", "2 days": a mute's length for people. */
export function durationText(ms) {
  const minutes = Math.max(1, Math.round(ms / 60000));
  const unit = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (minutes % 1440 === 0) return unit(minutes / 1440, 'day');
  if (minutes % 60 === 0) return unit(minutes / 60, 'hour');
  return unit(minutes, 'minute');
}

/**
 * A room event as a line for the timeline: "bob joined", "ana banned bob: spam", "ana muted bob for 10
 * minutes", "ana made bob a moderator", "ana changed the topic to “…”", "ana archived the room".
 */
export function describeRoomEvent(entry) {
  const c = entry.change ?? {};
  const by = entry.sender?.name ?? 'someone';
  const who = c.user?.name ?? 'someone';
  const reason = c.reason ? `: ${c.reason}` : '';
  switch (c.op) {
    case 'join': return `${who} joined`;
    case 'leave': return `${who} left`;
    case 'kick': return `${by} removed ${who} from the room${reason}`;
    case 'ban': return `${by} banned ${who}${reason}`;
    case 'unban': return `${by} lifted the ban on ${who}`;
    case 'mute': return `${by} muted ${who} for ${durationText((c.until ?? entry.ts) - entry.ts)}`;
    case 'unmute': return `${by} unmuted ${who}`;
    case 'role':
      return c.role === 'member' ? `${by} made ${who} a member` : `${by} made ${who} ${c.role === 'owner' ? 'an owner' : 'a moderator'}`;
    case 'settings': {
      const parts = [];
      if (c.name !== undefined) parts.push(`renamed the room to #${c.name}`);
      if (c.topic !== undefined) parts.push(c.topic ? `changed the topic to “${c.topic}”` : 'cleared the topic');
      if (c.description !== undefined) parts.push(c.description ? 'changed the description' : 'cleared the description');
      if (c.archived === true) parts.push('archived the room');
      if (c.archived === false) parts.push('unarchived the room');
      return `${by} ${parts.join(', ') || 'changed the room settings'}`;
    }
    default: return `${by} changed the room`;
  }
}

/**
 * Joins (or leaves) in a row as one line: "ana and bob joined", "ana, bob and carol left",
 * "ana, bob and 3 others joined". Each person once, in the order they came.
 */
export function describeMembers(entries) {
  const names = [...new Set(entries.map((e) => e.change?.user?.name ?? 'someone'))];
  const verb = entries[0]?.change?.op === 'leave' ? 'left' : 'joined';
  let who;
  if (names.length === 1) who = names[0];
  else if (names.length <= 3) who = `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
  else who = `${names.slice(0, 2).join(', ')} and ${names.length - 2} others`;
  return `${who} ${verb}`;
}

/** Defaults until the server's `auth` reply tells the real limits. */
export const DEFAULT_LIMITS = Object.freeze({
  max_message_chars: 4000,
  max_frame_bytes: 65536,
  rate_per_sec: 20,
  rate_burst: 40,
});

/** A group DM holds 3 to 8 people, me included (`group.open`). */
export const GROUP_MIN = 3;
export const GROUP_MAX = 8;
/** `profile.update` limits. */
export const DISPLAY_NAME_MAX = 64;
export const STATUS_MAX = 140;

/** Usernames, guest nicknames and room names: 1-32 ASCII letters, digits, `_`, `-`, `.`. */
export const NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;
/** `room.list` page size the room browser asks for (the server allows 1 to 100). */
export const ROOM_PAGE = 50;
/** How long the room browser waits after the last keystroke before it searches. */
export const ROOM_SEARCH_DEBOUNCE_MS = 250;
/** `history` page size the client asks for (the server allows 1 to 100). */
export const HISTORY_PAGE = 50;
/** The reactions the picker offers first (docs/protocol.md, `reaction.add`); any other single
 *  emoji may be typed. */
export const REACTION_SET = Object.freeze(['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '✅', '🙏', '🔥']);
/** `history` page size of a thread panel. */
export const THREAD_PAGE = 50;
/** `search` results per page (the server allows 1 to 50). */
export const SEARCH_PAGE = 20;
/** How long message search waits after the last keystroke before it asks. */
export const SEARCH_DEBOUNCE_MS = 300;
/** Search errors whose server message says what is wrong with the query (shown as it is). */
export const SEARCH_QUERY_ERRORS = Object.freeze(['invalid_request', 'unknown_user', 'unknown_room']);

/** The server forwards `typing: true` at most this often; sending more often is wasted. */
export const TYPING_RESEND_MS = 2000;

/** Length as the server counts it: Unicode scalar values, not UTF-16 code units. */
export function charCount(text) {
  let n = 0;
  // eslint-disable-next-line no-unused-vars
  for (const _ of text) n++;
  return n;
}

/** True when a body would be refused as `empty_message`. */
export function isBlank(text) {
  return /^\s*$/u.test(text);
}

/** A fresh `client_id` for `message.send` (kept across retries of the same message). */
export function newClientId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Error codes the server may answer a request with, which a retry can fix. */
export function isRetryable(code) {
  return code === 'internal' || code === 'rate_limited' || code === 'disconnected' || code === 'timeout';
}

const ERROR_TEXT = {
  // HTTP API
  invalid_request: 'The server did not understand that request.',
  invalid_username: 'Names are 1 to 32 letters, digits, "_", "-" or ".".',
  weak_password: `Passwords need at least ${PASSWORD_MIN} characters.`,
  name_taken: 'That name is already taken.',
  invalid_credentials: 'Wrong username or password.',
  unauthenticated: 'Your session has ended. Please sign in again.',
  guests_disabled: 'Guest access is turned off on this server.',
  server_down: 'Cannot reach the server. Check that it is running, then try again.',
  // WebSocket
  rate_limited: 'Slow down a little: too many requests.',
  empty_message: 'A message cannot be empty.',
  message_too_long: 'That message is too long.',
  unknown_room: 'That room does not exist (or is not yours to see).',
  not_member: 'You are not a member of that room.',
  forbidden: 'That is not allowed.',
  invalid_name: 'Room names are 1 to 32 letters, digits, "_", "-" or ".".',
  unknown_user: 'Nobody has that name.',
  limit_reached: 'You have created as many rooms as this server allows.',
  internal: 'The server had a problem. Try again.',
  unknown_message: 'That message does not exist any more.',
  message_deleted: 'That message was deleted.',
  invalid_thread: 'Threads are one level deep: reply in the first message\'s thread.',
  invalid_emoji: 'That is not a single emoji.',
  too_many_reactions: 'This message has as many different reactions as it can take.',
  banned: 'You are banned from that room.',
  muted: 'You are muted in this room for now.',
  room_archived: 'This room is archived: it is read-only.',
  account_deactivated: 'This account was deactivated by an administrator.',
  disconnected: 'Not connected to the server.',
  timeout: 'The server took too long to answer.',
  unknown_file: 'That file is gone, or it is not an image of yours.',
  invalid_image: 'That is not an image this server can read.',
  file_too_large: 'That file is too large for this server.',
  quota_exceeded: 'You have used all of your upload space.',
};

const SEND_FAILURE_TEXT = {
  internal: 'the server had a problem',
  empty_message: 'the message is empty',
  message_too_long: 'the message is too long',
  unknown_room: 'this conversation is gone',
  not_member: 'you are no longer in this room',
  invalid_request: 'the server refused it',
  unknown_message: 'the message it replies to is gone',
  message_deleted: 'the message it replies to was deleted',
  invalid_thread: 'that message is itself a reply',
  unknown_file: 'an attached file is gone (upload it again)',
  muted: 'you are muted here',
  room_archived: 'the room is archived (read-only)',
  forbidden: 'not allowed',
};

/** Why a `message.send` failed, short enough to sit under the message ("Not sent: ..."). */
export function sendFailureText(code) {
  return SEND_FAILURE_TEXT[code] ?? `error ${code}`;
}

/** A sentence for a person, for an error code from the server (or the client's own codes). */
export function errorText(code, fallback) {
  return ERROR_TEXT[code] ?? fallback ?? `Something went wrong (${code}).`;
}
