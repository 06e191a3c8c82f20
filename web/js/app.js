// app.js — the entry point and controller. Restores the session or shows sign-in, then wires
// the pieces: connection events and replies go into the store, the store's changes go to the
// views, the views' intents come back here as actions (send, edit, delete, react, threads,
// mentions, rooms, read markers, search, invitations, room settings and moderation, group DMs,
// profiles, account export and deletion). The only module that knows the others.

import * as api from './api.js';
import * as saved from './session.js';
import { Connection } from './connection.js';
import { Store, isDirect } from './store.js';
import {
  AUDIT_PAGE, Close, Ev, GROUP_MAX, GROUP_MIN, Req, HISTORY_PAGE, READ_SYNC_MS, ROOM_PAGE, SEARCH_PAGE, THREAD_PAGE, TYPING_RESEND_MS,
  errorText, newClientId, sendFailureText,
} from './protocol.js';
import { RoomAdminView } from './view/roomadmin.js';
import { formatTime } from './view/dom.js';
import { AuthView } from './view/auth.js';
import { SidebarView } from './view/sidebar.js';
import { RoomView } from './view/room.js';
import { ComposerView } from './view/composer.js';
import { BannerView } from './view/banner.js';
import { Dialogs } from './view/dialogs.js';
import { BotsPanel, WebhooksPanel } from './view/bots.js';
import { ThreadView } from './view/thread.js';
import { closePopup, confirmDelete, initMessageDialogs, showEditHistory } from './view/message-actions.js';
import * as router from './router.js';
import { setFilesToken, uploadFile } from './files.js';
import { PeopleView } from './view/people.js';
import { Attention } from './notify.js';
import { NotifyMenuView } from './view/notifymenu.js';
import { SearchView } from './view/search.js';

/** Stop typing (send `active: false`) after this long without a keystroke. */
const TYPING_IDLE_MS = 4000;
const OLDER_RETRY_MS = 2000;

const store = new Store();
/** `{token, user}` while signed in */
let session = null;
/** @type {Connection | null} */
let conn = null;
/** unacknowledged messages from before a reload, sent after the first auth */
let restoredOutbox = [];
const typingState = { room: null, sentAt: 0, idleTimer: 0 };
let olderBlockedUntil = 0;

const chatEl = document.getElementById('chat');
const notFoundEl = document.getElementById('not-found');
/** what the address bar asked for on load or Back/Forward, until the rooms are known */
let wanted = router.parsePath();
const toastEl = document.getElementById('toast');
let toastTimer = 0;

// ---- actions the views call ---------------------------------------------------------------

const chatActions = {
  selectRoom(id) {
    setTyping(false);
    if (store.thread && store.thread.roomId !== id) store.closeThread();
    // Choosing a room is a step Back can undo.
    if (store.room(id)) router.go(router.roomPath(id));
    if (store.currentRoomId === id && store.room(id)?.hasNewer) jumpToLatest(id);
    store.setCurrent(id);
    if (session) saved.saveLastRoom(session.user.id, id);
    sidebar.closeDrawer(false);
    if (!isPhone()) composer.focus();
  },
  openDm: (name) => openDm(name).catch((err) => toast(errorText(err.code, err.message))),
  createRoom: () => dialogs.openCreate(),
  browseRooms: () => dialogs.openBrowse(store),
  newDm: () => dialogs.openDm(store),
  account: () => {
    dialogs.openAccount(store);
    botsPanel.open(Boolean(store.me?.guest));
  },
  profile() {
    sidebar.closeDrawer(false);
    people.openProfile(store);
  },
  /** The profile card of a person ({id, name}). */
  showProfile: (user) => people.openCard(store, user),
  addToGroup: (id) => people.openGroupAdd(id),
  signOut,
  loadOlder,
  loadNewer,
  jumpToLatest: (id) => jumpToLatest(id),
  readingOlder: (yes) => store.setReadingOlder(yes),
  markRead: (id) => {
    if (store.markRead(id)) syncRead(id);
  },
  retry,
  discard: (clientId) => store.removePending(clientId),
  leaveRoom: (id) => leaveRoom(id).catch((err) => toast(errorText(err.code, err.message))),
  showMembers: (id) => dialogs.openMembers(store, id),
  roomInfo: (id) => roomAdmin.openInfo(store, id),
  acceptInvite: (id) => acceptInvite(id).catch((err) => toast(errorText(err.code, err.message))),
  declineInvite: (id) => declineInvite(id).catch((err) => toast(errorText(err.code, err.message))),
  toggleArchived: () => store.setShowArchived(!store.showArchived),
  auditLog: () => roomAdmin.openAudit(),
  send,
  setNotify: (id, level) => setNotify(id, level).catch((err) => toast(errorText(err.code, err.message))),
  typing: setTyping,
  retryNow: () => conn?.retryNow(),
  // messages: edit, delete, react, threads, mentions
  members: roomMembers,
  editLast() {
    const msg = store.currentRoomId === null ? null : store.lastOwnMessage(store.currentRoomId);
    if (!msg) return false;
    chatActions.startEdit(msg.room, msg.seq, 'room');
    return true;
  },
  /** Edit in place, in the room's timeline or the thread panel (`where`). */
  startEdit: (roomId, seq, where = 'room') => store.setEditing({ roomId, seq, where, draft: null }),
  cancelEdit() {
    stopEditing();
  },
  saveEdit(roomId, seq, body) {
    stopEditing();
    change(Req.EDIT, { room: roomId, seq, body });
  },
  async deleteMessage(roomId, seq) {
    const msg = [...store.copiesOf(store.room(roomId) ?? { messages: [] }, seq)][0];
    if (!(await confirmDelete(msg?.body ?? ''))) return;
    change(Req.DELETE, { room: roomId, seq });
  },
  react: (roomId, seq, emoji, add) => change(add ? Req.REACTION_ADD : Req.REACTION_REMOVE, { room: roomId, seq, emoji }),
  showEdits: (roomId, seq) => showEditHistory(
    () => request(Req.EDITS, { room: roomId, seq }).then((r) => r.versions),
    (err) => errorText(err.code, err.message),
  ),
  copyLink(roomId, seq) {
    const url = router.roomUrl(roomId, seq);
    const copied = navigator.clipboard?.writeText(url) ?? Promise.reject(new Error('no clipboard'));
    copied.then(() => toast(`Link copied: ${url}`), () => toast(`Link: ${url}`));
  },
  openThread,
  closeThread() {
    store.closeThread();
    if (!isPhone()) composer.focus();
  },
  loadThreadOlder,
  sendThread,
};

