// view/markdown.js — a message body as DOM: a small, safe subset of Markdown (bold, italic,
// strike, inline code, fenced code blocks, quotes, lists, links) and @mentions. Built only from
// createElement and text nodes: the text is never parsed as HTML, so markup in a message is
// shown as the characters it is. Links only to http:, https: and mailto: URLs; anything else
// (javascript:, data:, ...) stays plain text. The stored text is not changed.

/** Quotes inside quotes deeper than this are shown as text. */
const MAX_QUOTE_DEPTH = 3;
/** Emphasis inside emphasis deeper than this is shown as text (a bound on the work done). */
const MAX_INLINE_DEPTH = 6;

const FENCE_RE = /^\s{0,3}```/;
const QUOTE_RE = /^\s{0,3}> ?/;
const BULLET_RE = /^\s{0,3}[-*+]\s+(.*)$/;
const ORDERED_RE = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;

/**
 * A message body as a DocumentFragment. `me` (the signed-in user's name) marks mentions of
 * that name, and `@room`, with the class `me` as well as `mention`.
 * @param {string} text
 * @param {{me?: string|null}} [opts]
 */
export function renderBody(text, { me = null } = {}) {
  const ctx = { me: me ? me.toLowerCase() : null };
  const frag = document.createDocumentFragment();
  const blocks = parseBlocks(String(text ?? '').split('\n'), 0);
  // A body that is one paragraph (most messages) is its inline content alone, newlines kept.
  if (blocks.length === 1 && blocks[0].kind === 'p') {
    appendInline(frag, blocks[0].text, ctx, 0);
    return frag;
  }
  for (const block of blocks) frag.append(buildBlock(block, ctx));
  return frag;
}

/** Inline Markdown only (no blocks): for one-line places such as a reply preview. */
export function renderInline(text, { me = null } = {}) {
  const frag = document.createDocumentFragment();
  appendInline(frag, String(text ?? ''), { me: me ? me.toLowerCase() : null }, 0);
  return frag;
}

// ---- blocks ---------------------------------------------------------------------------------

/** Lines -> [{kind: 'p'|'code'|'quote'|'ul'|'ol', ...}]. Blank lines end a paragraph. */
function parseBlocks(lines, depth) {
  const blocks = [];
  let para = [];
  const endPara = () => {
    if (para.length) blocks.push({ kind: 'p', text: para.join('\n') });
    para = [];
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (FENCE_RE.test(line)) {
      endPara();
      const body = [];
      i++;
      while (i < lines.length && !/^\s{0,3}```\s*$/.test(lines[i])) body.push(lines[i++]);
      i++; // the closing fence (or the end of the text: an unclosed block runs to the end)
      blocks.push({ kind: 'code', text: body.join('\n') });
      continue;
    }
    if (QUOTE_RE.test(line) && depth < MAX_QUOTE_DEPTH) {
      endPara();
      const inner = [];
      while (i < lines.length && QUOTE_RE.test(lines[i])) inner.push(lines[i++].replace(QUOTE_RE, ''));
      blocks.push({ kind: 'quote', blocks: parseBlocks(inner, depth + 1) });
      continue;
    }
    const listKind = BULLET_RE.test(line) ? 'ul' : ORDERED_RE.test(line) ? 'ol' : null;
    if (listKind) {
      endPara();
      const re = listKind === 'ul' ? BULLET_RE : ORDERED_RE;
      const items = [];
      let start = 1;
      while (i < lines.length && re.test(lines[i])) {
        const m = lines[i++].match(re);
        if (listKind === 'ol' && items.length === 0) start = Number(m[1]);
        items.push(listKind === 'ul' ? m[1] : m[2]);
      }
      blocks.push({ kind: listKind, items, start });
      continue;
    }
    if (line.trim() === '') endPara();
    else para.push(line);
    i++;
  }
  endPara();
  return blocks;
}

function buildBlock(block, ctx) {
  switch (block.kind) {
    case 'code': {
      const pre = document.createElement('pre');
      pre.className = 'md-code';
      const code = document.createElement('code');
      code.textContent = block.text;
      pre.append(code);
      return pre;
    }
    case 'quote': {
      const q = document.createElement('blockquote');
      q.className = 'md-quote';
      for (const inner of block.blocks) q.append(buildBlock(inner, ctx));
      return q;
    }
    case 'ul':
    case 'ol': {
      const list = document.createElement(block.kind);
      list.className = 'md-list';
      if (block.kind === 'ol' && block.start !== 1) list.start = block.start;
      for (const item of block.items) {
        const li = document.createElement('li');
        appendInline(li, item, ctx, 0);
        list.append(li);
      }
      return list;
    }
    default: {
      const p = document.createElement('p');
      p.className = 'md-p';
      appendInline(p, block.text, ctx, 0);
      return p;
    }
  }
}

