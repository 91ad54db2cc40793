// The sign-in form.

import { h } from './dom.js';
import { errorText } from './api.js';

export function mountLogin(ctx, root, onSignedIn) {
  const { t, api } = ctx;
  const user = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { id: 'login-error', class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { id: 'login-submit', class: 'btn primary wide', type: 'submit' });
  const title = h('h1');
  const lead = h('p', { class: 'muted' });
  const userLabel = h('span');
  const passLabel = h('span');
  let busy = false;

  function draw() {
    title.textContent = t('login.title');
    lead.textContent = t('login.lead');
    userLabel.textContent = t('login.username');
    passLabel.textContent = t('login.password');
    submit.textContent = t(busy ? 'login.busy' : 'login.submit');
  }

  const form = h('form', { class: 'card login', novalidate: true, on: { submit: onSubmit } },
    title, lead,
    h('label', { class: 'field' }, userLabel, user),
    h('label', { class: 'field' }, passLabel, pass),
    error, submit);

  async function onSubmit(ev) {
    // The CSP has form-action 'none': the form never navigates, it only
    // triggers this handler.
    ev.preventDefault();
    if (busy) return;
    error.hidden = true;
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
      onSignedIn(r.account);
    } catch (err) {
      error.textContent = errorText(err, t);
      error.hidden = false;
      pass.select();
    } finally {
      busy = false;
      submit.disabled = false;
      draw();
    }
  }

  draw();
  root.append(h('div', { class: 'login-wrap' }, form));
  user.focus();
  return { onLang: draw };
}