const dialogActions = {
  async createRoom(name, isPrivate = false) {
    const { room } = await request(Req.ROOM_CREATE, isPrivate ? { name, private: true } : { name });
    adoptRoom(room);
  },
  /** One page of public rooms: `{rooms, next}` (`next` null on the last page); `archived`:
   *  the archived rooms instead. */
  async listRooms({ query = '', after = null, archived = false } = {}) {
    const data = { limit: ROOM_PAGE };
    if (query) data.query = query;
    if (after) data.after = after;
    if (archived) data.archived = true;
    const { rooms, next } = await request(Req.ROOM_LIST, data);
    return { rooms, next: next ?? null };
  },
  async joinRoom(id) {
    const { room } = await request(Req.ROOM_JOIN, { room: id });
    adoptRoom(room);
  },
  selectRoom: chatActions.selectRoom,
  openDm,
  /** One name: a DM; several: the group DM of them and me (`group.open`). */
  openConversation(names) {
    if (names.length === 1) return openDm(names[0]);
    if (names.length + 1 < GROUP_MIN || names.length + 1 > GROUP_MAX) {
      return Promise.reject(Object.assign(new Error('group size'), { code: 'group_size' }));
    }
    return request(Req.GROUP_OPEN, { users: names }).then(({ room }) => adoptRoom(room));
  },
  async members(roomId) {
    const { members } = await request(Req.ROOM_MEMBERS, { room: roomId });
    membersCache.set(roomId, Promise.resolve(members));
    store.setProfiles(members, roomId);
    return members;
  },
  showProfile: (user) => people.openCard(store, user),
  editProfile: () => people.openProfile(store),
  deleteAccount: () => people.openDelete(store),
  /** `GET /api/account/export`: {blob, name} for the view to save. */
  exportData: () => api.exportAccount(session?.token),
  /** A moderation request (room.kick, room.ban, room.unban, room.mute, room.unmute, room.role,
   *  room.update) with a fresh `client_id`; its room event is applied at once. */
  moderate: (type, data) => moderate(type, data),
  invite: (roomId, user) => request(Req.ROOM_INVITE, { room: roomId, user }),
  bans: (roomId) => request(Req.ROOM_BANS, { room: roomId }).then((r) => r.bans),
  audit: (before) => request(Req.ADMIN_AUDIT, before ? { before, limit: AUDIT_PAGE } : { limit: AUDIT_PAGE }),
  showMembers: (id) => dialogs.openMembers(store, id),
  invitePeople: (id) => roomAdmin.openInvite(store, id),
  openWebhooks: (id) => webhooksPanel.open(id),
  showBans: (id) => roomAdmin.openBans(store, id),
  banMember: (roomId, user, report) => roomAdmin.openBan(store, roomId, user, report),
  async listSessions() {
    const { sessions } = await api.sessions(session?.token);
    return sessions;
  },
  revokeSession: (id) => api.revokeSession(session?.token, id),
  changePassword: (oldPassword, newPassword) => api.changePassword(session?.token, oldPassword, newPassword),
  signOut,
  signOutEverywhere,
};

