// The supervisor's session list, and the form that schedules a session.

import { h, replace, chip, changeTracker } from './dom.js';
import { errorText } from './api.js';
import { dateTime, inputValue, fromInput, toRFC3339, cleanUnits } from './format.js';

const LIST_REFRESH_MS = 10000;

export function statusChip(t, status) {
  return chip(t(`st.${status}`), `st-${status}`, { 'data-status': status });
}

export function mountSessionList(ctx, root) {
  const { t, api, scope } = ctx;
  let filter = 'active';
  let q = '';
  let data = null;
  const changed = changeTracker();
  const title = h('h1');
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const search = h('input', { id: 'list-search', type: 'search', class: 'search',
    on: { input: () => { q = search.value.trim(); refresh(); } } });
  const body = h('div', { id: 'session-list' });
  const newBtn = h('a', { class: 'btn primary', href: '#/new', id: 'btn-new-session' });

  function drawChrome() {
    title.textContent = t('list.title');
    newBtn.textContent = t('nav.new');
    search.placeholder = t('list.search');
    replace(tabs, ...['active', 'all'].map((f) => h('button', {
      type: 'button', role: 'tab', class: f === filter ? 'tab active' : 'tab', 'aria-selected': String(f === filter),
      on: { click: () => { filter = f; drawChrome(); refresh(); } },
    }, t(`list.${f}`))));
  }

  function draw() {
    if (!data) return replace(body, h('p', { class: 'muted' }, t('con.loading')));
    if (!data.sessions.length) return replace(body, h('p', { class: 'empty' }, t('list.empty')));
    const head = h('tr', {}, ...['colTitle', 'colCase', 'colStart', 'colUnits', 'colStatus'].map((k) => h('th', {}, t(`list.${k}`))));
    const rows = data.sessions.map((s) => h('tr', { 'data-session-id': s.id },
      h('td', {}, h('a', { href: `#/session/${encodeURIComponent(s.id)}`, class: 'session-link' }, s.title)),
      h('td', {}, s.caseNumber || t('con.none')),
      h('td', { class: 'nowrap' }, dateTime(s.scheduledStart)),
      h('td', { title: s.invitedUnits.map((u) => u.name).join('、') }, t('list.units', { n: s.invitedUnits.length })),
      h('td', {}, statusChip(t, s.status))));
    replace(body, h('table', { class: 'table' }, h('thead', {}, head), h('tbody', {}, rows)));
  }

  async function refresh() {
    try {
      const params = { q, limit: 200 };
      if (filter === 'active') params.status = 'scheduled,lobby,live';
      const r = await api.listSessions(params);
      // Newest first on "all": a supervisor looks for what is next or what just happened.
      if (filter === 'all') r.sessions.reverse();
      data = r;
      if (changed('list', [filter, r])) draw();
    } catch (err) {
      ctx.fail(err);
    }
  }

  drawChrome();
  draw();
  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' }, title, newBtn),
    h('div', { class: 'list-tools' }, tabs, search), body));
  scope.every(LIST_REFRESH_MS, refresh);
  return { onLang: () => { drawChrome(); draw(); } };
}

// Shanxi examples for the first rows; real codes are the units' own.
const UNIT_EXAMPLES = [
  ['140105', '小店区信访局'],
  ['140106', '迎泽区信访局'],
  ['140121', '清徐县信访局'],
];

function nextQuarter(now) {
  const d = new Date(now.getTime());
  d.setSeconds(0, 0);
  d.setMinutes(Math.ceil((d.getMinutes() + 1) / 15) * 15);
  return d;
}

