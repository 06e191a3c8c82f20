// view/bots.js — "Bots and integrations" in the account dialog (docs/api.md): make a bot, add it
// to the room open now, make and revoke its API tokens (a new token is shown once, with a copy
// button), delete it. Only touches the DOM it is given; every request goes through `actions`.
// Text is set with textContent (the `h` helper), never innerHTML.

import { h } from './dom.js';
import { errorText } from '../protocol.js';

export class BotsPanel {
  /**
   * @param {object} actions  listBots, createBot, deleteBot, listBotTokens, createBotToken,
   *                          revokeBotToken, addBotToCurrentRoom (-> the room's title)
   */
  constructor(actions) {
    this.actions = actions;
    this.form = document.getElementById('bot-form');
    this.name = document.getElementById('bot-name');
    this.status = document.getElementById('bots-status');
    this.list = document.getElementById('bots-list');
    this.secret = document.getElementById('bot-secret');
    this.secretText = document.getElementById('bot-secret-text');
    document.getElementById('bot-secret-copy').addEventListener('click', () => {
      navigator.clipboard?.writeText(this.secretText.textContent).catch(() => {});
    });
    this.form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const name = this.name.value.trim();
      if (!name) return;
      try {
        await this.actions.createBot(name);
        this.name.value = '';
        await this.load();
      } catch (err) {
        this.status.textContent = errorText(err.code, err.message);
      }
    });
  }

  /** Shows the section (a guest has no bots) and lists the bots. */
  async open(guest) {
    this.form.closest('section').hidden = guest;
    this.secret.hidden = true;
    this.secretText.textContent = '';
    if (!guest) await this.load();
  }

  async load() {
    this.status.textContent = 'Loading bots…';
    let bots;
    try {
      bots = await this.actions.listBots();
    } catch (err) {
      this.status.textContent = errorText(err.code, err.message);
      return;
    }
    this.status.textContent = bots.length ? `${bots.length} ${bots.length === 1 ? 'bot' : 'bots'}` : 'No bots yet';
    const rows = await Promise.all(bots.map((b) => this.botRow(b)));
    this.list.replaceChildren(...rows);
  }

  /** Shows a new secret once, with its copy button. */
  reveal(text) {
    this.secretText.textContent = text;
    this.secret.hidden = false;
  }

  button(label, aria, onClick) {
    const btn = h('button', {
      type: 'button',
      class: 'btn btn-sm btn-ghost',
      attrs: { 'aria-label': aria },
      on: {
        click: async () => {
          btn.disabled = true;
          try {
            await onClick();
          } catch (err) {
            this.status.textContent = errorText(err.code, err.message);
          } finally {
            btn.disabled = false;
          }
        },
      },
    }, label);
    return btn;
  }

  async botRow(bot) {
    let tokens = [];
    try {
      tokens = await this.actions.listBotTokens(bot.id);
    } catch {
      // listed without its tokens
    }
    const tokenRows = tokens.map((t) => h('li', { class: 'bot-token', dataset: { tokenId: t.id } },
      h('span', { class: 'browse-meta' }, `token “${t.name}”`),
      this.button('Revoke', `Revoke token ${t.name} of ${bot.name}`, async () => {
        await this.actions.revokeBotToken(bot.id, t.id);
        await this.load();
      })));
    return h('li', { class: 'browse-row bot-row', dataset: { botId: bot.id, botName: bot.name } },
      h('span', { class: 'browse-name', title: bot.name }, bot.name),
      this.button('New token', `New token for ${bot.name}`, async () => {
        const made = await this.actions.createBotToken(bot.id, 'token');
        await this.load();
        this.reveal(made.token);
      }),
      this.button('Add to this room', `Add ${bot.name} to the room open now`, async () => {
        const title = await this.actions.addBotToCurrentRoom(bot.name);
        this.status.textContent = `${bot.name} is in ${title} now`;
      }),
      this.button('Delete', `Delete ${bot.name}`, async () => {
        await this.actions.deleteBot(bot.id);
        await this.load();
      }),
      tokenRows.length ? h('ul', { class: 'bot-tokens' }, tokenRows) : null);
  }
}

/**
 * Incoming webhooks in a room's settings dialog (owners and moderators): add one (its URL is
 * shown once, with a copy button), list them, delete one.
 */
export class WebhooksPanel {
  /** @param {object} actions  listWebhooks(room), createWebhook(room, name), deleteWebhook(room, id) */
  constructor(actions) {
    this.actions = actions;
    this.roomId = null;
    this.name = document.getElementById('hook-name');
    this.status = document.getElementById('hooks-status');
    this.list = document.getElementById('hooks-list');
    this.secret = document.getElementById('hook-secret');
    this.secretText = document.getElementById('hook-secret-text');
    document.getElementById('hook-secret-copy').addEventListener('click', () => {
      navigator.clipboard?.writeText(this.secretText.textContent).catch(() => {});
    });
    document.getElementById('hook-add').addEventListener('click', async () => {
      const name = this.name.value.trim();
      if (!name || this.roomId === null) return;
      try {
        const made = await this.actions.createWebhook(this.roomId, name);
        this.name.value = '';
        await this.load();
        this.secretText.textContent = new URL(made.url, window.location.origin).href;
        this.secret.hidden = false;
      } catch (err) {
        this.status.textContent = errorText(err.code, err.message);
      }
    });
  }

  async open(roomId) {
    this.roomId = roomId;
    this.secret.hidden = true;
    this.secretText.textContent = '';
    await this.load();
  }

  async load() {
    const roomId = this.roomId;
    let hooks;
    try {
      hooks = await this.actions.listWebhooks(roomId);
    } catch (err) {
      this.status.textContent = errorText(err.code, err.message);
      return;
    }
    if (roomId !== this.roomId) return;
    this.status.textContent = hooks.length ? `${hooks.length} ${hooks.length === 1 ? 'webhook' : 'webhooks'}` : 'No webhooks';
    this.list.replaceChildren(...hooks.map((hook) => {
      const del = h('button', {
        type: 'button',
        class: 'btn btn-sm btn-ghost',
        attrs: { 'aria-label': `Delete webhook ${hook.name}` },
        on: {
          click: async () => {
            del.disabled = true;
            try {
              await this.actions.deleteWebhook(roomId, hook.id);
              await this.load();
            } catch (err) {
              del.disabled = false;
              this.status.textContent = errorText(err.code, err.message);
            }
          },
        },
      }, 'Delete');
      return h('li', { class: 'browse-row', dataset: { hookId: hook.id } },
        h('span', { class: 'browse-name' }, hook.name), del);
    }));
  }
}