const authView = new AuthView({ onSubmit: signIn });
const sidebar = new SidebarView(chatActions);
const roomView = new RoomView(chatActions);
const composer = new ComposerView(chatActions);
const banner = new BannerView(chatActions);
const dialogs = new Dialogs(dialogActions);
/** "Bots and integrations" in the account dialog: the HTTP API of docs/api.md. */
const botsPanel = new BotsPanel({
  listBots: () => api.listBots(session?.token).then((r) => r.bots),
  createBot: (name) => api.createBot(session?.token, name),
  deleteBot: (id) => api.deleteBot(session?.token, id),
  listBotTokens: (id) => api.listBotTokens(session?.token, id).then((r) => r.tokens),
  createBotToken: (id, name) => api.createBotToken(session?.token, id, name),
  revokeBotToken: (id, tid) => api.revokeBotToken(session?.token, id, tid),
  async addBotToCurrentRoom(name) {
    const room = store.currentRoom;
    if (!room) throw Object.assign(new Error('open a room first'), { code: 'invalid_request' });
    await api.addBotToRoom(session?.token, room.id, name);
    return store.titleOf(room.info);
  },
});
const roomAdmin = new RoomAdminView(dialogActions);
/** A room's incoming webhooks, in its settings dialog. */
const webhooksPanel = new WebhooksPanel({
  listWebhooks: (room) => api.listWebhooks(session?.token, room).then((r) => r.webhooks),
  createWebhook: (room, name) => api.createWebhook(session?.token, room, name),
  deleteWebhook: (room, id) => api.deleteWebhook(session?.token, room, id),
});
const threadView = new ThreadView(chatActions);
const people = new PeopleView({
  async getProfile(name) {
    const { profile } = await request(Req.PROFILE_GET, { user: name });
    store.setProfiles([profile]);
    return profile;
  },
  async updateProfile(data) {
    const { profile } = await request(Req.PROFILE_UPDATE, data);
    store.setProfiles([profile]);
    return profile;
  },
  uploadAvatar: (file) => uploadFile(file).promise,
  openDm,
  /** `group.add`: a new group of everyone here and `name`, opened. */
  async addToGroup(roomId, name) {
    const { room } = await request(Req.GROUP_ADD, { room: roomId, user: name });
    adoptRoom(room);
    toast(`A new conversation with ${store.titleOf(room)} started; the earlier one goes on without ${name}.`);
  },
  /** `DELETE /api/account`: on success, signed out to the sign-in page with a notice. */
  async deleteAccount(password) {
    await api.deleteAccount(session?.token, password);
    endSession('Your account was deleted.');
  },
});
initMessageDialogs();
const attention = new Attention({
  /** A notification clicked: the message, and the thread panel when it is a thread reply. */
  open(roomId, seq, thread = null) {
    if (!store.room(roomId)) return;
    router.go(router.roomPath(roomId, seq));
    openAddress({ page: 'chat', room: roomId, seq });
    if (thread != null) openThread(roomId, thread);
  },
});
const notifyMenu = new NotifyMenuView(chatActions, attention);
const searchView = new SearchView({
  enabled: () => session !== null && !chatEl.hidden,
  isMember: (roomId) => store.room(roomId) !== null,
  /** One page of `search` results: `{results, next}`. */
  search({ query, public: alsoPublic, order, cursor }) {
    const data = { query, limit: SEARCH_PAGE };
    if (alsoPublic) data.public = true;
    if (order && order !== 'newest') data.order = order;
    if (cursor) data.cursor = cursor;
    return request(Req.SEARCH, data);
  },
  open: openSearchResult,
});

store.subscribe((topics) => {
  if (!session) return;
  sidebar.render(store, topics);
  roomView.render(store, topics);
  composer.render(store, topics);
  threadView.render(store, topics);
  banner.render(store, topics);
  notifyMenu.render(store, topics);
  roomAdmin.render(store, topics);
  persist(topics);
  updateTitle();
  if (topics.has('current') || topics.has('all')) loadProfiles(store.currentRoomId);
  if (topics.has('current') || topics.has('all')) showCurrentInAddress();
});

/** The address bar names the open room (in place: only choosing a room adds a history entry). */
function showCurrentInAddress() {
  const id = store.currentRoomId;
  if (id === null || wanted) return;
  const here = router.parsePath();
  if (here.room !== id) router.go(router.roomPath(id), { replace: true });
}

window.addEventListener('popstate', () => {
  const route = router.parsePath();
  if (route.page === 'notfound') {
    showNotFound();
    return;
  }
  notFoundEl.hidden = true;
  if (!session) return;
  chatEl.hidden = false;
  if (route.room === null) {
    showCurrentInAddress();
    return;
  }
  openAddress(route);
});

/** Opens what an address names, once the rooms are known: the room, and the message in it. */
function openAddress(route) {
  if (store.rooms.size === 0) {
    wanted = route;
    return;
  }
  wanted = null;
  if (!store.room(route.room)) {
    toast('That conversation does not exist, or you are not in it.');
    showCurrentInAddress();
    return;
  }
  setTyping(false);
  if (store.thread && store.thread.roomId !== route.room) store.closeThread();
  store.setCurrent(route.room);
  if (route.seq) openMessage(route.room, route.seq);
}

/** A link to a room or message of this server, clicked in a message (a copied "Copy link"):
 *  opened here, as Back can undo, instead of in a new tab. Modifier keys keep the browser's way. */
chatEl.addEventListener('click', (e) => {
  const a = e.target instanceof Element ? e.target.closest('a[href]') : null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href);
  if (url.origin !== window.location.origin) return;
  const route = router.parsePath(url.pathname);
  if (route.page !== 'chat' || route.room === null) return;
  e.preventDefault();
  router.go(router.roomPath(route.room, route.seq));
  openAddress(route);
});

