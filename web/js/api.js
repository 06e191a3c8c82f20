// api.js — the HTTP half of the protocol (docs/protocol.md section 1): register, login, guest,
// logout, me, config, the account's sessions, password, export and deletion, and bots, their
// tokens and rooms' webhooks (docs/api.md). Turns every failure, including "no server at all", into an ApiError with a code.
// Paths are absolute on the page's own origin, so the client works behind any host or port.

export class ApiError extends Error {
  /**
   * @param {string} code   the protocol's error code, or `server_down` when nothing answered
   * @param {string} message
   * @param {number} status the HTTP status (0 when the request never got an answer)
   */
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

function apiUrl(path) {
  return new URL(path, window.location.origin).href;
}

async function call(method, path, { body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(apiUrl(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError('server_down', 'the server did not answer', 0);
  }
  if (res.status === 204) return null;
  let json = null;
  try {
    json = await res.json();
  } catch {
    // not JSON: a proxy's error page, or a server that is going away
  }
  if (!res.ok) {
    const err = json?.error;
    if (err?.code) throw new ApiError(err.code, err.message ?? err.code, res.status);
    const code = res.status >= 500 ? 'server_down' : 'invalid_request';
    throw new ApiError(code, `HTTP ${res.status}`, res.status);
  }
  return json;
}

/** `POST /api/register` -> `{token, user}` */
export function register(username, password) {
  return call('POST', '/api/register', { body: { username, password } });
}

/** `POST /api/login` -> `{token, user}` */
export function login(username, password) {
  return call('POST', '/api/login', { body: { username, password } });
}

/** `POST /api/logout`: revokes the token and closes its sockets (code 4003). */
export function logout(token) {
  return call('POST', '/api/logout', { token });
}

/** `GET /api/me` -> `{user}` */
export function me(token) {
  return call('GET', '/api/me', { token });
}

/** `POST /api/guest` -> `{token, user}` (403 `guests_disabled` unless the server allows it) */
export function guest(nickname) {
  return call('POST', '/api/guest', { body: { nickname } });
}

/** `GET /api/config` -> `{allow_guests, max_message_chars, max_upload_bytes, ...}`: what the server allows. */
export function config() {
  return call('GET', '/api/config');
}

/** `GET /api/sessions` -> `{sessions: [{id, label, created_at, last_used_at, current}]}` */
export function sessions(token) {
  return call('GET', '/api/sessions', { token });
}

/** `DELETE /api/sessions/{id}`: revokes one of my sessions (its sockets close with 4003). */
export function revokeSession(token, id) {
  return call('DELETE', `/api/sessions/${encodeURIComponent(id)}`, { token });
}

/** `POST /api/logout-all`: revokes every session of mine, this one included. */
export function logoutAll(token) {
  return call('POST', '/api/logout-all', { token });
}

/** `POST /api/password`: 401 `invalid_credentials` for a wrong old password; other sessions end. */
export function changePassword(token, oldPassword, newPassword) {
  return call('POST', '/api/password', {
    token,
    body: { old_password: oldPassword, new_password: newPassword },
  });
}

/** `DELETE /api/account`: the account is gone (204); 401 `invalid_credentials` for a wrong
 *  password. A guest has none: `password` null sends `{}`. */
export function deleteAccount(token, password) {
  return call('DELETE', '/api/account', { token, body: password === null ? {} : { password } });
}

/** `GET /api/account/export` -> `{blob, name}`: the JSON download, and the file name the server
 *  suggests (`Content-Disposition`), else `natter-export.json`. */
export async function exportAccount(token) {
  let res;
  try {
    res = await fetch(apiUrl('/api/account/export'), { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
  } catch {
    throw new ApiError('server_down', 'the server did not answer', 0);
  }
  if (!res.ok) {
    const json = await res.json().catch(() => null);
    throw new ApiError(json?.error?.code ?? 'server_down', json?.error?.message ?? `HTTP ${res.status}`, res.status);
  }
  const disposition = res.headers.get('Content-Disposition') ?? '';
  const name = disposition.match(/filename="?([^";]+)"?/)?.[1] ?? 'natter-export.json';
  return { blob: await res.blob(), name };
}

// ---- bots and integrations (docs/api.md) -------------------------------------------------

/** `GET /api/bots` -> `{bots: [Bot]}` */
export function listBots(token) {
  return call('GET', '/api/bots', { token });
}

/** `POST /api/bots` -> `{bot}` */
export function createBot(token, name) {
  return call('POST', '/api/bots', { token, body: { name } });
}

/** `DELETE /api/bots/{id}`: the bot, its tokens and webhooks. */
export function deleteBot(token, bot) {
  return call('DELETE', `/api/bots/${encodeURIComponent(bot)}`, { token });
}

/** `GET /api/bots/{id}/tokens` -> `{tokens}` (never the tokens themselves) */
export function listBotTokens(token, bot) {
  return call('GET', `/api/bots/${encodeURIComponent(bot)}/tokens`, { token });
}

/** `POST /api/bots/{id}/tokens` -> `{id, name, rooms, created_at, token}`: the token, shown once. */
export function createBotToken(token, bot, name) {
  return call('POST', `/api/bots/${encodeURIComponent(bot)}/tokens`, { token, body: { name } });
}

/** `DELETE /api/bots/{id}/tokens/{tid}` */
export function revokeBotToken(token, bot, tid) {
  return call('DELETE', `/api/bots/${encodeURIComponent(bot)}/tokens/${encodeURIComponent(tid)}`, { token });
}

/** `POST /api/rooms/{id}/members` with a bot of mine -> `{room}` */
export function addBotToRoom(token, room, name) {
  return call('POST', `/api/rooms/${encodeURIComponent(room)}/members`, { token, body: { user: name } });
}

/** `GET /api/rooms/{id}/webhooks` -> `{webhooks}` */
export function listWebhooks(token, room) {
  return call('GET', `/api/rooms/${encodeURIComponent(room)}/webhooks`, { token });
}

/** `POST /api/rooms/{id}/webhooks` -> `{id, name, url, ...}`: the URL, shown once. */
export function createWebhook(token, room, name) {
  return call('POST', `/api/rooms/${encodeURIComponent(room)}/webhooks`, { token, body: { name } });
}

/** `DELETE /api/rooms/{id}/webhooks/{hid}` */
export function deleteWebhook(token, room, hid) {
  return call('DELETE', `/api/rooms/${encodeURIComponent(room)}/webhooks/${encodeURIComponent(hid)}`, { token });
}
