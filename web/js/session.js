// session.js — what survives a page reload, in Web Storage: the session token and user, and per
// user the read markers and the last open room (localStorage), and this tab's messages written
// but not yet acknowledged by the server (sessionStorage, so a reload still sends them once).

const SESSION_KEY = 'natter.session';

function read(storage, key) {
  try {
    return JSON.parse(storage.getItem(key));
  } catch {
    return null;
  }
}

function write(storage, key, value) {
  try {
    if (value === null || value === undefined) storage.removeItem(key);
    else storage.setItem(key, JSON.stringify(value));
  } catch {
    // storage full or disabled: the app still works, it only forgets more on reload
  }
}

/** `{token, user}` or null. */
export function loadSession() {
  const s = read(localStorage, SESSION_KEY);
  return typeof s?.token === 'string' && s.user?.id !== undefined ? s : null;
}

export function saveSession({ token, user }) {
  write(localStorage, SESSION_KEY, { token, user });
}

export function clearSession(userId) {
  write(localStorage, SESSION_KEY, null);
  if (userId !== undefined) write(sessionStorage, `natter.outbox.${userId}`, null);
}

/** True when a `storage` event says another tab signed out or in as someone else. */
export function sessionChangedElsewhere(event, token) {
  if (event.key !== SESSION_KEY && event.key !== null) return false;
  return loadSession()?.token !== token;
}

export function loadReadMarks(userId) {
  const marks = read(localStorage, `natter.read.${userId}`);
  return marks && typeof marks === 'object' ? marks : {};
}

export function saveReadMarks(userId, marks) {
  write(localStorage, `natter.read.${userId}`, marks);
}

export function loadLastRoom(userId) {
  const id = read(localStorage, `natter.room.${userId}`);
  return typeof id === 'number' ? id : null;
}

export function saveLastRoom(userId, roomId) {
  write(localStorage, `natter.room.${userId}`, roomId);
}

/** Unacknowledged messages: [{room, client_id, body, ts}]. */
export function loadOutbox(userId) {
  const items = read(sessionStorage, `natter.outbox.${userId}`);
  return Array.isArray(items) ? items : [];
}

export function saveOutbox(userId, items) {
  write(sessionStorage, `natter.outbox.${userId}`, items.length ? items : null);
}