/** Scroll to message `seq` and highlight it, loading the history around it when not held. */
function openMessage(roomId, seq) {
  const room = store.room(roomId);
  if (!room) return;
  store.setFocus(roomId, seq);
  const held = room.messages.some((m) => m.seq === seq);
  if (!held) loadAround(roomId, seq);
}

/**
 * A search result chosen: its room at that message, as a link to it opens (`/r/<room>/<seq>`,
 * the history around it, highlighted); a public room not joined is joined first. A thread reply
 * kept to its thread opens its thread's first message with the thread panel, as a notification
 * does.
 */
async function openSearchResult({ message, room }) {
  if (!store.room(room.id)) {
    const { room: joined } = await request(Req.ROOM_JOIN, { room: room.id });
    store.upsertRoom(joined);
  }
  const thread = message.thread != null && !message.also_room ? message.thread : null;
  const seq = thread ?? message.seq;
  sidebar.closeDrawer(false);
  router.go(router.roomPath(room.id, seq));
  openAddress({ page: 'chat', room: room.id, seq });
  if (thread !== null) openThread(room.id, thread);
}

function showNotFound() {
  chatEl.hidden = true;
  authView.hide();
  notFoundEl.hidden = false;
  document.title = 'Page not found · Natter';
}

// ---- signing in and out ---------------------------------------------------------------------

async function signIn(mode, username, password) {
  authView.setBusy(true);
  let res;
  try {
    res = mode === 'signup' ? await api.register(username, password)
      : mode === 'guest' ? await api.guest(username)
      : await api.login(username, password);
  } catch (err) {
    authView.setBusy(false);
    showAuthError(err, mode);
    return;
  }
  saved.saveSession(res);
  enterChat(res);
}

function showAuthError(err, mode) {
  switch (err.code) {
    case 'name_taken':
      return authView.showError(mode === 'guest'
        ? 'That name is taken. Choose another nickname.'
        : 'That name is taken. Choose another, or sign in if it is yours.', 'username');
    case 'guests_disabled':
      authView.offerGuests(false);
      return authView.showError(errorText('guests_disabled'));
    case 'invalid_credentials':
      return authView.showError('Wrong username or password.', 'password');
    case 'invalid_username':
      return authView.showError(errorText('invalid_username'), 'username');
    case 'weak_password':
      return authView.showError(errorText('weak_password'), 'password');
    case 'server_down':
      return authView.showError('Cannot reach the server. Check that it is running, then try again.');
    default:
      return authView.showError(`${mode === 'signup' ? 'Could not create the account' : mode === 'guest' ? 'Could not join' : 'Could not sign in'}: ${err.message}`);
  }
}

function enterChat({ token, user }) {
  session = { token, user };
  setFilesToken(token);
  store.reset();
  store.setMe(user);
  store.readSeq = saved.loadReadMarks(user.id);
  store.knownDevice = Object.keys(store.readSeq).length > 0;
  store.preferredRoomId = saved.loadLastRoom(user.id);
  restoredOutbox = saved.loadOutbox(user.id);
  authView.hide();
  chatEl.hidden = false;
  conn = new Connection({ token, resume: () => store.resumeMap() });
  conn.on('status', (status) => store.setConnection(status));
  conn.on('ready', onReady);
  conn.on('event', onEvent);
  conn.on('unauthorized', ({ code }) => {
    endSession(code === Close.DEACTIVATED ? 'Your account was deactivated by an administrator.'
      : code === 4003 ? 'You were signed out.' : 'Your session has ended. Please sign in again.');
  });
  conn.start();
}

function signOut() {
  const token = session?.token;
  endSession(null);
  if (token) api.logout(token).catch(() => {});
}

/** Revokes every session of mine (other devices' sockets close with 4003), then this one. */
function signOutEverywhere() {
  const token = session?.token;
  if (!token) return;
  api.logoutAll(token)
    .then(() => endSession('You signed out on every device.'))
    .catch((err) => toast(errorText(err.code, err.message)));
}

function endSession(notice) {
  const userId = session?.user.id;
  unsyncedReads.clear();
  clearTimeout(readSyncTimer);
  conn?.stop();
  conn = null;
  session = null;
  setFilesToken(null);
  composer.clearAttachments();
  saved.clearSession(userId);
  dialogs.closeAll();
  roomAdmin.closeAll();
  people.closeAll();
  adminChecked = false;
  removals.clear();
  searchView.reset();
  closePopup(false);
  for (const id of ['dlg-delete', 'dlg-edits']) document.getElementById(id).close();
  sidebar.closeDrawer(false);
  banner.hide();
  store.reset();
  chatEl.hidden = true;
  document.title = 'Natter';
  attention.setBadge(0);
  authView.show(notice);
  offerWhatServerAllows();
}

window.addEventListener('storage', (e) => {
  if (session && saved.sessionChangedElsewhere(e, session.token)) {
    if (saved.loadSession()) window.location.reload();
    else endSession('You signed out in another tab.');
  }
});

