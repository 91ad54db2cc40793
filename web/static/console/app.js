// The supervisor console: sign-in, the session list, scheduling, the
// session page (links, lobby, moderation, attendance) and the overview. One
// page, routed by the URL fragment (#/sessions, #/new, #/session/ID,
// #/overview) so every screen can be bookmarked and reloaded without the
// server knowing the routes.

import { createI18n } from './i18n.js';
import { createApi, errorText } from './api.js';
import { h } from './dom.js';
import { mountLogin } from './login.js';
import { mountSessionList, mountSchedule } from './sessions.js';
import { mountSession } from './session.js';
import { mountOverview } from './overview.js';

// Scope owns a view's timers: navigating away ends them all, so a hidden
// view never keeps polling the API.
class Scope {
  constructor() {
    this.timers = new Set();
    this.live = true;
  }

  // every runs fn now and then ms after each run ends (never two at once);
  // while the tab is hidden it waits instead of polling.
  every(ms, fn) {
    const tick = async () => {
      if (!this.live) return;
      if (!document.hidden) {
        try {
          await fn();
        } catch (err) {
          console.warn('[console] refresh failed', err);
        }
      }
      if (!this.live) return;
      const id = setTimeout(() => {
        this.timers.delete(id);
        tick();
      }, ms);
      this.timers.add(id);
    };
    tick();
  }

  dispose() {
    this.live = false;
    for (const id of this.timers) clearTimeout(id);
    this.timers.clear();
  }
}

class Console {
  constructor(doc) {
    this.doc = doc;
    this.$ = (id) => doc.getElementById(id);
    this.i18n = createI18n();
    this.t = (k, p) => this.i18n.t(k, p);
    this.account = null;
    this.view = null;
    this.scope = null;
    this.flashTimer = null;
    this.api = createApi({
      acceptLanguage: () => this.i18n.acceptLanguage(),
      onUnauthenticated: () => this.signedOut('login.expired'),
    });
    this.$('btn-lang').addEventListener('click', () => this.i18n.toggle());
    this.$('btn-signout').addEventListener('click', () => this.signOut());
    window.addEventListener('hashchange', () => this.route());
    this.i18n.onChange(() => {
      this.drawHeader();
      if (this.view && this.view.onLang) this.view.onLang();
    });
    this.i18n.apply();
  }

  async start() {
    try {
      const me = await this.api.me();
      if (me) this.account = me.account;
    } catch (err) {
      this.flash(errorText(err, this.t), 'error', 0);
    }
    this.route();
  }

  // ctx is what every view gets: the API, the translator and page services.
  ctx() {
    return {
      api: this.api,
      t: this.t,
      i18n: this.i18n,
      account: this.account,
      scope: this.scope,
      navigate: (hash) => {
        if (window.location.hash === hash) this.route();
        else window.location.hash = hash;
      },
      flash: (msg, tone, ms) => this.flash(msg, tone, ms),
      fail: (err) => this.flash(errorText(err, this.t), 'error', 8000),
      confirm: (text) => this.confirm(text),
    };
  }

  route() {
    if (this.scope) this.scope.dispose();
    if (this.view && this.view.unmount) this.view.unmount();
    this.scope = new Scope();
    const root = this.$('view');
    root.replaceChildren();
    this.drawHeader();
    if (!this.account) {
      this.view = mountLogin(this.ctx(), root, (acct) => {
        this.account = acct;
        this.hideFlash();
        this.route();
      });
      return;
    }
    const hash = window.location.hash.replace(/^#\/?/, '');
    const [page, arg] = hash.split('/');
    const ctx = this.ctx();
    switch (page) {
      case 'new':
        this.view = mountSchedule(ctx, root);
        break;
      case 'session':
        this.view = mountSession(ctx, root, decodeURIComponent(arg || ''));
        break;
      case 'overview':
        this.view = mountOverview(ctx, root);
        break;
      default:
        this.view = mountSessionList(ctx, root);
    }
    this.markNav(page || 'sessions');
  }

  drawHeader() {
    const signedIn = !!this.account;
    this.$('nav').hidden = !signedIn;
    this.$('btn-signout').hidden = !signedIn;
    const who = this.$('who');
    who.replaceChildren();
    if (signedIn) {
      const a = this.account;
      who.append(h('span', { class: 'who-name' }, a.displayName || a.username), h('span', { class: 'who-role' }, this.t(`prole.${a.role}`)));
    }
  }

  markNav(page) {
    const active = page === 'session' ? 'sessions' : page;
    for (const a of this.doc.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.nav === active);
  }

  async signOut() {
    try {
      await this.api.logout();
    } catch (err) {
      // The cookie may already be gone; the page signs out either way.
      console.warn('[console] logout', err);
    }
    this.signedOut('');
  }

  signedOut(messageKey) {
    if (!this.account) return;
    this.account = null;
    if (messageKey) this.flash(this.t(messageKey), 'warn', 8000);
    this.route();
  }

  // flash shows a strip under the header; ms 0 keeps it until replaced.
  flash(text, tone = 'ok', ms = 3500) {
    const f = this.$('flash');
    clearTimeout(this.flashTimer);
    f.textContent = text;
    f.className = `flash ${tone}`;
    f.hidden = false;
    if (ms) this.flashTimer = setTimeout(() => this.hideFlash(), ms);
  }

  hideFlash() {
    this.$('flash').hidden = true;
  }

  // confirm asks before something that cannot be undone (end, remove,
  // revoke); it resolves true on OK.
  confirm(text) {
    const box = this.$('confirm');
    this.$('confirm-text').textContent = text;
    box.hidden = false;
    const ok = this.$('confirm-ok');
    const cancel = this.$('confirm-cancel');
    ok.focus();
    return new Promise((resolve) => {
      const done = (v) => {
        box.hidden = true;
        ok.removeEventListener('click', yes);
        cancel.removeEventListener('click', no);
        box.removeEventListener('keydown', key);
        resolve(v);
      };
      const yes = () => done(true);
      const no = () => done(false);
      const key = (e) => {
        if (e.key === 'Escape') done(false);
      };
      ok.addEventListener('click', yes);
      cancel.addEventListener('click', no);
      box.addEventListener('keydown', key);
    });
  }
}

new Console(document).start();
