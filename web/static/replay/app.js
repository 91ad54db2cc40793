// The auditor's replay page: sign in, find a recording, replay it with
// every participant on one timeline, see whether it is intact, export it.
// Routes: #/ (search) and #/r/<recording id>.

import { createI18n } from './i18n.js';
import { createApi, errorText } from './api.js';
import { h, replace } from './dom.js';
import { mountSearch } from './search.js';
import { mountPlayer } from './player.js';

const i18n = createI18n({ storage: globalThis.localStorage });
const t = i18n.t;
const view = document.getElementById('view');
const flash = document.getElementById('flash');
const who = document.getElementById('who');
const btnLang = document.getElementById('btn-lang');
const btnOut = document.getElementById('btn-signout');
const brand = document.getElementById('brand');

let account = null;
let mounted = null;
const searchState = { values: {}, list: null, more: false, error: null };

const api = createApi({
  acceptLanguage: () => i18n.locale(),
  onUnauthenticated: () => {
    account = null;
    showLogin(t('login.expired'));
  },
});
const ctx = { t, api, i18n };

function unmount() {
  if (mounted && mounted.destroy) mounted.destroy();
  mounted = null;
}

function drawChrome() {
  document.documentElement.lang = i18n.lang() === 'zh' ? 'zh-CN' : 'en';
  document.title = t('app.title');
  brand.textContent = t('app.brand');
  btnLang.textContent = t('app.lang');
  btnLang.title = t('app.langTitle');
  btnOut.textContent = t('app.signOut');
  btnOut.hidden = !account;
  who.textContent = account ? `${account.displayName || account.username} · ${t(`role.${account.role}`)}` : '';
}

function showLogin(message = '') {
  unmount();
  drawChrome();
  const user = h('input', { id: 'login-username', name: 'username', autocomplete: 'username' });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password' });
  const error = h('p', { id: 'login-error', class: 'form-error', role: 'alert', hidden: !message }, message);
  const submit = h('button', { id: 'login-submit', class: 'btn primary wide', type: 'submit' });
  const title = h('h1');
  const lead = h('p', { class: 'muted' });
  const ul = h('span');
  const pl = h('span');
  let busy = false;
  const draw = () => {
    title.textContent = t('login.title');
    lead.textContent = t('login.lead');
    ul.textContent = t('login.username');
    pl.textContent = t('login.password');
    submit.textContent = t(busy ? 'login.busy' : 'login.submit');
  };
  const form = h('form', { id: 'login-form', class: 'card login', novalidate: true, on: { async submit(ev) {
    ev.preventDefault();
    if (busy) return;
    if (!user.value.trim() || !pass.value) {
      error.textContent = t('login.empty');
      error.hidden = false;
      return;
    }
    busy = true;
    submit.disabled = true;
    draw();
    try {
      const r = await api.login(user.value.trim(), pass.value);
      pass.value = '';
      account = r.account;
      route();
    } catch (err) {
      error.textContent = errorText(err, t);
      error.hidden = false;
    } finally {
      busy = false;
      submit.disabled = false;
      draw();
    }
  } } }, title, lead, h('label', { class: 'field' }, ul, user), h('label', { class: 'field' }, pl, pass), error, submit);
  draw();
  replace(view, h('div', { class: 'login-wrap' }, form));
  mounted = { onLang: draw };
  user.focus();
}

function route() {
  if (!account) {
    showLogin();
    return;
  }
  unmount();
  flash.hidden = true;
  drawChrome();
  const m = /^#\/r\/(.+)$/.exec(location.hash);
  if (m) {
    mounted = mountPlayer(ctx, view, decodeURIComponent(m[1]), () => { location.hash = '#/'; });
  } else {
    mounted = mountSearch(ctx, view, searchState, (id) => { location.hash = `#/r/${encodeURIComponent(id)}`; });
  }
}

btnLang.addEventListener('click', () => i18n.set(i18n.lang() === 'zh' ? 'en' : 'zh'));
i18n.onChange(() => {
  drawChrome();
  if (mounted && mounted.onLang) mounted.onLang();
});
btnOut.addEventListener('click', async () => {
  try {
    await api.logout();
  } catch {
    // Signed out locally either way.
  }
  account = null;
  showLogin();
});
window.addEventListener('hashchange', route);

(async () => {
  drawChrome();
  try {
    const me = await api.me();
    account = me && me.account;
  } catch (err) {
    flash.textContent = errorText(err, t);
    flash.hidden = false;
  }
  route();
})();
