// view/dialogs.js — the modal dialogs: create a room (public or private), browse and join rooms
// (or the archived ones), start a direct message or a group DM, see a room's members (online
// first, then the offline ones greyed with when they were last seen; display names and pictures;
// a name opens the profile card; the member menu of roomadmin.js for moderators on lower ranks,
// Invite people, Bans), and the account (edit profile, signed-in devices, sign out everywhere,
// password change, export my data, delete my account). Each asks app.js (through `actions`) and shows the answer or
// the error; native <dialog> gives focus trapping and Escape to close.

import { h, formatFull, icon } from './dom.js';
import { GROUP_MAX, NAME_RE, ROOM_SEARCH_DEBOUNCE_MS, errorText } from '../protocol.js';
import { isDirect, roomTitle } from '../store.js';
import { canActOn, openMemberMenu } from './roomadmin.js';
import { personAvatar, seenText } from './people.js';

export class Dialogs {
  /**
   * @param {object} actions createRoom(name, private), listRooms({query, after, archived}) ->
   *                         {rooms, next}, joinRoom(id), selectRoom(id), openDm(name), members(roomId),
   *                         moderate(type, data), invitePeople(roomId), showBans(roomId),
   *                         banMember(roomId, user, report),
   *                         listSessions(), revokeSession(id), signOut(),
   *                         signOutEverywhere(), changePassword(old, new),
   *                         openConversation(names), showProfile(user), editProfile(),
   *                         exportData() -> {blob, name}, deleteAccount()
   *                         (the request ones return promises that reject with {code})
   */
  constructor(actions) {
    this.actions = actions;
    const $ = (id) => document.getElementById(id);
    this.create = $('dlg-create');
    this.browse = $('dlg-browse');
    this.dm = $('dlg-dm');
    this.members = $('dlg-members');
    this.account = $('dlg-account');
    this.all = [this.create, this.browse, this.dm, this.members, this.account];
    for (const dlg of this.all) {
      dlg.addEventListener('click', (e) => {
        if (e.target === dlg) dlg.close(); // a click on the backdrop
        if (e.target.closest('[data-close]')) dlg.close();
      });
    }
    $('create-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitCreate();
    });
    $('dm-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitDm();
    });
    $('password-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitPassword();
    });
    $('account-profile').addEventListener('click', () => {
      this.account.close();
      this.actions.editProfile();
    });
    $('btn-export').addEventListener('click', () => this.exportData());
    $('btn-delete-account').addEventListener('click', () => {
      this.account.close();
      this.actions.deleteAccount();
    });
    $('btn-signout-all').addEventListener('click', () => {
      this.account.close();
      this.actions.signOutEverywhere();
    });
    // The room browser: what it shows and which answer it waits for.
    this.browsing = { store: null, query: '', next: null, shown: 0, generation: 0, timer: 0 };
    $('browse-query').addEventListener('input', () => {
      clearTimeout(this.browsing.timer);
      this.browsing.timer = setTimeout(() => this.searchRooms(), ROOM_SEARCH_DEBOUNCE_MS);
    });
    $('browse-query').addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      e.preventDefault();
      clearTimeout(this.browsing.timer);
      this.searchRooms();
    });
    $('browse-more').addEventListener('click', () => this.loadRooms(false));
    $('browse-archived').addEventListener('change', () => this.searchRooms());
    /** the room the members dialog shows */
    this.membersRoom = null;
    $('members-invite').addEventListener('click', () => this.actions.invitePeople(this.membersRoom));
    $('members-bans').addEventListener('click', () => this.actions.showBans(this.membersRoom));
  }

  closeAll() {
    for (const dlg of this.all) if (dlg.open) dlg.close();
  }

  // ---- create ------------------------------------------------------------------------------

  openCreate() {
    const input = document.getElementById('create-name');
    input.value = '';
    document.getElementById('create-private').checked = false;
    document.getElementById('create-error').textContent = '';
    this.create.showModal();
    input.focus();
  }

  async submitCreate() {
    const input = document.getElementById('create-name');
    const error = document.getElementById('create-error');
    const name = input.value.trim().replace(/^#/, '');
    if (!NAME_RE.test(name)) {
      error.textContent = errorText('invalid_name');
      input.focus();
      return;
    }
    try {
      await this.actions.createRoom(name, document.getElementById('create-private').checked);
      this.create.close();
    } catch (err) {
      error.textContent = err.code === 'name_taken' ? `A room called #${name} already exists.` : errorText(err.code, err.message);
      input.focus();
    }
  }

  // ---- browse ------------------------------------------------------------------------------

  openBrowse(store, { archived = false } = {}) {
    const query = document.getElementById('browse-query');
    query.value = '';
    document.getElementById('browse-archived').checked = archived;
    clearTimeout(this.browsing.timer);
    this.browsing.store = store;
    this.browse.showModal();
    query.focus();
    return this.searchRooms();
  }

  /** Starts over with the search box's text: the first page of matching rooms. */
  searchRooms() {
    this.browsing.query = document.getElementById('browse-query').value.trim().replace(/^#/, '');
    this.browsing.archived = document.getElementById('browse-archived').checked;
    return this.loadRooms(true);
  }

  /**
   * Loads the first page (`fresh`) or the next one, and shows it. An answer that comes after
   * a newer search started is dropped, so fast typing never shows an older search's rooms.
   */
  async loadRooms(fresh) {
    const b = this.browsing;
    const status = document.getElementById('browse-status');
    const list = document.getElementById('browse-list');
    const more = document.getElementById('browse-more');
    const generation = ++b.generation;
    if (fresh) {
      list.replaceChildren();
      b.next = null;
      b.shown = 0;
    }
    more.hidden = true;
    status.textContent = fresh ? (b.query ? 'Searching…' : 'Loading rooms…') : 'Loading more rooms…';
    let page;
    try {
      page = await this.actions.listRooms({ query: b.query, after: fresh ? null : b.next, archived: b.archived });
    } catch (err) {
      if (generation !== b.generation) return;
      status.textContent = errorText(err.code, err.message);
      more.hidden = fresh || !b.next;
      return;
    }
    if (generation !== b.generation) return;
    // Pages come in name order from the server; DMs (first page only) are not browsed here,
    // my private rooms are (after the public ones, on the first page).
    const publics = page.rooms.filter((r) => r.kind === 'public' || r.kind === 'private');
    list.append(...publics.map((room) => this.browseRow(b.store, room)));
    b.shown += publics.length;
    b.next = page.next;
    more.hidden = !b.next;
    status.textContent = this.browseSummary(b.shown, b.query, Boolean(b.next));
    if (fresh && document.activeElement !== document.getElementById('browse-query')) {
      list.querySelector('button')?.focus();
    }
  }

  browseSummary(shown, query, more) {
    const archived = this.browsing.archived ? 'archived ' : '';
    if (!shown) return query ? `No ${archived}rooms match “${query}”.` : `No ${archived}rooms yet.`;
    const rooms = `${shown} ${archived}${shown === 1 ? 'room' : 'rooms'}`;
    const what = query ? `${rooms} matching “${query}”` : rooms;
    return more ? `${what} shown, more below.` : `${what}.`;
  }

  browseRow(store, room) {
    const joined = room.joined || store.rooms.has(room.id);
    const label = joined ? 'Open' : 'Join';
    const btn = h('button', {
      type: 'button',
      class: `btn btn-sm ${joined ? 'btn-ghost' : 'btn-primary'}`,
      attrs: { 'aria-label': `${label} #${room.name}` },
      on: {
        click: async () => {
          btn.disabled = true;
          try {
            if (joined) {
              // An archived room of mine is hidden from the sidebar until asked for.
              if (room.archived && !store.showArchived) store.setShowArchived(true);
              this.actions.selectRoom(room.id);
            } else await this.actions.joinRoom(room.id);
            this.browse.close();
          } catch (err) {
            btn.disabled = false;
            document.getElementById('browse-status').textContent = errorText(err.code, err.message);
          }
        },
      },
    }, label);
    const count = room.member_count ?? 0;
    return h('li', { class: 'browse-row', dataset: { room: room.name } },
      room.kind === 'private'
        ? h('span', { class: 'browse-hash', title: 'Private room' }, icon('lock', 15))
        : h('span', { class: 'browse-hash', attrs: { 'aria-hidden': 'true' } }, '#'),
      h('span', { class: 'browse-name' }, room.name),
      h('span', { class: 'browse-meta' }, `${room.archived ? 'archived · ' : ''}${count} ${count === 1 ? 'member' : 'members'}`),
      btn);
  }

  // ---- direct message ----------------------------------------------------------------------

  openDm(store) {
    const input = document.getElementById('dm-name');
    input.value = '';
    document.getElementById('dm-error').textContent = '';
    const options = [...store.people.values()]
      .filter((u) => u.id !== store.me?.id)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((u) => h('option', { value: u.name }));
    document.getElementById('dm-people').replaceChildren(...options);
    this.dm.showModal();
    input.focus();
  }

  /** One username: a DM; several (commas or spaces between): a group DM of them and me. */
  async submitDm() {
    const input = document.getElementById('dm-name');
    const error = document.getElementById('dm-error');
    const names = [...new Set(input.value.split(/[\s,]+/).map((n) => n.replace(/^@/, '')).filter(Boolean))];
    const bad = names.find((n) => !NAME_RE.test(n));
    if (!names.length || bad) {
      error.textContent = bad ? `“${bad}” is not a username.` : 'Enter a username.';
      input.focus();
      return;
    }
    try {
      await this.actions.openConversation(names);
      this.dm.close();
    } catch (err) {
      error.textContent = err.code === 'group_size'
        ? `A group holds you and 2 to ${GROUP_MAX - 1} others.`
        : err.code === 'invalid_request' ? (names.length === 1 ? 'That is you! Choose someone else.' : `The server refused it: ${err.message}`)
        : err.code === 'unknown_user' ? `Nobody has that name${names.length > 1 ? ` (${err.message})` : ''}.`
        : errorText(err.code, err.message);
      input.focus();
    }
  }

  // ---- members -----------------------------------------------------------------------------

  async openMembers(store, roomId) {
    const room = store.room(roomId);
    if (!room) return;
    this.membersRoom = roomId;
    const title = document.getElementById('dlg-members-title');
    title.textContent = isDirect(room.info) ? 'Conversation' : `Members of #${roomTitle(room.info)}`;
    document.getElementById('members-report').textContent = '';
    const mod = store.canModerate(roomId);
    document.getElementById('members-invite').hidden = room.info.kind !== 'private' || room.info.archived === true;
    document.getElementById('members-bans').hidden = !mod || isDirect(room.info);
    if (!this.members.open) this.members.showModal();
    await this.loadMembers(store, roomId);
  }

  /** (Re)load the members list of the open members dialog. */
  async loadMembers(store, roomId) {
    const status = document.getElementById('members-status');
    const list = document.getElementById('members-list');
    list.replaceChildren();
    status.textContent = 'Loading…';
    let members;
    try {
      members = await this.actions.members(roomId);
    } catch (err) {
      status.textContent = errorText(err.code, err.message);
      return;
    }
    if (this.membersRoom !== roomId) return;
    // Online first, then offline; each by name (the server sorts by name).
    const isOn = (m) => m.online || store.isOnline(m.user.id);
    const sorted = [...members.filter(isOn), ...members.filter((m) => !isOn(m))];
    const online = sorted.filter(isOn).length;
    status.textContent = `${members.length} ${members.length === 1 ? 'member' : 'members'}, ${online} online`;
    list.replaceChildren(...sorted.map((m) => this.memberRow(store, roomId, m)));
  }

  memberRow(store, roomId, m) {
    const status = document.getElementById('members-status');
    const self = m.user.id === store.me?.id;
    const isOnline = m.online || store.isOnline(m.user.id);
    const role = m.role ?? (self ? store.room(roomId)?.info.role : store.room(roomId)?.roles.get(m.user.id));
    const shown = m.display_name || m.user.name;
    const report = (text, isError = false) => {
      const el = document.getElementById('members-report');
      el.textContent = text;
      el.classList.toggle('error', isError);
      // The list changes after a kick or ban (and a role is shown): load it again.
      if (!isError && this.members.open && this.membersRoom === roomId) this.loadMembers(store, roomId);
    };
    // A bot has no presence: no dot, never greyed as offline.
    const bot = m.bot || m.user.bot;
    return h('li', { class: `browse-row member-row${isOnline || bot ? '' : ' offline'}`, dataset: { member: m.user.name } },
      personAvatar(store, m.user, bot ? { size: 'sm' } : { online: isOnline, size: 'sm' }),
      h('span', { class: 'browse-name' },
        h('button', {
          type: 'button',
          class: 'person-link',
          title: `Profile of ${shown}`,
          attrs: { 'aria-label': `Profile of ${shown} (@${m.user.name})` },
          on: { click: () => this.actions.showProfile(m.user) },
        }, shown),
        // Before the @name, which is what gives way when the row is narrow.
        bot ? h('span', { class: 'bot-tag' }, 'bot') : null,
        shown !== m.user.name ? h('span', { class: 'member-username' }, `@${m.user.name}`) : null,
        self ? h('span', { class: 'you-tag' }, 'you') : null,
        role && role !== 'member' ? h('span', { class: 'role-tag' }, role) : null),
      h('span', { class: 'browse-meta member-seen' }, seenText(m, isOnline)),
      self ? null : h('button', {
        type: 'button',
        class: 'btn btn-sm btn-ghost',
        attrs: { 'aria-label': `Message ${m.user.name}` },
        on: {
          click: async () => {
            try {
              await this.actions.openDm(m.user.name);
              this.members.close();
            } catch (err) {
              status.textContent = errorText(err.code, err.message);
            }
          },
        },
      }, 'Message'),
      canActOn(store, roomId, m.user) ? h('button', {
        type: 'button',
        class: 'icon-btn icon-btn-sm member-menu-btn',
        title: `Actions for ${m.user.name}`,
        attrs: { 'aria-label': `Actions for ${m.user.name}`, 'aria-haspopup': 'menu' },
        on: {
          click: (e) => openMemberMenu(e.currentTarget, {
            store,
            roomId,
            user: m.user,
            actions: this.actions,
            report,
            ban: (user) => this.actions.banMember(roomId, user, report),
          }),
        },
      }, '…') : null);
  }

  // ---- account -----------------------------------------------------------------------------

  async openAccount(store) {
    const guest = Boolean(store.me?.guest);
    const form = document.getElementById('password-form');
    form.hidden = guest; // a guest has no password
    form.reset();
    document.getElementById('password-error').textContent = '';
    document.getElementById('password-status').textContent = '';
    document.getElementById('export-status').textContent = '';
    this.account.showModal();
    await this.loadSessions();
  }

  async loadSessions() {
    const status = document.getElementById('sessions-status');
    const list = document.getElementById('sessions-list');
    list.replaceChildren();
    status.textContent = 'Loading devices…';
    let sessions;
    try {
      sessions = await this.actions.listSessions();
    } catch (err) {
      status.textContent = errorText(err.code, err.message);
      return;
    }
    status.textContent = `${sessions.length} signed-in ${sessions.length === 1 ? 'device' : 'devices'}`;
    list.replaceChildren(...sessions.map((s) => this.sessionRow(s)));
  }

  sessionRow(s) {
    const label = s.label || 'Unknown device';
    const btn = h('button', {
      type: 'button',
      class: 'btn btn-sm btn-ghost',
      attrs: { 'aria-label': s.current ? 'Sign out on this device' : `Sign out ${label}` },
      on: {
        click: async () => {
          if (s.current) {
            this.account.close();
            this.actions.signOut();
            return;
          }
          btn.disabled = true;
          try {
            await this.actions.revokeSession(s.id);
            await this.loadSessions();
          } catch (err) {
            btn.disabled = false;
            document.getElementById('sessions-status').textContent = errorText(err.code, err.message);
          }
        },
      },
    }, 'Sign out');
    return h('li', { class: 'browse-row', dataset: { sessionId: s.id } },
      h('span', { class: 'browse-name', title: label },
        label, s.current ? h('span', { class: 'you-tag' }, 'this device') : null),
      h('span', { class: 'browse-meta', title: `Signed in ${formatFull(s.created_at)}` },
        `last used ${formatFull(s.last_used_at)}`),
      btn);
  }

  /** `GET /api/account/export`, saved as a file through a temporary link to a Blob. */
  async exportData() {
    const status = document.getElementById('export-status');
    const btn = document.getElementById('btn-export');
    btn.disabled = true;
    status.textContent = 'Preparing your data…';
    try {
      const { blob, name } = await this.actions.exportData();
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      status.textContent = `Saved as ${name}.`;
    } catch (err) {
      status.textContent = errorText(err.code, err.message);
    } finally {
      btn.disabled = false;
    }
  }

  async submitPassword() {
    const oldInput = document.getElementById('password-old');
    const newInput = document.getElementById('password-new');
    const error = document.getElementById('password-error');
    const status = document.getElementById('password-status');
    error.textContent = '';
    status.textContent = '';
    try {
      await this.actions.changePassword(oldInput.value, newInput.value);
    } catch (err) {
      error.textContent = err.code === 'invalid_credentials'
        ? 'Your current password is wrong.'
        : errorText(err.code, err.message);
      (err.code === 'weak_password' ? newInput : oldInput).focus();
      return;
    }
    document.getElementById('password-form').reset();
    status.textContent = 'Password changed. Your other devices were signed out.';
    await this.loadSessions();
  }
}
