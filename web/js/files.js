// files.js — the files half of the HTTP API (docs/protocol.md section 1, "Files"): uploads
// (`POST /api/files?name=`, through XMLHttpRequest for its progress events, abortable), the
// session's download key (`GET /api/files/key`, fetched once and again before it expires) that
// `<img>` and download links need, and the small formatting the views share (sizes, fitting an
// image into a box). No DOM here.

import { ApiError } from './api.js';

/** Fetch a new key this long before the one held expires. */
const KEY_REFRESH_MARGIN_MS = 10 * 60 * 1000;

let token = null;
/** {key, expires} */
let held = null;
/** the request in flight, shared by everyone waiting */
let fetching = null;

/** The session whose key to use (null on sign-out: the key is forgotten). */
export function setFilesToken(t) {
  if (t === token) return;
  token = t;
  held = null;
  fetching = null;
}

/** The download key, fetched when none is held or it expires within the margin. */
export function downloadKey() {
  if (held && held.expires - Date.now() > KEY_REFRESH_MARGIN_MS) return Promise.resolve(held.key);
  if (fetching) return fetching;
  const forToken = token;
  const p = fetch(new URL('/api/files/key', location.origin).href, {
    headers: { Authorization: `Bearer ${forToken}` },
    cache: 'no-store',
  }).then(async (res) => {
    if (!res.ok) throw new ApiError('unauthenticated', `HTTP ${res.status}`, res.status);
    const json = await res.json();
    if (forToken === token) held = { key: json.key, expires: json.expires };
    return json.key;
  }).finally(() => {
    if (fetching === p) fetching = null;
  });
  fetching = p;
  return p;
}

/** `url` (a FileInfo's `url` or `thumb_url`) with the key: `?k=...`. */
export async function keyedUrl(url) {
  const key = await downloadKey();
  const u = new URL(url, location.origin);
  u.searchParams.set('k', key);
  return u.pathname + u.search;
}

/**
 * Upload one file. Returns `{promise, abort}`: the promise resolves with the FileInfo, or
 * rejects with an ApiError (`aborted` after `abort()`; `server_down` when nothing answered).
 * `onProgress(loaded, total)` follows the bytes sent.
 */
export function uploadFile(file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const name = file.name || 'file';
    xhr.open('POST', `/api/files?name=${encodeURIComponent(name)}`);
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      const json = xhr.response;
      if (xhr.status === 201 && json?.file) return resolve(json.file);
      const err = json?.error;
      if (err?.code) return reject(new ApiError(err.code, err.message ?? err.code, xhr.status));
      // 413 from a proxy in front, or one without a JSON body
      if (xhr.status === 413) return reject(new ApiError('file_too_large', 'The file is too large for this server.', 413));
      return reject(new ApiError(xhr.status >= 500 ? 'server_down' : 'invalid_request', `HTTP ${xhr.status}`, xhr.status));
    };
    // A refused upload is answered while the body is still streaming, and the connection is
    // closed: some browsers then see only a network error.
    xhr.onerror = () => reject(new ApiError('upload_failed', navigator.onLine
      ? 'The upload failed: the connection was closed (the file may be too large for this server).'
      : 'The upload failed: you are offline.', 0));
    xhr.onabort = () => reject(new ApiError('aborted', 'Cancelled.', 0));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

/** "512 B", "1.4 KB", "23 MB" (powers of 1024, as the server's limits). */
export function humanSize(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  const text = i === 0 || n >= 10 ? String(Math.round(n)) : n.toFixed(1);
  return `${text} ${units[i]}`;
}

/** `width` x `height` scaled down (never up) to fit `max` x `max`, keeping the ratio. */
export function fitBox(width, height, max) {
  if (!width || !height) return { width: max, height: max };
  const scale = Math.min(1, max / width, max / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** A short name of a type for a file card: "PDF", "ZIP", "Text", "PNG image", ... */
export function typeLabel(type) {
  const base = (type ?? '').split(';')[0].trim();
  const known = {
    'application/pdf': 'PDF document',
    'application/zip': 'ZIP archive',
    'text/plain': 'Text',
    'application/octet-stream': 'File',
  };
  if (known[base]) return known[base];
  if (base.startsWith('image/')) return `${base.slice(6).toUpperCase()} image`;
  return base || 'File';
}