// ---- the connection's side ------------------------------------------------------------------

function request(type, data) {
  if (!conn) return Promise.reject(Object.assign(new Error('signed out'), { code: 'disconnected' }));
  return conn.request(type, data);
}

function onReady(reply) {
  const first = store.rooms.size === 0;
  if (wanted?.room && store.room(wanted.room) === null) store.preferredRoomId = wanted.room;
  store.applyAuth(reply);
  // On a desktop, the first thing one does is write: put the cursor there (not on phones,
  // where focusing opens the keyboard over the conversation).
  if (first && !isPhone() && !document.querySelector('dialog[open]')) setTimeout(() => composer.focus(), 0);
  for (const item of restoredOutbox) {
    if (!store.room(item.room)) continue;
    const thread = item.thread ?? null;
    const alsoRoom = item.also_room === true;
    const files = item.files ?? [];
    store.addPending(item.room, { client_id: item.client_id, body: item.body, ts: item.ts, thread, also_room: alsoRoom, files });
    deliver(item.room, item.client_id, item.body, thread, alsoRoom, files);
  }
  restoredOutbox = [];
  const route = wanted;
  if (route) openAddress(route);
  for (const room of store.rooms.values()) {
    if (room.loaded) continue;
    // The linked message's room starts at that message, not at the newest page.
    if (route?.seq && route.room === room.id) continue;
    loadLatest(room.id);
  }
  // An open thread whose room was reset (too far behind) is loaded again; otherwise the
  // resumed stream brings its missed replies and changes like any other entry.
  if (store.thread && !store.thread.loaded) loadThread();
  membersCache.clear();
  // Who is in my direct conversations and the open room: their names, pictures, last seen.
  for (const room of store.rooms.values()) if (isDirect(room.info)) loadProfiles(room.id);
  loadProfiles(store.currentRoomId);
  flushReads();
  loadInvites();
  checkAdmin();
}

/** My pending invitations (they also come live as `room_invited`). */
function loadInvites() {
  request(Req.INVITE_LIST)
    .then(({ invites }) => store.setInvites(invites))
    .catch(() => {});
}

/** the admin check has been answered for this session */
let adminChecked = false;

/** The `auth` reply does not say whether I am a server admin: `admin.audit` answers admins
 *  only (others get `forbidden`). */
function checkAdmin() {
  if (adminChecked) return;
  request(Req.ADMIN_AUDIT, { limit: 1 }).then(
    () => {
      adminChecked = true;
      store.setAdmin(true);
    },
    (err) => {
      if (err.code === 'forbidden') {
        adminChecked = true;
        store.setAdmin(false);
      }
    },
  );
}

/** room id -> why I was removed from it (my own kick/ban event, before its `room_removed`) */
const removals = new Map();

function onEvent({ type, data }) {
  const me = store.me;
  switch (type) {
    case Ev.MESSAGE:
      attention.consider(store, data);
      store.addMessages(data.room, [data]);
      break;
    case Ev.MESSAGE_EDITED:
    case Ev.MESSAGE_DELETED:
    case Ev.REACTION:
      // Every stream entry: applied (idempotently) and counted for `resume` alike.
      store.addMessages(data.room, [data]);
      break;
    case Ev.MEMBER_JOINED:
      membersCache.delete(data.room);
      store.setMemberCount(data.room, data.member_count);
      // The newcomer's profile (display name, picture, whether a bot) for the room on screen.
      if (data.room === store.currentRoomId) loadProfiles(data.room);
      // The line "bob joined" comes from the room's `join` entry (a `room_event`).
      break;
    case Ev.MEMBER_LEFT:
      membersCache.delete(data.room);
      if (data.user.id === me?.id) {
        store.removeRoom(data.room);
      } else {
        store.setMemberCount(data.room, data.member_count);
        store.removePeer(data.room, data.user.id);
      }
      break;
    case Ev.TYPING:
      store.setTyping(data.room, data.user, data.active);
      break;
    case Ev.PRESENCE:
      store.setPresence(data.user, data.online);
      break;
    case Ev.PRESENCE_RESET:
      store.resetPresence(data.online);
      break;
    case Ev.ROOM_EVENT:
      // A stream entry: it moves the room's `resume` position like a message does.
      store.addMessages(data.room, [data]);
      if ((data.change.op === 'kick' || data.change.op === 'ban') && data.change.user?.id === me?.id) {
        const title = store.room(data.room)?.info.name ?? 'a room';
        const how = data.change.op === 'ban' ? 'banned from' : 'removed from';
        removals.set(data.room, `You were ${how} #${title} by ${data.sender.name}${data.change.reason ? `: ${data.change.reason}` : ''}.`);
      }
      break;
    case Ev.ROOM_INVITED:
      if (!store.room(data.room)) store.addInvite(data);
      break;
    case Ev.ROOM_ADDED:
      store.removeInvite(data.room.id);
      store.upsertRoom(data.room, { fresh: isDirect(data.room) });
      if (!store.room(data.room.id).loaded) loadLatest(data.room.id);
      if (isDirect(data.room)) loadProfiles(data.room.id);
      break;
    case Ev.ROOM_REMOVED:
      store.removeRoom(data.room);
      if (removals.has(data.room)) {
        showRemoval(removals.get(data.room));
        removals.delete(data.room);
      }
      break;
    case Ev.ROOM_READ:
      store.applyRead(data.room, data.read_seq, data);
      break;
    case Ev.ROOM_NOTIFY:
      store.setNotify(data.room, data.notify);
      break;
    default:
      console.debug('natter: unknown event', type);
  }
}