export function mountSchedule(ctx, root) {
  const { t, api } = ctx;
  const start0 = nextQuarter(new Date());
  const f = {
    title: h('input', { id: 'f-title', 'data-field': 'title', maxlength: 200, required: true }),
    caseNumber: h('input', { id: 'f-case', 'data-field': 'caseNumber', maxlength: 64 }),
    start: h('input', { id: 'f-start', 'data-field': 'scheduledStart', type: 'datetime-local', value: inputValue(start0) }),
    end: h('input', { id: 'f-end', 'data-field': 'scheduledEnd', type: 'datetime-local',
      value: inputValue(new Date(start0.getTime() + 3600e3)) }),
    recording: h('input', { id: 'f-recording', 'data-field': 'recording', type: 'checkbox', checked: true }),
  };
  const units = h('div', { id: 'f-units', class: 'unit-rows' });
  const error = h('p', { id: 'f-error', class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { id: 'f-submit', type: 'submit', class: 'btn primary' });
  const nowBtn = h('button', { id: 'f-now', type: 'button', class: 'btn small', on: { click: startNow } });
  const addBtn = h('button', { id: 'f-add-unit', type: 'button', class: 'btn small', on: { click: () => addRow() } });
  const labels = {};
  const label = (key) => (labels[key] = h('span', { 'data-key': key }));
  let busy = false;

  function addRow(code = '', name = '') {
    const i = units.children.length;
    const ex = UNIT_EXAMPLES[i % UNIT_EXAMPLES.length];
    const row = h('div', { class: 'unit-row' },
      h('input', { class: 'unit-code', value: code, placeholder: ex[0], maxlength: 64, 'aria-label': t('form.unitCode') }),
      h('input', { class: 'unit-name', value: name, placeholder: ex[1], maxlength: 100, 'aria-label': t('form.unitName') }),
      h('button', { type: 'button', class: 'btn small ghost unit-remove', on: { click: () => row.remove() } }, t('form.removeUnit')));
    units.append(row);
    return row;
  }

  function startNow() {
    const now = new Date();
    f.start.value = inputValue(now);
    f.end.value = inputValue(new Date(now.getTime() + 3600e3));
  }

  function draw() {
    for (const [key, el] of Object.entries(labels)) el.textContent = t(key);
    f.title.placeholder = t('form.titlePlaceholder');
    f.caseNumber.placeholder = t('form.casePlaceholder');
    nowBtn.textContent = t('form.now');
    addBtn.textContent = t('form.addUnit');
    submit.textContent = t(busy ? 'form.busy' : 'form.submit');
    for (const b of units.querySelectorAll('.unit-remove')) b.textContent = t('form.removeUnit');
    title.textContent = t('form.title');
  }

  function showError(msg, field) {
    for (const el of root.querySelectorAll('.invalid')) el.classList.remove('invalid');
    error.textContent = msg;
    error.hidden = false;
    const m = /^invitedUnits\[(\d+)\]\.(code|name)$/.exec(field || '');
    let target = null;
    if (m) {
      const row = units.querySelectorAll('.unit-row')[Number(m[1])];
      target = row && row.querySelector(m[2] === 'code' ? '.unit-code' : '.unit-name');
    } else if (field) {
      target = root.querySelector(`[data-field="${CSS.escape(field)}"]`);
    }
    if (target) {
      target.classList.add('invalid');
      target.focus();
    }
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    if (busy) return;
    error.hidden = true;
    const start = fromInput(f.start.value);
    const end = fromInput(f.end.value);
    if (!start || !end) return showError(t('form.badTime'), start ? 'scheduledEnd' : 'scheduledStart');
    // Empty rows are dropped before sending, so the indexes the API names
    // in errors must be counted on the rows that remain.
    const rows = [...units.querySelectorAll('.unit-row')];
    const filled = rows.filter((r) => r.querySelector('.unit-code').value.trim() || r.querySelector('.unit-name').value.trim());
    const invitedUnits = cleanUnits(filled.map((r) => ({
      code: r.querySelector('.unit-code').value, name: r.querySelector('.unit-name').value,
    })));
    if (!invitedUnits.length) return showError(t('form.noUnits'), 'invitedUnits[0].code');
    busy = true;
    submit.disabled = true;
    draw();
    try {
      const s = await api.createSession({
        title: f.title.value.trim(), caseNumber: f.caseNumber.value.trim(),
        scheduledStart: toRFC3339(start), scheduledEnd: toRFC3339(end),
        invitedUnits, recording: f.recording.checked,
      });
      ctx.navigate(`#/session/${encodeURIComponent(s.id)}`);
    } catch (err) {
      let field = err.field || '';
      const m = /^invitedUnits\[(\d+)\]/.exec(field);
      if (m) {
        const row = filled[Number(m[1])];
        field = field.replace(/^invitedUnits\[\d+\]/, `invitedUnits[${rows.indexOf(row)}]`);
      }
      showError(errorText(err, t), field);
    } finally {
      busy = false;
      submit.disabled = false;
      draw();
    }
  }

  const title = h('h1');
  const field = (key, input, extra) => h('label', { class: 'field' }, label(key), input, extra);
  const form = h('form', { id: 'schedule-form', class: 'card form', novalidate: true, on: { submit: onSubmit } },
    field('form.titleLabel', f.title),
    field('form.case', f.caseNumber),
    h('div', { class: 'field-row' },
      field('form.start', f.start),
      field('form.end', f.end),
      h('div', { class: 'field field-btn' }, nowBtn)),
    h('fieldset', { class: 'field units' },
      h('legend', {}, label('form.units')),
      h('p', { class: 'help' }, label('form.unitsHelp')),
      h('div', { class: 'unit-head' }, label('form.unitCode'), label('form.unitName')),
      units, addBtn),
    h('label', { class: 'check' }, f.recording, label('form.recording')),
    error,
    h('div', { class: 'actions' }, submit));
  addRow();
  addRow();
  draw();
  root.append(h('section', { class: 'page narrow' }, h('div', { class: 'page-head' }, title), form));
  f.title.focus();
  return { onLang: draw };
}
