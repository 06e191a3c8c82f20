// view/people.js — people as the client shows them, and what one does about oneself: avatars
// with a profile picture (falling back to the coloured initial of dom.js), "last seen" in
// words, the profile card (display name, @name, status, picture, online or last seen, Message),
// my profile dialog (display name, status, picture upload and removal, the server's errors),
// the "Add person" dialog of a group DM (which starts a new group), and the account deletion
// dialog (password, `invalid_credentials`). Reads the store; acts only through `actions`; text
// only through text nodes.

import { h, avatar, formatFull } from './dom.js';
import { NAME_RE, errorText } from '../protocol.js';
import { keyedUrl } from '../files.js';

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "just now", "5 minutes ago", "yesterday", "3 days ago": how long ago `ts` was. */
export function agoText(ts, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 60) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return relative.format(-m, 'minute');
  const hrs = Math.round(m / 60);
  if (hrs < 24) return relative.format(-hrs, 'hour');
  const d = Math.round(hrs / 24);
  if (d < 30) return relative.format(-d, 'day');
  const mo = Math.round(d / 30);
  if (mo < 12) return relative.format(-mo, 'month');
  return relative.format(-Math.round(d / 365), 'year');
}

/** "online", "last seen 5 minutes ago", "offline": a Member's presence in words. */
export function seenText(member, online) {
  // A bot has no presence: it is never "online", "offline" or "last seen".
  if (member?.bot || member?.user?.bot) return '';
  if (online) return 'online';
  return member?.last_seen ? `last seen ${agoText(member.last_seen)}` : 'offline';
}

/**
 * A person's avatar: their picture when their profile has one (the thumbnail, with the
 * session's download key), else the coloured initial. Options as dom.js `avatar`.
 */
export function personAvatar(store, user, options = {}) {
  const el = avatar(user, options);
  const picture = user ? store.profileOf(user.id)?.avatar : null;
  if (picture) addPicture(el, picture);
  return el;
}

/** Put a FileInfo's image over an avatar's initial (removed again if it cannot be loaded). */
export function addPicture(el, picture) {
  const img = h('img', { class: 'avatar-img', alt: '', attrs: { draggable: 'false' } });
  img.addEventListener('error', () => img.remove(), { once: true });
  img.addEventListener('load', () => el.classList.add('has-picture'), { once: true });
  el.prepend(img);
  keyedUrl(picture.thumb_url ?? picture.url).then((u) => img.setAttribute('src', u), () => img.remove());
  return el;
}

/** Wire a dialog's backdrop click and its [data-close] buttons. */
function closable(dlg) {
  dlg.addEventListener('click', (e) => {
    if (e.target === dlg) dlg.close();
    if (e.target.closest('[data-close]')) dlg.close();
  });
}