// ---- inline ---------------------------------------------------------------------------------

// One alternation, tried left to right at each position; the groups say which rule matched.
const INLINE_RE = new RegExp([
  /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/.source, // 1,2: `code` (``code with ` inside``)
  /\[([^\]\n]+)\]\(([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)\)/.source, // 3,4: [text](url)
  /\*\*(?=\S)([\s\S]*?\S)\*\*(?!\*)/.source, // 5: **bold**
  /~~(?=\S)([\s\S]*?\S)~~/.source, // 6: ~~strike~~
  /\*(?=[^\s*])([^*]*?[^\s*])\*(?!\*)/.source, // 7: *italic*
  /(?<![\p{L}\p{N}_])_(?=[^\s_])([^_]*?[^\s_])_(?![\p{L}\p{N}_])/.source, // 8: _italic_
  /(https?:\/\/[^\s<>"'`]+)/.source, // 9: a bare URL
  /(?<![\p{L}\p{N}_.@-])@([A-Za-z0-9_][A-Za-z0-9_.-]*)/.source, // 10: @mention
].join('|'), 'giu');

const TRAILING = /[.,;:!?)\]}'"]+$/;
const LINK_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

/** Appends `text` as inline nodes (emphasis, code, links, mentions, text) to `parent`. */
function appendInline(parent, text, ctx, depth) {
  if (depth > MAX_INLINE_DEPTH) {
    parent.append(document.createTextNode(text));
    return;
  }
  const re = new RegExp(INLINE_RE.source, INLINE_RE.flags);
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    const start = m.index;
    let end = re.lastIndex;
    let node = null;
    if (m[2] !== undefined) {
      node = el('code', 'md-inline-code');
      node.textContent = m[2];
    } else if (m[3] !== undefined) {
      const href = ctx.noLinks ? null : safeHref(m[4], LINK_PROTOCOLS);
      if (href) {
        node = link(href);
        // Link text may be emphasised, but holds no further links.
        appendInline(node, m[3], { ...ctx, noLinks: true }, depth + 1);
      } else {
        // Not a URL we link to: the text as written, brackets and all. Its inner text still
        // gets the other rules, but never a link.
        re.lastIndex = start + 1;
        continue;
      }
    } else if (m[5] !== undefined) {
      node = el('strong');
      appendInline(node, m[5], ctx, depth + 1);
    } else if (m[6] !== undefined) {
      node = el('del');
      appendInline(node, m[6], ctx, depth + 1);
    } else if (m[7] !== undefined || m[8] !== undefined) {
      node = el('em');
      appendInline(node, m[7] ?? m[8], ctx, depth + 1);
    } else if (m[9] !== undefined) {
      let raw = m[9];
      const trail = raw.match(TRAILING);
      // Keep a closing bracket that belongs to the URL, as in wiki links: (...(x)).
      if (trail && !(raw.includes('(') && trail[0].startsWith(')'))) raw = raw.slice(0, -trail[0].length);
      const href = ctx.noLinks ? null : safeHref(raw, new Set(['http:', 'https:']));
      if (!href) {
        re.lastIndex = start + m[9].length;
        continue;
      }
      node = link(href);
      node.textContent = raw;
      end = start + raw.length;
      re.lastIndex = end;
    } else if (m[10] !== undefined) {
      const name = m[10].replace(/[.-]+$/, '');
      end = start + 1 + name.length;
      re.lastIndex = end;
      node = el('span', 'mention');
      const lower = name.toLowerCase();
      if (lower === 'room' || (ctx.me && lower === ctx.me)) node.classList.add('me');
      node.dataset.mention = name;
      node.textContent = `@${name}`;
    }
    if (start > last) parent.append(textOf(text.slice(last, start)));
    parent.append(node);
    last = end;
  }
  if (last < text.length) parent.append(textOf(text.slice(last)));
}

function el(tag, className) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  return e;
}

function textOf(s) {
  return document.createTextNode(s);
}

function link(href) {
  const a = document.createElement('a');
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

/** The URL as an href when it parses and its protocol is one of `allowed`; otherwise null. */
function safeHref(raw, allowed) {
  try {
    const url = new URL(raw);
    return allowed.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}