// ---- read markers: what this person has read goes to the server, for their other devices --

/** rooms read here whose marker the server has not confirmed yet */
const unsyncedReads = new Set();
let readSyncTimer = null;

function syncRead(roomId) {
  unsyncedReads.add(roomId);
  clearTimeout(readSyncTimer);
  readSyncTimer = setTimeout(flushReads, READ_SYNC_MS);
}

/** Sends each unconfirmed marker once; one that fails (link down) waits for the next `ready`. */
function flushReads() {
  clearTimeout(readSyncTimer);
  if (!conn || conn.status !== 'online') return;
  for (const roomId of [...unsyncedReads]) {
    const seq = store.readSeq[roomId];
    if (!store.room(roomId) || !seq) {
      unsyncedReads.delete(roomId);
      continue;
    }
    request(Req.ROOM_READ, { room: roomId, seq })
      .then((reply) => {
        if (store.readSeq[roomId] <= reply.read_seq) unsyncedReads.delete(roomId);
        store.applyRead(reply.room, reply.read_seq, reply);
      })
      .catch(() => {});
  }
}

/** rooms whose newest history page has been asked for and not yet answered */
const loadingLatest = new Set();
/** room id -> the message a link asked for while that room's history was loading (a room
 *  just joined from a search result, whose `room_added` asked for the newest page first) */
const aroundAfterLoad = new Map();

/** After a room's history page came: the page around a message asked for meanwhile. */
function followLink(roomId) {
  const seq = aroundAfterLoad.get(roomId);
  if (seq === undefined) return;
  aroundAfterLoad.delete(roomId);
  if (!store.room(roomId)?.messages.some((m) => m.seq === seq)) loadAround(roomId, seq);
}

async function loadLatest(roomId) {
  // `room_added` and the reply to my own join/create both ask; one request is enough.
  if (loadingLatest.has(roomId)) return;
  loadingLatest.add(roomId);
  try {
    const page = await request(Req.HISTORY, { room: roomId, limit: HISTORY_PAGE, events: true });
    store.setLatest(roomId, page);
  } catch (err) {
    if (err.code !== 'disconnected') console.warn(`natter: history of room ${roomId} failed`, err);
  } finally {
    loadingLatest.delete(roomId);
    followLink(roomId);
  }
}

/** The page around message `seq` (a link to it); a server without `around` gives the newest. */
async function loadAround(roomId, seq) {
  if (loadingLatest.has(roomId)) {
    aroundAfterLoad.set(roomId, seq);
    return;
  }
  loadingLatest.add(roomId);
  try {
    const page = await request(Req.HISTORY, { room: roomId, around: seq, limit: HISTORY_PAGE, events: true });
    store.setAround(roomId, page);
  } catch (err) {
    loadingLatest.delete(roomId);
    if (err.code === 'disconnected') return;
    console.warn(`natter: history around ${seq} in room ${roomId} failed`, err);
    if (!aroundAfterLoad.has(roomId)) store.setFocus(roomId, null);
    if (!store.room(roomId)?.loaded) loadLatest(roomId);
    else followLink(roomId);
    return;
  }
  loadingLatest.delete(roomId);
  if (!store.room(roomId)?.messages.some((m) => m.seq === seq) && !aroundAfterLoad.has(roomId)) {
    store.setFocus(roomId, null);
    toast('That message is not there any more.');
  }
  followLink(roomId);
}

/** The next newer page of a window opened at a linked message. */
async function loadNewer(roomId) {
  const room = store.room(roomId);
  const last = room?.windowEnd ?? room?.messages.at(-1)?.seq;
  if (!room || !room.hasNewer || room.loadingNewer || last == null || conn?.status !== 'online') return;
  room.loadingNewer = true;
  try {
    const page = await request(Req.HISTORY, { room: roomId, after: last, limit: HISTORY_PAGE, events: true });
    store.addNewer(roomId, page);
  } catch {
    // (tried again on the next scroll or render, not at once)
    setTimeout(() => { room.loadingNewer = false; }, OLDER_RETRY_MS);
  }
}

/** Leave a window opened at a linked message for the newest messages. */
function jumpToLatest(roomId) {
  store.dropWindow(roomId);
  loadLatest(roomId);
}

async function loadOlder(roomId) {
  const room = store.room(roomId);
  const before = room?.oldestLoaded ?? room?.messages[0]?.seq;
  if (!room || room.loadingOlder || !room.hasOlder || before == null) return;
  if (conn?.status !== 'online' || Date.now() < olderBlockedUntil) return;
  store.setLoadingOlder(roomId, true);
  try {
    const page = await request(Req.HISTORY, { room: roomId, before, limit: HISTORY_PAGE, events: true });
    store.addOlder(roomId, page);
  } catch (err) {
    olderBlockedUntil = Date.now() + OLDER_RETRY_MS;
    store.setLoadingOlder(roomId, false);
  }
}

