// view/roomadmin.js — a room's details and the powers over it: the room info panel (kind,
// topic, description, my role; Members, Invite people, Settings, Bans), the settings dialog
// (name, topic, description; archiving for owners and admins), inviting by username, the bans
// list with Unban, the member menu of the members list (mute, unmute, kick, ban with a reason,
// roles), and the admins' audit log, page by page. The server decides who may do what: the
// menus offer what the rules of docs/protocol.md allow as far as this client can tell, and
// show the server's error when it refuses. Acts only through `actions`; text only through
// text nodes.

import { h, avatar, formatFull } from './dom.js';
import {
  ADMIN_RANK, DESCRIPTION_MAX, MUTE_CHOICES, NAME_RE, REASON_MAX, ROLE_RANK, Req, TOPIC_MAX,
  describeRoomEvent, errorText,
} from '../protocol.js';
import { roomTitle } from '../store.js';
import { openMenu } from './message-actions.js';

const ROLE_WORD = { member: 'Member', moderator: 'Moderator', owner: 'Owner' };

/** Wire a dialog's backdrop click and its [data-close] buttons. */
function closable(dlg) {
  dlg.addEventListener('click', (e) => {
    if (e.target === dlg) dlg.close();
    if (e.target.closest('[data-close]')) dlg.close();
  });
}

function show(dlg) {
  if (!dlg.open) dlg.showModal();
}

/** A refusal in words: the server's code, with the wording people need for the usual ones. */
function refusal(err, name) {
  switch (err.code) {
    case 'forbidden': return `The server refused: you may not do that${name ? ` to ${name}` : ''}.`;
    case 'not_member': return name ? `${name} is not a member of this room.` : errorText('not_member');
    case 'unknown_user': return name ? `Nobody is called ${name}.` : errorText('unknown_user');
    default: return errorText(err.code, err.message);
  }
}

/**
 * The member menu (the "…" by a member in the members list): what a moderator, owner or admin
 * may do to someone of a lower rank. `report(text, isError)` says how it went.
 * @param {Element} anchor
 * @param {object} o {store, roomId, user, actions: {moderate(type, data)}, report, ban(user)}
 */
export function openMemberMenu(anchor, { store, roomId, user, actions, report, ban }) {
  const myRank = store.rank(roomId);
  const known = store.rooms.get(roomId)?.roles.get(user.id) ?? null;
  const run = (type, data, done) => () => actions.moderate(type, { room: roomId, user: user.name, ...data })
    .then((reply) => report(reply.entry === null ? `Nothing to change: ${user.name} was already so.` : done), (err) => report(refusal(err, user.name), true));
  const items = MUTE_CHOICES.map((c) => ({
    label: `Mute for ${c.label}`,
    run: run(Req.ROOM_MUTE, { minutes: c.minutes }, `${user.name} is muted for ${c.label}.`),
  }));
  items.push({ label: 'Unmute', run: run(Req.ROOM_UNMUTE, {}, `${user.name} may post again.`) });
  if (myRank >= ROLE_RANK.owner) {
    if (known !== 'moderator') items.push({ label: 'Make moderator', run: run(Req.ROOM_ROLE, { role: 'moderator' }, `${user.name} is a moderator now.`) });
    if (known !== 'member') items.push({ label: 'Make member', run: run(Req.ROOM_ROLE, { role: 'member' }, `${user.name} is a member now.`) });
    if (myRank >= ADMIN_RANK && known !== 'owner') items.push({ label: 'Make owner', run: run(Req.ROOM_ROLE, { role: 'owner' }, `${user.name} is an owner now.`) });
  }
  items.push({ label: 'Kick', danger: true, run: run(Req.ROOM_KICK, {}, `${user.name} was removed from the room.`) });
  items.push({ label: 'Ban…', danger: true, run: () => ban(user) });
  openMenu(anchor, items, { label: `Actions for ${user.name}` });
}

/** Whether the member menu is offered for `user` in the room: I moderate there, it is not me,
 *  and they are not known to rank as high as I do (the server checks again). */
export function canActOn(store, roomId, user) {
  if (!store.canModerate(roomId) || user.id === store.me?.id) return false;
  const theirs = store.rankOf(roomId, user.id);
  return theirs === null || theirs < store.rank(roomId);
}

