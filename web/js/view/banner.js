// view/banner.js — the connection banner at the top: connecting, reconnecting (with the
// backoff countdown and "Retry now"), offline (the browser has no network: shown at once, no
// countdown), and a short "Connected" once the link is back.
// Also says how many written messages are waiting to go out.

export class BannerView {
  /** @param {object} actions retryNow() */
  constructor(actions) {
    this.el = document.getElementById('banner');
    this.text = document.getElementById('banner-text');
    this.retry = document.getElementById('banner-retry');
    this.retry.addEventListener('click', () => actions.retryNow());
    this.tick = 0;
    this.hideTimer = 0;
    this.lastStatus = 'idle';
  }

  render(store, topics) {
    if (!topics.has('connection') && !topics.has('pending') && !topics.has('all')) return;
    clearInterval(this.tick);
    const { status } = store.connection;
    const waiting = store.allPending().filter((p) => p.state !== 'failed').length;
    const was = this.lastStatus;
    this.lastStatus = status;

    if (status === 'online' || status === 'idle' || status === 'stopped') {
      if (status === 'online' && was !== 'online' && was !== 'idle' && was !== 'connecting') {
        this.show('ok', 'Connected.', false);
        clearTimeout(this.hideTimer);
        this.hideTimer = setTimeout(() => this.hide(), 2000);
      } else if (this.el.dataset.state !== 'ok') {
        this.hide();
      }
      return;
    }
    clearTimeout(this.hideTimer);
    const queued = waiting ? ` ${waiting} ${waiting === 1 ? 'message' : 'messages'} will be sent when it is back.` : '';
    if (status === 'connecting') {
      this.show('info', 'Connecting…', false);
    } else if (status === 'offline') {
      // No countdown: the link comes back when the network does (the browser's `online`).
      this.show('error', `You are offline. Natter reconnects when the network is back.${queued}`, true);
    } else if (status === 'reconnecting') {
      this.show('warn', `Reconnecting…${queued}`, false);
    } else {
      const paint = () => {
        const secs = Math.max(0, Math.ceil((store.connection.retryAt - Date.now()) / 1000));
        const { attempt, everOnline } = store.connection;
        const head = !everOnline || attempt > 3 ? 'Cannot reach the server.' : 'Connection lost.';
        this.show('warn', `${head} Retrying in ${secs}s.${queued}`, true);
      };
      paint();
      this.tick = setInterval(paint, 1000);
    }
  }

  show(state, text, retry) {
    this.el.hidden = false;
    this.el.dataset.state = state;
    this.text.textContent = text;
    this.retry.hidden = !retry;
    document.body.classList.add('has-banner');
  }

  hide() {
    this.el.hidden = true;
    delete this.el.dataset.state;
    document.body.classList.remove('has-banner');
  }
}
