// The printable attendance report of one session:
// /console/report.html?session=ID. It reads the same API as the console
// (the sign-in cookie is shared), and prints on one A4 page for a few dozen
// units.

import { createI18n } from './i18n.js';
import { createApi, errorText } from './api.js';
import { h, replace, chip } from './dom.js';
import { dateTime } from './format.js';
import { attendanceHead, attendanceRows, attendanceSummary } from './panels.js';

const i18n = createI18n();
const t = (k, p) => i18n.t(k, p);
const $ = (id) => document.getElementById(id);
const api = createApi({ acceptLanguage: () => i18n.acceptLanguage() });
const sessionId = new URLSearchParams(window.location.search).get('session') || '';
let loaded = null; // {session, report, at}

function row(label, value) {
  return h('tr', {}, h('th', {}, label), h('td', {}, value));
}

function problem(text, withLink) {
  $('report').dataset.state = 'error';
  replace($('report'), h('p', { class: 'form-error', id: 'report-error' }, text),
    withLink ? h('p', {}, h('a', { href: '/console/' }, t('rep.back'))) : null);
}

function draw() {
  i18n.apply();
  if (!loaded) return;
  const { session: s, report: r, at } = loaded;
  const final = s.status === 'ended' || s.status === 'cancelled';
  const held = s.startedAt ? `${dateTime(s.startedAt)} – ${s.endedAt ? dateTime(s.endedAt) : ''}` : t('con.none');
  const root = $('report');
  root.dataset.state = 'ready';
  root.dataset.sessionStatus = s.status;
  replace(root,
    h('h1', {}, t('rep.title')),
    final ? null : h('p', { class: 'warn-note' }, t('rep.live')),
    h('table', { class: 'facts' }, h('tbody', {},
      row(t('rep.session'), s.title),
      row(t('rep.case'), s.caseNumber || t('con.none')),
      row(t('rep.supervisor'), s.supervisorName || ''),
      row(t('rep.scheduled'), `${dateTime(s.scheduledStart)} – ${dateTime(s.scheduledEnd)}`),
      row(t('rep.actual'), held),
      row(t('rep.status'), chip(t(`st.${s.status}`), `st-${s.status}`)),
      row(t('rep.summary'), h('span', { id: 'report-summary' }, attendanceSummary(t, r))),
      row(t('rep.generated'), dateTime(at.toISOString(), true)))),
    h('table', { class: 'table report-units', id: 'report-units' },
      h('thead', {}, attendanceHead(t, final)), h('tbody', {}, attendanceRows(t, r, final))));
}

async function load() {
  if (!sessionId) return problem(t('rep.noSession'), true);
  try {
    if (!(await api.me())) return problem(t('rep.signIn'), true);
    const [session, report] = await Promise.all([api.getSession(sessionId), api.attendance(sessionId)]);
    loaded = { session, report, at: new Date() };
    draw();
  } catch (err) {
    problem(errorText(err, t), true);
  }
}

$('btn-lang').addEventListener('click', () => i18n.toggle());
$('btn-print').addEventListener('click', () => window.print());
i18n.onChange(draw);
i18n.apply();
load();