export class RoomAdminView {
  /**
   * @param {object} actions moderate(type, data) -> {entry}, invite(roomId, name), bans(roomId),
   *                         audit(before) -> {entries, next}, showMembers(roomId)
   */
  constructor(actions) {
    this.actions = actions;
    const $ = (id) => document.getElementById(id);
    this.info = $('dlg-room-info');
    this.settings = $('dlg-settings');
    this.invite = $('dlg-invite');
    this.ban = $('dlg-ban');
    this.bans = $('dlg-bans');
    this.audit = $('dlg-audit');
    this.all = [this.info, this.settings, this.invite, this.ban, this.bans, this.audit];
    for (const dlg of this.all) closable(dlg);
    /** the room the info panel, settings, invite and bans dialogs are about */
    this.roomId = null;
    this.store = null;
    /** the member the ban dialog is about, and what to do once banned */
    this.banning = null;
    this.auditNext = null;

    $('room-info-members').addEventListener('click', () => {
      this.info.close();
      actions.showMembers(this.roomId);
    });
    $('room-info-invite').addEventListener('click', () => this.openInvite(this.store, this.roomId));
    $('room-info-settings').addEventListener('click', () => this.openSettings(this.store, this.roomId));
    $('room-info-bans').addEventListener('click', () => this.openBans(this.store, this.roomId));
    $('settings-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitSettings();
    });
    $('invite-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitInvite();
    });
    $('ban-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitBan();
    });
    $('audit-more').addEventListener('click', () => this.loadAudit(false));
  }

  closeAll() {
    for (const dlg of this.all) if (dlg.open) dlg.close();
  }

  /** Keep an open info panel current (a topic changed, my role changed, the room went). */
  render(store, topics) {
    this.store = store;
    if (!this.info.open || this.roomId === null) return;
    if (!store.room(this.roomId)) {
      this.closeAll();
      return;
    }
    if (topics.has('all') || topics.has('rooms') || topics.has('session')) this.fillInfo(store);
  }

  // ---- the info panel -----------------------------------------------------------------------

  openInfo(store, roomId) {
    if (!store.room(roomId)) return;
    this.store = store;
    this.roomId = roomId;
    this.fillInfo(store);
    show(this.info);
  }

  fillInfo(store) {
    const room = store.room(this.roomId);
    if (!room) return;
    const info = room.info;
    const $ = (id) => document.getElementById(id);
    $('dlg-room-info-title').textContent = `#${roomTitle(info)}`;
    const kind = info.kind === 'private' ? 'Private room (invite only)' : 'Public room';
    const role = store.isAdmin ? 'Server admin' : ROLE_WORD[info.role] ?? 'Member';
    $('room-info-kind').textContent = `${kind}${info.archived ? ' · archived (read-only)' : ''} · you: ${role}`;
    $('room-info-topic').textContent = info.topic || 'No topic.';
    $('room-info-topic').classList.toggle('empty', !info.topic);
    $('room-info-description').textContent = info.description || 'No description.';
    $('room-info-description').classList.toggle('empty', !info.description);
    const mod = store.canModerate(room.id);
    $('room-info-invite').hidden = info.kind !== 'private' || info.archived === true;
    $('room-info-settings').hidden = !mod;
    $('room-info-bans').hidden = !mod;
  }

  // ---- settings -----------------------------------------------------------------------------

  openSettings(store, roomId) {
    const room = store.room(roomId);
    if (!room) return;
    this.store = store;
    this.roomId = roomId;
    const $ = (id) => document.getElementById(id);
    $('settings-name').value = room.info.name ?? '';
    $('settings-topic').value = room.info.topic ?? '';
    $('settings-description').value = room.info.description ?? '';
    $('settings-archived').checked = room.info.archived === true;
    $('settings-archived-row').hidden = store.rank(roomId) < ROLE_RANK.owner;
    $('settings-error').textContent = '';
    $('dlg-settings-title').textContent = `Settings of #${roomTitle(room.info)}`;
    show(this.settings);
    $('settings-topic').focus();
    this.actions.openWebhooks?.(roomId);
  }

  async submitSettings() {
    const $ = (id) => document.getElementById(id);
    const room = this.store?.room(this.roomId);
    const error = $('settings-error');
    if (!room) return;
    const info = room.info;
    const name = $('settings-name').value.trim().replace(/^#/, '');
    const topic = $('settings-topic').value.trim();
    const description = $('settings-description').value.trim();
    const archived = $('settings-archived').checked;
    if (!NAME_RE.test(name)) {
      error.textContent = errorText('invalid_name');
      $('settings-name').focus();
      return;
    }
    if ([...topic].length > TOPIC_MAX || [...description].length > DESCRIPTION_MAX) {
      error.textContent = `The topic takes up to ${TOPIC_MAX} characters, the description up to ${DESCRIPTION_MAX}.`;
      return;
    }
    const changes = {};
    if (name !== info.name) changes.name = name;
    if (topic !== (info.topic ?? '')) changes.topic = topic;
    if (description !== (info.description ?? '')) changes.description = description;
    if (!$('settings-archived-row').hidden && archived !== (info.archived === true)) changes.archived = archived;
    if (!Object.keys(changes).length) {
      this.settings.close();
      return;
    }
    error.textContent = '';
    try {
      await this.actions.moderate(Req.ROOM_UPDATE, { room: room.id, ...changes });
      this.settings.close();
    } catch (err) {
      error.textContent = err.code === 'name_taken' ? `A room called #${name} already exists.` : refusal(err);
    }
  }

  // ---- invitations --------------------------------------------------------------------------

  openInvite(store, roomId) {
    const room = store.room(roomId);
    if (!room) return;
    this.store = store;
    this.roomId = roomId;
    const $ = (id) => document.getElementById(id);
    $('dlg-invite-title').textContent = `Invite people to #${roomTitle(room.info)}`;
    $('invite-name').value = '';
    $('invite-error').textContent = '';
    $('invite-status').textContent = '';
    const options = [...store.people.values()]
      .filter((u) => u.id !== store.me?.id)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((u) => h('option', { value: u.name }));
    $('dm-people').replaceChildren(...options);
    show(this.invite);
    $('invite-name').focus();
  }

  async submitInvite() {
    const $ = (id) => document.getElementById(id);
    const input = $('invite-name');
    const error = $('invite-error');
    const status = $('invite-status');
    const name = input.value.trim().replace(/^@/, '');
    error.textContent = '';
    status.textContent = '';
    if (!NAME_RE.test(name)) {
      error.textContent = 'Enter a username.';
      input.focus();
      return;
    }
    try {
      await this.actions.invite(this.roomId, name);
    } catch (err) {
      error.textContent = err.code === 'invalid_request' ? `${name} is already a member.`
        : err.code === 'banned' ? `${name} is banned from this room: lift the ban first.`
          : refusal(err, name);
      input.focus();
      return;
    }
    status.textContent = `Invited ${name}. They can accept or decline.`;
    input.value = '';
    input.focus();
  }

  // ---- bans ---------------------------------------------------------------------------------

  /** Ask for a reason, then ban `user` from the room; `report(text, isError)` says how it went. */
  openBan(store, roomId, user, report) {
    this.store = store;
    this.banning = { roomId, user, report };
    const $ = (id) => document.getElementById(id);
    $('dlg-ban-title').textContent = `Ban ${user.name}?`;
    $('ban-reason').value = '';
    $('ban-error').textContent = '';
    show(this.ban);
    $('ban-reason').focus();
  }

  async submitBan() {
    const b = this.banning;
    if (!b) return;
    const reason = document.getElementById('ban-reason').value.trim();
    if ([...reason].length > REASON_MAX) {
      document.getElementById('ban-error').textContent = `A reason takes up to ${REASON_MAX} characters.`;
      return;
    }
    const data = { room: b.roomId, user: b.user.name };
    if (reason) data.reason = reason;
    try {
      const reply = await this.actions.moderate(Req.ROOM_BAN, data);
      this.ban.close();
      b.report(reply.entry === null ? `${b.user.name} was already banned.` : `${b.user.name} is banned.`);
    } catch (err) {
      document.getElementById('ban-error').textContent = refusal(err, b.user.name);
    }
  }

  async openBans(store, roomId) {
    const room = store.room(roomId);
    if (!room) return;
    this.store = store;
    this.roomId = roomId;
    document.getElementById('dlg-bans-title').textContent = `Banned from #${roomTitle(room.info)}`;
    show(this.bans);
    await this.loadBans();
  }

  async loadBans() {
    const status = document.getElementById('bans-status');
    const list = document.getElementById('bans-list');
    const roomId = this.roomId;
    list.replaceChildren();
    status.textContent = 'Loading…';
    let bans;
    try {
      bans = await this.actions.bans(roomId);
    } catch (err) {
      status.textContent = refusal(err);
      return;
    }
    status.textContent = bans.length ? `${bans.length} banned` : 'Nobody is banned from this room.';
    list.replaceChildren(...bans.map((ban) => {
      const btn = h('button', {
        type: 'button',
        class: 'btn btn-sm btn-ghost',
        attrs: { 'aria-label': `Unban ${ban.user.name}` },
        on: {
          click: async () => {
            btn.disabled = true;
            try {
              await this.actions.moderate(Req.ROOM_UNBAN, { room: roomId, user: ban.user.name });
              await this.loadBans();
              status.textContent = `${ban.user.name} may join again. ${status.textContent}`;
            } catch (err) {
              btn.disabled = false;
              status.textContent = refusal(err, ban.user.name);
            }
          },
        },
      }, 'Unban');
      return h('li', { class: 'browse-row', dataset: { user: ban.user.name } },
        avatar(ban.user, { size: 'sm' }),
        h('span', { class: 'ban-text' },
          h('span', { class: 'browse-name' }, ban.user.name),
          h('span', { class: 'browse-meta', title: formatFull(ban.ts) },
            `by ${ban.by.name}${ban.reason ? `: ${ban.reason}` : ''}`)),
        btn);
    }));
  }

  // ---- the audit log (admins) ---------------------------------------------------------------

  openAudit() {
    show(this.audit);
    return this.loadAudit(true);
  }

  async loadAudit(fresh) {
    const status = document.getElementById('audit-status');
    const list = document.getElementById('audit-list');
    const more = document.getElementById('audit-more');
    if (fresh) {
      list.replaceChildren();
      this.auditNext = null;
    }
    more.hidden = true;
    status.textContent = 'Loading…';
    let page;
    try {
      page = await this.actions.audit(fresh ? null : this.auditNext);
    } catch (err) {
      status.textContent = refusal(err);
      more.hidden = fresh || !this.auditNext;
      return;
    }
    list.append(...page.entries.map((entry) => this.auditRow(entry)));
    this.auditNext = page.next ?? null;
    more.hidden = this.auditNext === null;
    const n = list.children.length;
    status.textContent = n ? `${n} ${n === 1 ? 'entry' : 'entries'}, newest first${this.auditNext ? ', more below' : ''}.` : 'Nothing logged yet.';
  }

  auditRow(entry) {
    const room = entry.room != null ? this.store?.room(entry.room) : null;
    const where = entry.room != null ? ` in ${room ? `#${roomTitle(room.info)}` : `room ${entry.room}`}` : '';
    return h('li', { class: 'audit-row', dataset: { action: entry.action } },
      h('span', { class: 'audit-text' }, `${auditText(entry)}${where}`),
      h('time', { class: 'browse-meta', dateTime: new Date(entry.ts).toISOString() }, formatFull(entry.ts)));
  }
}

/** One audit entry in words: a room event as the timeline says it, else its action. */
function auditText(entry) {
  const actor = entry.actor?.name ?? 'someone';
  const target = entry.target?.name ?? 'someone';
  let detail = null;
  try {
    detail = entry.detail ? JSON.parse(entry.detail) : null;
  } catch {
    detail = null;
  }
  switch (entry.action) {
    case 'delete': return `${actor} deleted a message of ${target}${detail?.seq ? ` (#${detail.seq})` : ''}`;
    case 'admin': return `${actor} made ${target} a server admin`;
    case 'unadmin': return `${actor} took server admin from ${target}`;
    case 'deactivate': return `${actor} deactivated ${target}`;
    default:
      if (detail?.op) return describeRoomEvent({ sender: entry.actor, ts: entry.ts, change: detail });
      return `${actor}: ${entry.action}${entry.target ? ` ${target}` : ''}`;
  }
}
