// router.js — the page's address. `/` is the chat, `/r/<room>` a room, `/r/<room>/<seq>` a
// message in it; any other path is "not found". Parses `location.pathname`, builds the paths
// and full links (for "Copy link"), and moves through the browser's history. No DOM besides
// `location`/`history`, no state: app.js decides what an address opens.

/** What a path names: {page: 'chat', room: id|null, seq: seq|null} or {page: 'notfound'}. */
export function parsePath(pathname = window.location.pathname) {
  if (pathname === '/' || pathname === '' || pathname === '/index.html') return { page: 'chat', room: null, seq: null };
  const m = pathname.match(/^\/r\/([1-9]\d{0,15})(?:\/([1-9]\d{0,15}))?\/?$/);
  if (!m) return { page: 'notfound' };
  return { page: 'chat', room: Number(m[1]), seq: m[2] ? Number(m[2]) : null };
}

/** `/r/5`, or `/r/5/42` for a message. `room` is a room id or a room object with an `id`. */
export function roomPath(room, seq = null) {
  const id = typeof room === 'object' && room !== null ? room.id : room;
  return seq ? `/r/${id}/${seq}` : `/r/${id}`;
}

/** The full link to a room or to one of its messages: `https://chat.example/r/5/42`. */
export function roomUrl(room, seq = null) {
  return new URL(roomPath(room, seq), window.location.origin).href;
}

/** Show `path` in the address bar: a new history entry, or (`replace`) in place of this one. */
export function go(path, { replace = false } = {}) {
  if (window.location.pathname === path) return;
  if (replace) window.history.replaceState(null, '', path);
  else window.history.pushState(null, '', path);
}
