// Finding recordings: date range, case number, county office, supervisor,
// keywords; results with duration, participants and integrity.

import { h, replace } from './dom.js';
import { dayStart, errorText } from './api.js';
import { dateTime, duration } from './format.js';

const FIELDS = [
  { name: 'from', type: 'date', label: 'search.from' },
  { name: 'to', type: 'date', label: 'search.to' },
  { name: 'case', type: 'text', label: 'search.case' },
  { name: 'unit', type: 'text', label: 'search.unit' },
  { name: 'supervisor', type: 'text', label: 'search.supervisor' },
  { name: 'q', type: 'text', label: 'search.q', hint: 'search.qHint' },
];

// queryOf turns the form's values into API parameters: dates become the
// start of the day (from) and the start of the next day (to).
export function queryOf(values) {
  const q = {};
  for (const f of FIELDS) {
    const v = (values[f.name] || '').trim();
    if (!v) continue;
    if (f.name === 'from') q.from = dayStart(v);
    else if (f.name === 'to') q.to = dayStart(v, 1);
    else q[f.name] = v;
  }
  return q;
}

export function integrityKey(entry) {
  const r = entry.verification && entry.verification.result;
  return r ? `int.${r}` : 'int.unchecked';
}

export function mountSearch(ctx, root, state, onOpen) {
  const { t, api, i18n } = ctx;
  const inputs = {};
  const labels = {};
  const title = h('h1');
  const submit = h('button', { id: 'search-submit', class: 'btn primary', type: 'submit' });
  const status = h('p', { id: 'search-status', class: 'muted', role: 'status' });
  const results = h('div', { id: 'results' });
  let busy = false;

  const form = h('form', { id: 'search-form', class: 'card search', novalidate: true, on: { submit: onSubmit } },
    title,
    h('div', { class: 'fields' }, FIELDS.map((f) => {
      inputs[f.name] = h('input', { id: `search-${f.name}`, name: f.name, type: f.type, value: state.values[f.name] || '' });
      labels[f.name] = h('span');
      return h('label', { class: 'field' }, labels[f.name], inputs[f.name]);
    })),
    h('div', { class: 'actions' }, submit));

  function drawForm() {
    title.textContent = t('search.title');
    submit.textContent = t(busy ? 'search.busy' : 'search.submit');
    for (const f of FIELDS) {
      labels[f.name].textContent = t(f.label);
      if (f.hint) inputs[f.name].placeholder = t(f.hint);
    }
  }

  function drawResults() {
    const { list, more, error } = state;
    if (error) {
      status.textContent = errorText(error, t);
      status.className = 'form-error';
      replace(results);
      return;
    }
    status.className = 'muted';
    if (!list) {
      status.textContent = '';
      replace(results);
      return;
    }
    status.textContent = list.length === 0 ? t('search.empty') : more ? t('search.more', { n: list.length }) : t('search.count', { n: list.length });
    if (list.length === 0) {
      replace(results);
      return;
    }
    const locale = i18n.locale();
    const head = ['col.time', 'col.title', 'col.case', 'col.supervisor', 'col.units', 'col.duration', 'col.people', 'col.integrity', 'col.action'];
    replace(results, h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, head.map((k) => h('th', {}, t(k))))),
      h('tbody', {}, list.map((e) => {
        const r = e.verification && e.verification.result;
        return h('tr', { 'data-id': e.id },
          h('td', {}, dateTime(e.start, locale)),
          h('td', {}, e.title),
          h('td', {}, e.caseNumber || '—'),
          h('td', {}, e.supervisorName || '—'),
          h('td', {}, (e.units || []).map((u) => u.name || u.code).join('、') || '—'),
          h('td', {}, duration(e.durationSeconds, i18n.lang())),
          h('td', { title: (e.participants || []).map((p) => p.name).join('、') }, t('search.people', { n: (e.participants || []).length })),
          h('td', {}, h('span', { class: `chip ${r === 'intact' ? 'ok' : r ? 'bad' : ''}` }, t(integrityKey(e)))),
          h('td', {}, h('button', { class: 'btn small open', type: 'button', 'data-id': e.id, on: { click: () => onOpen(e.id) } }, t('search.open'))));
      }))));
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    if (busy) return;
    for (const f of FIELDS) state.values[f.name] = inputs[f.name].value;
    busy = true;
    drawForm();
    try {
      const r = await api.search(queryOf(state.values));
      state.list = r.recordings || [];
      state.more = !!r.more;
      state.error = null;
    } catch (err) {
      state.error = err;
      state.list = null;
    } finally {
      busy = false;
      drawForm();
      drawResults();
    }
  }

  replace(root, form, status, results);
  drawForm();
  drawResults();
  if (!state.list && !state.error) form.requestSubmit();
  return { onLang: () => { drawForm(); drawResults(); }, destroy() {} };
}