/** A room the server just gave me (created, joined, DM opened): keep it, fill it, open it. */
function adoptRoom(room) {
  store.upsertRoom(room);
  if (!store.room(room.id).loaded) loadLatest(room.id);
  chatActions.selectRoom(room.id);
}

async function openDm(name) {
  const { room } = await request(Req.DM_OPEN, { user: name });
  adoptRoom(room);
}

/** The room's notification level, for all my devices (they hear it as `room_notify`). */
async function setNotify(id, level) {
  const reply = await request(Req.ROOM_NOTIFY, { room: id, level });
  store.setNotify(reply.room, reply.notify);
}

/** An invitation accepted: `room.join` makes me a member. */
async function acceptInvite(id) {
  const { room } = await request(Req.ROOM_JOIN, { room: id });
  store.removeInvite(id);
  adoptRoom(room);
}

async function declineInvite(id) {
  await request(Req.INVITE_DECLINE, { room: id });
  store.removeInvite(id);
}

/** A moderation or settings request; its reply's room event is applied at once (the same
 *  entry comes again as `room_event`, which moves the room's `resume` position). */
async function moderate(type, data) {
  const reply = await request(type, { ...data, client_id: newClientId() });
  if (reply.entry) store.applyRoomEntry(reply.entry);
  return reply;
}

/** A request refused because I am muted or the room is archived: the composer says so. */
function noteRefusal(roomId, err) {
  if (err.code === 'muted') store.setMuted(roomId, Date.now() + (err.detail?.retry_after_ms ?? 60000));
  else if (err.code === 'room_archived') store.setArchived(roomId);
}

async function leaveRoom(id) {
  await request(Req.ROOM_LEAVE, { room: id });
  store.removeRoom(id);
}

// ---- sending --------------------------------------------------------------------------------

/** A message in the open room: `body` (may be empty with files) and `files`, uploaded FileInfos. */
function send(body, files = []) {
  const room = store.currentRoom;
  if (!room || !conn) return false;
  const clientId = newClientId();
  store.addPending(room.id, { client_id: clientId, body, files });
  deliver(room.id, clientId, body, null, false, files);
  notifyMenu.offerPrompt();
  // The server ends my typing state when I send.
  clearTimeout(typingState.idleTimer);
  typingState.room = null;
  typingState.sentAt = 0;
  return true;
}

function deliver(roomId, clientId, body, thread = null, alsoRoom = false, files = []) {
  const c = conn;
  c.sendMessage({ room: roomId, body, client_id: clientId, thread, also_room: alsoRoom, files: files.map((f) => f.id) }).then(
    ({ message }) => {
      store.addMessages(message.room, [message]);
      store.removePending(clientId);
    },
    (err) => {
      if (c !== conn) return;
      noteRefusal(roomId, err);
      store.updatePending(clientId, { state: 'failed', error: sendFailureText(err.code) });
    },
  );
}

/** A reply in the open thread (`alsoRoom`: shown in the room's timeline too). */
function sendThread(body, alsoRoom) {
  const thread = store.thread;
  if (!thread || !conn || !store.room(thread.roomId)) return false;
  const clientId = newClientId();
  store.addPending(thread.roomId, { client_id: clientId, body, thread: thread.parentSeq, also_room: alsoRoom });
  deliver(thread.roomId, clientId, body, thread.parentSeq, alsoRoom);
  return true;
}

/**
 * An edit, delete or reaction: a fresh `client_id`, kept in the connection's outbox (resent
 * with the same id after a reconnect, stored once). The reply's entry is applied at once; the
 * same entry comes again as an event, which moves the room's `resume` position.
 */
function change(type, data) {
  const c = conn;
  if (!c) return;
  c.sendChange(type, { ...data, client_id: newClientId() }).then(
    ({ entry }) => {
      if (entry) store.applyEntry(entry);
    },
    (err) => {
      if (c !== conn) return;
      noteRefusal(data.room, err);
      const until = err.code === 'muted' ? store.mutedUntil(data.room) : 0;
      toast(until ? `You are muted until ${formatTime(until)}.` : errorText(err.code, err.message));
    },
  );
}

function retry(clientId) {
  const room = [...store.rooms.values()].find((r) => r.pending.some((p) => p.client_id === clientId));
  if (!room) return;
  const p = store.updatePending(clientId, { state: 'sending', error: null });
  deliver(room.id, clientId, p.body, p.thread, p.also_room, p.files ?? []);
}

/** Leave the inline editor; the keyboard goes back to the box of where it was. */
function stopEditing() {
  const where = store.editing?.where;
  store.setEditing(null);
  if (isPhone()) return;
  if (where === 'room') composer.focus();
  else threadView.focus();
}

// ---- threads and members --------------------------------------------------------------------

function openThread(roomId, parentSeq) {
  store.setEditing(null);
  store.openThread(roomId, parentSeq);
  if (!store.thread.loaded) loadThread();
}

