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
});

/** Close codes after which reconnecting cannot help: the person must sign in again. */
export function closeNeedsSignIn(code) {
  return code === Close.UNAUTHENTICATED || code === Close.REVOKED;
}

/** Defaults until the server's `auth` reply tells the real limits. */
export const DEFAULT_LIMITS = Object.freeze({
  max_message_chars: 4000,
  max_frame_bytes: 65536,
  rate_per_sec: 20,
  rate_burst: 40,
});

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
  disconnected: 'Not connected to the server.',
  timeout: 'The server took too long to answer.',
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
};

/** Why a `message.send` failed, short enough to sit under the message ("Not sent: ..."). */
export function sendFailureText(code) {
  return SEND_FAILURE_TEXT[code] ?? `error ${code}`;
}

/** A sentence for a person, for an error code from the server (or the client's own codes). */
export function errorText(code, fallback) {
  return ERROR_TEXT[code] ?? fallback ?? `Something went wrong (${code}).`;
}
