// view/auth.js — the sign-in / create-account / guest screen: one form, three modes (guest only
// when the server allows it), errors next to it. It checks names and passwords by the
// protocol's rules before asking the server, and hands the rest to app.js through `onSubmit`.

import { NAME_RE, PASSWORD_MIN } from '../protocol.js';

const MODES = {
  signin: {
    title: 'Welcome back',
    subtitle: 'Sign in to pick up where you left off.',
    submit: 'Sign in',
    busy: 'Signing in…',
    autocomplete: 'current-password',
  },
  signup: {
    title: 'Create your account',
    subtitle: 'Pick a name people will know you by.',
    submit: 'Create account',
    busy: 'Creating account…',
    autocomplete: 'new-password',
  },
  guest: {
    title: 'Join as a guest',
    subtitle: 'Just a nickname, no password. Signing out ends a guest session for good.',
    submit: 'Join',
    busy: 'Joining…',
    autocomplete: 'off',
  },
};

export class AuthView {
  /** @param {{onSubmit: (mode: 'signin'|'signup'|'guest', username: string, password: string) => void}} actions */
  constructor(actions) {
    this.actions = actions;
    this.mode = 'signin';
    this.busy = false;
    const $ = (id) => document.getElementById(id);
    this.screen = $('auth-screen');
    this.form = $('auth-form');
    this.title = $('auth-title');
    this.subtitle = $('auth-subtitle');
    this.username = $('auth-username');
    this.usernameLabel = $('auth-username-label');
    this.password = $('auth-password');
    this.passwordLabel = $('auth-password-label');
    this.hint = $('auth-hint');
    this.error = $('auth-error');
    this.notice = $('auth-notice');
    this.submit = $('auth-submit');
    this.modeButtons = { signin: $('mode-signin'), signup: $('mode-signup'), guest: $('mode-guest') };
    for (const [mode, button] of Object.entries(this.modeButtons)) {
      button.addEventListener('click', () => this.setMode(mode));
    }
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitForm();
    });
    for (const input of [this.username, this.password]) {
      input.addEventListener('input', () => this.clearError());
    }
  }

  show(notice) {
    this.screen.hidden = false;
    this.setBusy(false);
    this.notice.hidden = !notice;
    this.notice.textContent = notice ?? '';
    this.password.value = '';
    (this.username.value ? this.password : this.username).focus();
  }

  hide() {
    this.screen.hidden = true;
  }

  /** Offer guest access (the server's `GET /api/config` said `allow_guests`). */
  offerGuests(allowed) {
    this.modeButtons.guest.hidden = !allowed;
    if (!allowed && this.mode === 'guest') this.setMode('signin');
  }

  setMode(mode) {
    this.mode = mode;
    const m = MODES[mode];
    this.title.textContent = m.title;
    this.subtitle.textContent = m.subtitle;
    this.submit.textContent = m.submit;
    this.password.autocomplete = m.autocomplete;
    this.hint.hidden = mode !== 'signup';
    const guest = mode === 'guest';
    this.usernameLabel.textContent = guest ? 'Nickname' : 'Username';
    this.password.hidden = guest;
    this.passwordLabel.hidden = guest;
    for (const [name, btn] of Object.entries(this.modeButtons)) {
      btn.setAttribute('aria-pressed', String(name === mode));
    }
    this.clearError();
  }

  setBusy(busy) {
    this.busy = busy;
    this.submit.disabled = busy;
    this.submit.textContent = busy ? MODES[this.mode].busy : MODES[this.mode].submit;
    this.form.setAttribute('aria-busy', String(busy));
  }

  /** Show an error; `field` ('username' | 'password') marks that input invalid and focuses it. */
  showError(text, field) {
    this.error.textContent = text;
    for (const input of [this.username, this.password]) input.removeAttribute('aria-invalid');
    const input = field === 'username' ? this.username : field === 'password' ? this.password : null;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  }

  clearError() {
    this.error.textContent = '';
    this.username.removeAttribute('aria-invalid');
    this.password.removeAttribute('aria-invalid');
  }

  submitForm() {
    if (this.busy) return;
    const username = this.username.value.trim();
    const password = this.password.value;
    if (!username) {
      return this.showError(this.mode === 'guest' ? 'Enter a nickname.' : 'Enter your username.', 'username');
    }
    if (!NAME_RE.test(username)) {
      return this.showError('Names are 1 to 32 letters, digits, "_", "-" or ".".', 'username');
    }
    if (this.mode === 'guest') {
      this.clearError();
      this.actions.onSubmit('guest', username, '');
      return;
    }
    if (!password) return this.showError('Enter your password.', 'password');
    if (this.mode === 'signup' && password.length < PASSWORD_MIN) {
      return this.showError(`Passwords need at least ${PASSWORD_MIN} characters.`, 'password');
    }
    this.clearError();
    this.actions.onSubmit(this.mode, username, password);
  }
}