/** The newest replies of the open thread, with its first message. */
async function loadThread() {
  const thread = store.thread;
  if (!thread) return;
  const { roomId, parentSeq } = thread;
  try {
    const page = await request(Req.HISTORY, { room: roomId, thread: parentSeq, limit: THREAD_PAGE });
    store.setThreadPage(roomId, parentSeq, page);
  } catch (err) {
    if (store.thread?.roomId !== roomId || store.thread.parentSeq !== parentSeq) return;
    // Not connected: the next `ready` loads it.
    if (err.code !== 'disconnected') store.setThreadState({ error: errorText(err.code, err.message) });
  }
}

async function loadThreadOlder() {
  const thread = store.thread;
  if (!thread || thread.loadingOlder || !thread.hasOlder || !thread.replies.length) return;
  if (conn?.status !== 'online' || Date.now() < olderBlockedUntil) return;
  const { roomId, parentSeq } = thread;
  store.setThreadState({ loadingOlder: true });
  try {
    const page = await request(Req.HISTORY, { room: roomId, thread: parentSeq, before: thread.replies[0].seq, limit: THREAD_PAGE });
    store.setThreadPage(roomId, parentSeq, page, true);
  } catch {
    olderBlockedUntil = Date.now() + OLDER_RETRY_MS;
    if (store.thread === thread) store.setThreadState({ loadingOlder: false });
  }
}

/** room id -> a promise of its members (for the @-mention autocomplete), until someone joins
 *  or leaves or the link is re-established. */
const membersCache = new Map();

function roomMembers(roomId) {
  let members = membersCache.get(roomId);
  if (!members) {
    members = request(Req.ROOM_MEMBERS, { room: roomId }).then((r) => {
      store.setProfiles(r.members, roomId);
      return r.members;
    });
    members.catch(() => membersCache.delete(roomId));
    membersCache.set(roomId, members);
  }
  return members;
}

/** The members of a room with their profiles and roles, once per room until the cache is
 *  cleared (a join, a leave, a reconnect): display names, pictures, who is offline. */
function loadProfiles(roomId) {
  if (roomId === null || !store.room(roomId) || conn?.status !== 'online') return;
  roomMembers(roomId).catch(() => {});
}

/** The person is (or stopped) typing in the open room. */
function setTyping(active) {
  const roomId = store.currentRoomId;
  clearTimeout(typingState.idleTimer);
  if (typingState.room !== null && (!active || typingState.room !== roomId)) {
    request(Req.TYPING, { room: typingState.room, active: false }).catch(() => {});
    typingState.room = null;
    typingState.sentAt = 0;
  }
  if (!active || roomId === null || conn?.status !== 'online') return;
  const now = Date.now();
  if (now - typingState.sentAt >= TYPING_RESEND_MS) {
    request(Req.TYPING, { room: roomId, active: true }).catch(() => {});
    typingState.room = roomId;
    typingState.sentAt = now;
  }
  typingState.idleTimer = setTimeout(() => setTyping(false), TYPING_IDLE_MS);
}

// ---- odds and ends --------------------------------------------------------------------------

function persist(topics) {
  const userId = session.user.id;
  if (topics.has('read') || topics.has('all')) saved.saveReadMarks(userId, store.readSeq);
  if (topics.has('pending')) {
    const unsent = store.allPending().filter((p) => p.state !== 'failed');
    saved.saveOutbox(userId, unsent.map(({ room, client_id, body, ts, thread, also_room, files }) => {
      const item = thread == null ? { room, client_id, body, ts } : { room, client_id, body, ts, thread, also_room };
      if (files?.length) item.files = files;
      return item;
    }));
  }
}

function updateTitle() {
  let unread = 0;
  for (const room of store.rooms.values()) unread += store.unread(room.id);
  const room = store.currentRoom;
  const where = room ? (isDirect(room.info) ? store.titleOf(room.info) : `#${room.info.name}`) : null;
  const title = where ? `${where} · Natter` : 'Natter';
  document.title = unread ? `(${unread}) ${title}` : title;
  attention.setBadge(unread);
}

function isPhone() {
  return window.matchMedia('(max-width: 760px)').matches;
}

function toast(text, ms = 5000) {
  toastEl.textContent = text;
  toastEl.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    toastEl.hidden = true;
  }, ms);
}

/** I was kicked or banned: the room is gone from the list; say why, a little longer. */
function showRemoval(text) {
  toast(text, 10000);
}

/** Asks the server what the sign-in screen may offer (guest access) and what it allows (the
 *  largest upload, for the composer); quietly keeps the defaults (no guests) when it cannot tell. */
function offerWhatServerAllows() {
  api.config()
    .then((config) => {
      store.applyServerConfig(config);
      authView.offerGuests(config?.allow_guests === true);
    })
    .catch(() => {});
}

function boot() {
  if (wanted.page === 'notfound') {
    showNotFound();
    return;
  }
  if (!wanted.room) wanted = null;
  const existing = saved.loadSession();
  offerWhatServerAllows();
  if (existing) enterChat(existing);
  else authView.show();
}

boot();