export class PeopleView {
  /**
   * @param {object} actions getProfile(name) -> Member, updateProfile(data) -> Member,
   *                         uploadAvatar(file) -> FileInfo, openDm(name), addToGroup(roomId, name),
   *                         deleteAccount(password | null) (the request ones reject with {code})
   */
  constructor(actions) {
    this.actions = actions;
    const $ = (id) => document.getElementById(id);
    this.$ = $;
    this.card = $('dlg-profile-card');
    this.profile = $('dlg-profile');
    this.groupAdd = $('dlg-group-add');
    this.deleteDlg = $('dlg-delete-account');
    this.all = [this.card, this.profile, this.groupAdd, this.deleteDlg];
    for (const dlg of this.all) closable(dlg);
    this.store = null;
    /** the person the card shows (their name), and which answer it waits for */
    this.cardFor = null;
    /** the group "Add person" is about */
    this.groupRoom = null;

    $('profile-card-message').addEventListener('click', async () => {
      const name = this.cardFor;
      if (!name) return;
      try {
        await this.actions.openDm(name);
        this.card.close();
      } catch (err) {
        $('profile-card-error').textContent = errorText(err.code, err.message);
      }
    });
    /** whether the open profile form was edited: the fresh profile must not overwrite it */
    this.profileEdited = false;
    $('profile-form').addEventListener('input', () => { this.profileEdited = true; });
    $('profile-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.saveProfile();
    });
    $('profile-avatar-upload').addEventListener('click', () => $('profile-avatar-input').click());
    $('profile-avatar-input').addEventListener('change', (e) => {
      const file = e.target.files?.[0];
      e.target.value = '';
      if (file) this.uploadAvatar(file);
    });
    $('profile-avatar-remove').addEventListener('click', () => this.changeAvatar(null, 'Picture removed.'));
    $('group-add-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitGroupAdd();
    });
    $('delete-account-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitDelete();
    });
  }

  closeAll() {
    for (const dlg of this.all) if (dlg.open) dlg.close();
  }

  // ---- the profile card --------------------------------------------------------------------

  /** The card of `user` ({id, name}): what is held at once, then the server's `profile.get`. */
  async openCard(store, user) {
    this.store = store;
    this.cardFor = user.name;
    this.showCard(store, user, store.profileOf(user.id));
    if (!store.profileOf(user.id)) this.$('profile-card-seen').textContent = 'Loading…';
    if (!this.card.open) this.card.showModal();
    let member;
    try {
      member = await this.actions.getProfile(user.name);
    } catch (err) {
      if (this.cardFor !== user.name) return;
      this.$('profile-card-error').textContent = err.code === 'unknown_user'
        ? 'This account does not exist any more.' : errorText(err.code, err.message);
      this.$('profile-card-seen').textContent = '';
      this.$('profile-card-message').hidden = true;
      return;
    }
    if (this.cardFor !== user.name || !this.card.open) return;
    this.showCard(store, member.user, member);
  }

  showCard(store, user, member) {
    const $ = this.$;
    const self = user.id === store.me?.id;
    const online = member ? member.online || store.isOnline(user.id) : store.isOnline(user.id);
    const pic = avatar(user, { size: 'lg' });
    if (member?.avatar) addPicture(pic, member.avatar);
    $('profile-card-avatar').replaceChildren(pic);
    $('profile-card-name').textContent = member?.display_name || user.name;
    $('profile-card-user').textContent = `@${user.name}`;
    $('profile-card-bot').hidden = !member?.bot;
    const status = $('profile-card-status');
    status.textContent = member?.status ?? '';
    status.hidden = !member?.status;
    const seen = $('profile-card-seen');
    seen.textContent = member ? seenText(member, online) : '';
    seen.title = !online && !member?.bot && member?.last_seen ? formatFull(member.last_seen) : '';
    $('profile-card-error').textContent = '';
    $('profile-card-message').hidden = self || user.name === 'deleted user';
  }

  // ---- my profile --------------------------------------------------------------------------

  async openProfile(store) {
    this.store = store;
    const $ = this.$;
    const me = store.me;
    if (!me) return;
    $('profile-username').textContent = `@${me.name}`;
    $('profile-error').textContent = '';
    $('profile-saved').textContent = '';
    $('profile-avatar-status').textContent = '';
    this.fillProfile(store.profileOf(me.id));
    this.profileEdited = false;
    if (!this.profile.open) this.profile.showModal();
    $('profile-display').focus();
    try {
      const member = await this.actions.getProfile(me.name);
      // What the user typed meanwhile stays; the picture is not a form field.
      if (this.profile.open && !this.profileEdited) this.fillProfile(member);
      else if (this.profile.open) this.showOwnAvatar(member);
    } catch {
      // what is held stays in the form
    }
  }

  fillProfile(member) {
    const $ = this.$;
    $('profile-display').value = member?.display_name ?? '';
    $('profile-status').value = member?.status ?? '';
    this.showOwnAvatar(member);
  }

  showOwnAvatar(member) {
    const me = this.store?.me;
    const pic = avatar(me, { size: 'lg' });
    if (member?.avatar) addPicture(pic, member.avatar);
    this.$('profile-avatar').replaceChildren(pic);
    this.$('profile-avatar-remove').hidden = !member?.avatar;
  }

  async saveProfile() {
    const $ = this.$;
    $('profile-error').textContent = '';
    $('profile-saved').textContent = '';
    let member;
    try {
      member = await this.actions.updateProfile({
        display_name: $('profile-display').value,
        status: $('profile-status').value,
      });
    } catch (err) {
      $('profile-error').textContent = err.code === 'invalid_request'
        ? `The server refused it: ${err.message}` : errorText(err.code, err.message);
      return;
    }
    $('profile-display').value = member.display_name ?? '';
    $('profile-status').value = member.status ?? '';
    $('profile-saved').textContent = 'Saved. Others see it the next time they load your profile.';
  }

  async uploadAvatar(file) {
    const status = this.$('profile-avatar-status');
    this.$('profile-error').textContent = '';
    status.textContent = 'Uploading…';
    let info;
    try {
      info = await this.actions.uploadAvatar(file);
    } catch (err) {
      status.textContent = '';
      this.$('profile-error').textContent = errorText(err.code, err.message);
      return;
    }
    await this.changeAvatar(info.id, 'Picture updated.');
  }

  async changeAvatar(id, done) {
    const status = this.$('profile-avatar-status');
    try {
      const member = await this.actions.updateProfile({ avatar: id });
      this.showOwnAvatar(member);
      status.textContent = done;
    } catch (err) {
      status.textContent = '';
      this.$('profile-error').textContent = errorText(err.code, err.message);
    }
  }

  // ---- adding someone to a group DM ----------------------------------------------------------

  openGroupAdd(roomId) {
    this.groupRoom = roomId;
    const input = this.$('group-add-name');
    input.value = '';
    this.$('group-add-error').textContent = '';
    if (!this.groupAdd.open) this.groupAdd.showModal();
    input.focus();
  }

  async submitGroupAdd() {
    const input = this.$('group-add-name');
    const error = this.$('group-add-error');
    const name = input.value.trim().replace(/^@/, '');
    if (!NAME_RE.test(name)) {
      error.textContent = 'Enter a username.';
      input.focus();
      return;
    }
    try {
      await this.actions.addToGroup(this.groupRoom, name);
      this.groupAdd.close();
    } catch (err) {
      error.textContent = err.code === 'invalid_request'
        ? `Cannot add ${name}: ${err.message}` : err.code === 'unknown_user' ? `Nobody is called ${name}.` : errorText(err.code, err.message);
      input.focus();
    }
  }

  // ---- deleting my account -------------------------------------------------------------------

  openDelete(store) {
    const guest = Boolean(store.me?.guest);
    const input = this.$('delete-account-password');
    input.value = '';
    input.hidden = guest;
    this.$('delete-account-label').hidden = guest;
    this.$('delete-account-error').textContent = '';
    if (!this.deleteDlg.open) this.deleteDlg.showModal();
    if (!guest) input.focus();
    this.deleteGuest = guest;
  }

  async submitDelete() {
    const input = this.$('delete-account-password');
    const error = this.$('delete-account-error');
    error.textContent = '';
    try {
      await this.actions.deleteAccount(this.deleteGuest ? null : input.value);
    } catch (err) {
      error.textContent = err.code === 'invalid_credentials' ? 'That password is wrong.' : errorText(err.code, err.message);
      input.select();
      return;
    }
    if (this.deleteDlg.open) this.deleteDlg.close();
  }
}
