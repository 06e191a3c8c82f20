// view/sidebar.js — the sidebar: my invitations (Accept, Decline), rooms (a lock on private
// ones; archived ones only when asked for, with "Archived rooms") and direct messages and group
// DMs (named by their people's display names, with unread counts; greyed while nobody there is
// online), the people online (with presence dots; choosing one opens a DM), my own card (my
// profile, the account dialog and sign-out), and the phone drawer that holds all of it. Reads the store; acts only through `actions`.

import { h, icon } from './dom.js';
import { isDirect } from '../store.js';
import { personAvatar } from './people.js';

export class SidebarView {
  /**
   * @param {object} actions selectRoom(id), openDm(name), createRoom(), browseRooms(), newDm(),
   *                         account(), signOut(), acceptInvite(id), declineInvite(id),
   *                         toggleArchived(), auditLog()
   */
  constructor(actions) {
    this.actions = actions;
    const $ = (id) => document.getElementById(id);
    this.sidebar = $('sidebar');
    this.roomList = $('room-list');
    this.dmList = $('dm-list');
    this.dmEmpty = $('dm-empty');
    this.peopleList = $('people-list');
    this.onlineCount = $('online-count');
    this.meAvatar = $('me-avatar');
    this.meName = $('me-name');
    this.meStatus = $('me-status');
    this.openBtn = $('drawer-open');
    this.closeBtn = $('drawer-close');
    this.backdrop = $('backdrop');
    this.drawerBadge = $('drawer-badge');
    this.room = $('room');
    this.invitesSection = $('invites-section');
    this.inviteList = $('invite-list');
    this.archivedBtn = $('btn-archived');
    this.auditBtn = $('btn-audit');
    this.archivedBtn.addEventListener('click', () => actions.toggleArchived());
    this.auditBtn.addEventListener('click', () => actions.auditLog());
    this.phone = window.matchMedia('(max-width: 760px)');

    $('btn-create').addEventListener('click', () => actions.createRoom());
    $('btn-browse').addEventListener('click', () => actions.browseRooms());
    $('btn-new-dm').addEventListener('click', () => actions.newDm());
    $('btn-account').addEventListener('click', () => actions.account());
    $('btn-profile').addEventListener('click', () => actions.profile());
    $('btn-signout').addEventListener('click', () => actions.signOut());
    this.openBtn.addEventListener('click', () => this.openDrawer());
    this.closeBtn.addEventListener('click', () => this.closeDrawer());
    this.backdrop.addEventListener('click', () => this.closeDrawer());
    this.sidebar.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.isDrawerOpen()) this.closeDrawer();
    });
    this.phone.addEventListener('change', () => this.closeDrawer(false));
  }

  render(store, topics) {
    const all = topics.has('all') || topics.has('session');
    // The connection's status decides whether presence is known (dots green/grey or unknown).
    const presence = topics.has('presence') || topics.has('connection');
    if (all || topics.has('rooms') || topics.has('current') || presence || topics.has('read') || topics.has('profiles')) {
      this.keepFocus(() => this.renderRooms(store));
    }
    if (all || presence || topics.has('rooms') || topics.has('profiles')) {
      this.keepFocus(() => this.renderPeople(store));
    }
    if (all || topics.has('connection') || topics.has('session') || topics.has('profiles')) this.renderMe(store);
    if (all || topics.has('invites') || topics.has('rooms')) this.keepFocus(() => this.renderInvites(store));
  }

  renderInvites(store) {
    const invites = [...store.invites.values()].sort((a, b) => a.ts - b.ts);
    this.invitesSection.hidden = invites.length === 0;
    this.inviteList.replaceChildren(...invites.map((inv) => {
      const busy = (e) => {
        for (const b of e.currentTarget.parentElement.querySelectorAll('button')) b.disabled = true;
      };
      return h('li', { class: 'invite', dataset: { room: inv.name } },
        h('span', { class: 'invite-text' },
          h('span', { class: 'invite-room' }, icon('lock', 13), h('span', {}, inv.name)),
          h('span', { class: 'invite-by' }, `from ${inv.by?.name ?? 'someone'}`)),
        h('span', { class: 'invite-actions' },
          h('button', {
            type: 'button',
            class: 'btn btn-sm btn-primary',
            attrs: { 'aria-label': `Accept the invitation to ${inv.name}` },
            dataset: { key: `invite-accept-${inv.room}` },
            on: { click: (e) => { busy(e); this.actions.acceptInvite(inv.room); } },
          }, 'Accept'),
          h('button', {
            type: 'button',
            class: 'btn btn-sm btn-ghost',
            attrs: { 'aria-label': `Decline the invitation to ${inv.name}` },
            dataset: { key: `invite-decline-${inv.room}` },
            on: { click: (e) => { busy(e); this.actions.declineInvite(inv.room); } },
          }, 'Decline')));
    }));
  }

  renderRooms(store) {
    const current = store.currentRoomId;
    const rooms = store.sortedRooms(['public', 'private']);
    // Archived rooms are out of the way unless asked for (or open now).
    const archivedCount = rooms.filter((r) => r.info.archived).length;
    const shown = rooms.filter((r) => !r.info.archived || store.showArchived || r.id === current);
    const roomItems = shown.map((room) =>
      this.navItem(store, room, current, room.info.kind === 'private'
        ? h('span', { class: 'nav-hash nav-lock', title: 'Private room' }, icon('lock', 14))
        : h('span', { class: 'nav-hash', attrs: { 'aria-hidden': 'true' } }, '#')),
    );
    this.roomList.replaceChildren(...roomItems);
    this.archivedBtn.hidden = archivedCount === 0 && !store.showArchived;
    this.archivedBtn.textContent = store.showArchived ? 'Hide archived rooms' : `Archived rooms (${archivedCount})`;
    this.archivedBtn.setAttribute('aria-pressed', String(store.showArchived));
    const dms = store.sortedRooms(['dm', 'group']);
    const dmItems = dms.map((room) => this.navItem(store, room, current, this.directLead(store, room.info)));
    this.dmList.replaceChildren(...dmItems);
    this.dmEmpty.hidden = dms.length > 0;
    // The closed drawer still tells a phone user that something is unread elsewhere.
    let elsewhere = 0;
    for (const room of store.rooms.values()) if (room.id !== current) elsewhere += store.unread(room.id);
    this.drawerBadge.hidden = elsewhere === 0;
    this.drawerBadge.textContent = elsewhere > 99 ? '99+' : String(elsewhere);
    this.openBtn.setAttribute('aria-label', elsewhere ? `Open menu, ${elsewhere} unread` : 'Open menu');
  }

  /** A DM's peer avatar, or a group's first two peers overlapping; greyed (`offline`) while
   *  nobody there is online. */
  directLead(store, info) {
    const peers = info.kind === 'dm' ? [info.peer].filter(Boolean) : info.peers ?? [];
    if (info.kind === 'dm') return personAvatar(store, info.peer, { online: store.presenceOf(info.peer?.id), size: 'sm' });
    const anyOnline = store.presenceKnown ? peers.some((p) => store.isOnline(p.id)) : null;
    return h('span', { class: 'group-avatars', attrs: { 'aria-hidden': 'true' } },
      ...peers.slice(0, 2).map((p, i) => personAvatar(store, p, i === 1 ? { online: anyOnline, size: 'sm' } : { size: 'sm' })));
  }

  /** Nobody else in a direct conversation is online (known only while connected). */
  directOffline(store, info) {
    if (!isDirect(info) || !store.presenceKnown) return false;
    const peers = info.kind === 'dm' ? [info.peer].filter(Boolean) : info.peers ?? [];
    return peers.length > 0 && !peers.some((p) => store.isOnline(p.id));
  }

  navItem(store, room, current, lead) {
    const title = store.titleOf(room.info);
    const unread = store.unread(room.id);
    // In a DM or group every message is for me: its unread count is the mention count.
    const direct = isDirect(room.info);
    const mentions = direct ? 0 : store.mentions(room.id);
    const isCurrent = room.id === current;
    const offline = this.directOffline(store, room.info);
    const kind = room.info.kind === 'dm' ? 'Direct message with ' : room.info.kind === 'group' ? 'Group with '
      : room.info.kind === 'private' ? 'Private room ' : 'Room ';
    const label = `${kind}${title}${offline ? ', offline' : ''}${room.info.archived ? ', archived' : ''}${
      unread ? `, ${unread} unread` : ''}${mentions ? `, ${mentions} ${mentions === 1 ? 'mention' : 'mentions'}` : ''}`;
    const btn = h(
      'button',
      {
        type: 'button',
        class: `nav-item${isCurrent ? ' active' : ''}${unread ? ' has-unread' : ''}${room.info.archived ? ' archived' : ''}${offline ? ' offline' : ''}`,
        attrs: { 'aria-current': isCurrent ? 'page' : null, 'aria-label': label },
        dataset: { key: `room-${room.id}`, roomId: String(room.id) },
        on: { click: () => this.actions.selectRoom(room.id) },
      },
      lead,
      h('span', { class: 'nav-label' }, title),
      mentions ? h('span', { class: 'mention-count', attrs: { 'aria-hidden': 'true' } }, `@${mentions > 99 ? '99+' : mentions}`) : null,
      unread ? h('span', { class: `badge${direct ? ' urgent' : ''}`, attrs: { 'aria-hidden': 'true' } }, unread > 99 ? '99+' : String(unread)) : null,
    );
    return h('li', {}, btn);
  }

  renderPeople(store) {
    const me = store.me;
    const people = [...store.online.values()].sort((a, b) => {
      if (a.id === me?.id) return -1;
      if (b.id === me?.id) return 1;
      return a.name.localeCompare(b.name);
    });
    // Disconnected: the list is who was online when the link was lost, shown as unknown.
    const known = store.presenceKnown;
    this.onlineCount.textContent = `· ${people.length}`;
    this.peopleList.classList.toggle('stale', !known);
    this.peopleList.title = known ? '' : 'Not connected: who is online is not known right now';
    this.peopleList.replaceChildren(
      ...people.map((user) => {
        const self = user.id === me?.id;
        const content = [
          personAvatar(store, user, { online: known ? true : null, size: 'sm' }),
          h('span', { class: 'nav-label' }, store.displayName(user)),
          self ? h('span', { class: 'you-tag' }, 'you') : null,
          user.guest ? h('span', { class: 'guest-tag' }, 'guest') : null,
        ];
        if (self) return h('li', {}, h('div', { class: 'person self' }, content));
        return h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              class: 'person',
              title: `Message ${user.name}`,
              attrs: { 'aria-label': `${user.name}, ${known ? 'online' : 'presence unknown while disconnected'}. Send a direct message` },
              dataset: { key: `person-${user.id}`, person: user.name },
              on: { click: () => this.actions.openDm(user.name) },
            },
            content,
          ),
        );
      }),
    );
  }

  renderMe(store) {
    const me = store.me;
    if (!me) return;
    const status = store.connection.status;
    const online = status === 'online';
    this.meAvatar.replaceChildren(personAvatar(store, me, { online, size: 'md' }));
    this.meName.textContent = store.displayName(me);
    this.auditBtn.hidden = !store.isAdmin;
    this.meStatus.textContent = online ? 'Online' : status === 'offline' ? 'Offline' : 'Connecting…';
  }

  /** Re-render without losing the keyboard focus on a list entry. */
  keepFocus(render) {
    const key = document.activeElement?.dataset?.key;
    render();
    if (!key) return;
    const again = this.sidebar.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again && again !== document.activeElement) again.focus();
  }

  // ---- phone drawer ----------------------------------------------------------------------------

  isDrawerOpen() {
    return document.body.classList.contains('drawer-open');
  }

  openDrawer() {
    document.body.classList.add('drawer-open');
    this.backdrop.hidden = false;
    this.openBtn.setAttribute('aria-expanded', 'true');
    this.room.inert = true;
    const target = this.sidebar.querySelector('.nav-item.active') ?? this.closeBtn;
    target.focus();
  }

  closeDrawer(returnFocus = true) {
    if (!this.isDrawerOpen()) return;
    document.body.classList.remove('drawer-open');
    this.backdrop.hidden = true;
    this.openBtn.setAttribute('aria-expanded', 'false');
    this.room.inert = false;
    if (returnFocus && this.phone.matches) this.openBtn.focus();
  }
}
