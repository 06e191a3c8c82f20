// view/files.js — files in messages: an image as an inline thumbnail (its box sized from the
// FileInfo's width and height before it loads, so nothing jumps) that opens the lightbox, any
// other file as a card (icon, name, type, size) linking to its download. URLs get the session's
// download key (files.js) once it is known. Also the lightbox dialog itself.

import { h, icon } from './dom.js';
import { fitBox, humanSize, keyedUrl, typeLabel } from '../files.js';

/** Thumbnails are at most this wide and high on the page (the server makes them 360 x 360). */
export const THUMB_MAX_PX = 360;

const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/** Set `attr` of `el` to the keyed `url` once the key is known (when the key cannot be had,
 *  offline, again once the browser is back online). */
function setKeyed(el, attr, url) {
  keyedUrl(url).then((u) => el.setAttribute(attr, u), () => {
    window.addEventListener('online', () => {
      if (el.isConnected) setKeyed(el, attr, url);
    }, { once: true });
  });
}

/** The files of one message (null when none). */
export function fileList(files) {
  if (!files?.length) return null;
  return h('div', { class: 'msg-files' }, files.map(fileItem));
}

function isImage(f) {
  return IMAGE_TYPES.has(f.type) && f.width > 0 && f.height > 0;
}

function fileItem(f) {
  return isImage(f) ? imageThumb(f) : fileCard(f);
}

function imageThumb(f) {
  const box = fitBox(f.width, f.height, THUMB_MAX_PX);
  const img = h('img', {
    class: 'file-thumb-img',
    alt: f.name,
    attrs: { width: box.width, height: box.height, decoding: 'async', loading: 'lazy' },
  });
  setKeyed(img, 'src', f.thumb_url ?? f.url);
  const btn = h('button', {
    type: 'button',
    class: 'file-thumb',
    title: `${f.name} (${f.width} × ${f.height}, ${humanSize(f.size)})`,
    attrs: { 'aria-label': `Open image ${f.name}` },
    dataset: { file: f.id },
    on: { click: (e) => openLightbox(f, e.currentTarget) },
  }, img);
  return btn;
}

function fileCard(f) {
  const a = h('a', {
    class: 'file-card',
    rel: 'noopener',
    attrs: { download: f.name, 'aria-label': `Download ${f.name}, ${typeLabel(f.type)}, ${humanSize(f.size)}` },
    dataset: { file: f.id },
  },
  h('span', { class: 'file-card-icon' }, icon('file', 24)),
  h('span', { class: 'file-card-text' },
    h('span', { class: 'file-card-name' }, f.name),
    h('span', { class: 'file-card-meta' }, `${typeLabel(f.type)} · ${humanSize(f.size)}`)),
  h('span', { class: 'file-card-dl' }, icon('download', 20)));
  setKeyed(a, 'href', f.url);
  return a;
}

// ---- lightbox ---------------------------------------------------------------------------------

let lightbox = null;

function lightboxParts() {
  if (lightbox) return lightbox;
  const dialog = document.getElementById('dlg-lightbox');
  lightbox = {
    dialog,
    img: dialog.querySelector('.lightbox-img'),
    name: dialog.querySelector('.lightbox-name'),
    download: dialog.querySelector('.lightbox-download'),
    opener: null,
    /** counts openings, so a late key does not set an earlier picture */
    opened: 0,
  };
  // A click on the dim area around the picture (the dialog itself) closes it.
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog || e.target.classList.contains('lightbox-stage')) dialog.close();
  });
  dialog.querySelector('.lightbox-close').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    lightbox.img.removeAttribute('src');
    const opener = lightbox.opener;
    lightbox.opener = null;
    if (opener?.isConnected) opener.focus({ preventScroll: true });
  });
  return lightbox;
}

/** Show the full image `f` over the page; Escape, the close button or a click outside close it. */
export function openLightbox(f, opener = null) {
  const lb = lightboxParts();
  const opened = ++lb.opened;
  lb.opener = opener;
  lb.img.removeAttribute('src');
  lb.img.alt = f.name;
  lb.img.setAttribute('width', f.width);
  lb.img.setAttribute('height', f.height);
  lb.name.textContent = `${f.name} · ${f.width} × ${f.height} · ${humanSize(f.size)}`;
  lb.download.removeAttribute('href');
  lb.download.setAttribute('download', f.name);
  keyedUrl(f.url).then((u) => {
    if (opened !== lb.opened || !lb.dialog.open) return;
    lb.img.src = u;
    lb.download.href = u;
  }, () => {});
  if (!lb.dialog.open) lb.dialog.showModal();
  lb.dialog.querySelector('.lightbox-close').focus();
}
