// The panels of the session page, each drawn from API data. They hold no
// state: session.js owns the data and redraws a panel when its data changes.

import { h, chip } from './dom.js';
import { dateTime, clock, duration, attendanceText, quality, currentInvitations, eventText } from './format.js';

const ROLE_TONES = { supervisor: 'blue', county: '', observer: 'amber' };

function initial(name) {
  const s = (name || '').trim();
  return s ? Array.from(s)[0] : '?';
}

function actionButton(label, action, attrs = {}, tone = '') {
  return h('button', { type: 'button', class: `btn small ${tone}`.trim(), 'data-action': action, ...attrs }, label);
}

// invitationsPanel: one row per invited unit with its current link, and the
// links that no longer work below. qrOpen holds the invitation ids whose QR
// code is shown.
export function invitationsPanel(t, session, invitations, { canIssue, qrOpen, qrURL }) {
  const { current, history } = currentInvitations(session.invitedUnits, invitations);
  const rows = current.map((inv) => {
    const usable = inv.status === 'valid' || inv.status === 'not_yet_valid';
    const url = usable && inv.url ? inv.url : '';
    const showQR = url && qrOpen.has(inv.id);
    return h('li', { class: 'inv', 'data-unit': inv.unitCode, 'data-invitation-id': inv.id, 'data-status': inv.status },
      h('div', { class: 'inv-head' },
        h('span', { class: 'inv-name' }, inv.unitName),
        h('span', { class: 'inv-code' }, inv.unitCode),
        chip(t(`inv.s.${inv.status}`), usable ? 'green' : 'red')),
      h('div', { class: 'inv-valid muted' }, t('inv.valid', { from: dateTime(inv.validFrom), until: dateTime(inv.validUntil) })),
      url ? h('div', { class: 'inv-link' },
        h('input', { class: 'inv-url', readonly: true, value: url, 'aria-label': inv.unitName }),
        actionButton(t('inv.copy'), 'copy'),
        actionButton(t(showQR ? 'inv.qrHide' : 'inv.qr'), 'qr'),
        actionButton(t('inv.revoke'), 'revoke', {}, 'danger-ghost')) : null,
      showQR ? h('img', { class: 'qr', src: qrURL(inv.id), alt: t('inv.qrAlt', { name: inv.unitName }), width: 200, height: 200 }) : null);
  });
  const missing = session.invitedUnits.filter((u) => !current.some((i) => i.unitCode === u.code));
  const body = [];
  if (!current.length) body.push(h('p', { class: 'empty' }, t('inv.none')));
  else body.push(h('ul', { class: 'inv-list' }, rows));
  if (history.length) {
    body.push(h('details', { class: 'inv-history' },
      h('summary', {}, `${t('inv.history')}（${history.length}）`),
      h('ul', {}, history.map((inv) => h('li', { 'data-invitation-id': inv.id, 'data-unit': inv.unitCode, 'data-status': inv.status },
        `${inv.unitName} · ${t(`inv.s.${inv.status}`)} · ${dateTime(inv.revokedAt || inv.createdAt)}`)))));
  }
  // Offer to issue when a unit lacks a working link (never issued, revoked
  // by a removal, or rescheduled).
  const needIssue = missing.length > 0 || current.some((i) => i.status !== 'valid' && i.status !== 'not_yet_valid');
  return h('section', { class: 'panel', id: 'panel-invitations' },
    h('div', { class: 'panel-head' }, h('h2', {}, t('inv.title')),
      canIssue && needIssue ? h('button', { type: 'button', class: 'btn small primary', id: 'btn-issue' }, t('inv.issue')) : null),
    body);
}

export function lobbyPanel(t, waiting) {
  const list = waiting.map((p) => h('li', { class: 'person', 'data-participant-id': p.id, 'data-unit': p.unit || '' },
    h('span', { class: 'avatar' }, initial(p.name)),
    h('span', { class: 'person-name' }, p.name || p.identity),
    h('span', { class: 'muted' }, p.unit || ''),
    actionButton(t('lobby.admit'), 'admit', { 'data-target': p.id }, 'primary')));
  return h('section', { class: `panel${waiting.length ? ' attention' : ''}`, id: 'panel-lobby' },
    h('div', { class: 'panel-head' }, h('h2', {}, t('lobby.title')), waiting.length ? chip(String(waiting.length), 'amber') : null),
    waiting.length ? h('ul', { class: 'people' }, list) : h('p', { class: 'empty' }, t('lobby.empty')));
}

// participantsPanel lists who is in the call; selfIdentity is the signed-in
// supervisor, who is not offered buttons against themselves.
export function participantsPanel(t, people, selfIdentity) {
  const list = people.map((p) => {
    const q = quality(p.rttMillis, p.lossPercent);
    const mine = p.identity === selfIdentity;
    const states = [];
    if (p.modMuted) states.push(chip(t('part.modMuted'), 'red', { 'data-state': 'modMuted' }));
    else if (p.audioMuted) states.push(chip(t('part.micOff'), ''));
    if (p.videoMuted) states.push(chip(t('part.camOff'), ''));
    const qText = q === 'unknown' ? t('part.unknownQuality')
      : `${t('part.rtt', { ms: Math.round(p.rttMillis ?? 0) })} · ${t('part.loss', { pct: Number(p.lossPercent ?? 0).toFixed(1) })}`;
    return h('li', { class: 'person', 'data-participant-id': p.id, 'data-unit': p.unit || '', 'data-role': p.role },
      h('span', { class: 'avatar' }, initial(p.name)),
      h('span', { class: 'person-main' },
        h('span', { class: 'person-name' }, p.name || p.identity),
        h('span', { class: 'person-sub' },
          chip(t(`prole.${p.role}`), ROLE_TONES[p.role] || ''),
          p.unit ? h('span', { class: 'muted' }, p.unit) : null,
          h('span', { class: `q q-${q}`, 'data-quality': q }, qText),
          states)),
      mine ? null : h('span', { class: 'person-actions' },
        actionButton(t(p.modMuted ? 'part.unmute' : 'part.mute'), p.modMuted ? 'unmute' : 'mute', { 'data-target': p.id }),
        actionButton(t('part.remove'), 'remove', { 'data-target': p.id, 'data-name': p.name || p.identity }, 'danger-ghost')));
  });
  return h('section', { class: 'panel', id: 'panel-participants' },
    h('div', { class: 'panel-head' }, h('h2', {}, t('part.title')), people.length ? chip(String(people.length), 'blue') : null),
    people.length ? h('ul', { class: 'people' }, list) : h('p', { class: 'empty' }, t('part.empty')));
}

const ATT_TONES = { on_time: 'green', late: 'amber', absent: 'red', pending: '' };

// attendanceRows draws the units of an attendance report; once the session
// is over (final) the last column keeps only removals, as "online" would
// mean nothing.
export function attendanceRows(t, report, final = false, lobbyUnits = new Set()) {
  return report.units.map((u) => h('tr', { 'data-unit': u.unit.code, 'data-status': u.status },
    h('td', {}, h('div', { class: 'att-name' }, u.unit.name), h('div', { class: 'muted small' }, u.unit.code)),
    h('td', {}, chip(attendanceText(u, t), ATT_TONES[u.status] || '', { class: 'att-status' })),
    h('td', { class: 'nowrap' }, u.firstArrival ? dateTime(u.firstArrival, true) : t('con.none')),
    h('td', { class: 'nowrap' }, duration(u.presentSeconds, t)),
    h('td', { class: 'num' }, String(u.reconnects)),
    h('td', {}, u.removed ? chip(t('att.removed'), 'red') : final ? '' : nowChip(t, u, lobbyUnits))));
}

function nowChip(t, u, lobbyUnits) {
  if (u.connected) return chip(t('att.connected'), 'green');
  if (lobbyUnits.has(u.unit.code)) return chip(t('att.inLobby'), 'amber');
  return chip(t('att.offline'), '');
}

export function attendanceHead(t, final = false) {
  const keys = ['att.colUnit', 'att.colStatus', 'att.colArrival', 'att.colPresent', 'att.colReconnects', final ? 'rep.colRemoved' : 'att.colNow'];
  return h('tr', {}, ...keys.map((k) => h('th', {}, t(k))));
}

export function attendanceSummary(t, report) {
  const s = { on_time: 0, late: 0, absent: 0, pending: 0, ...(report.summary || {}) };
  return t('att.summary', s);
}

// lobbyUnits are the unit codes waiting in the lobby now: the report counts
// them as arrived but not connected to the call.
export function attendancePanel(t, report, reportURL, lobbyUnits) {
  const final = report.sessionStatus === 'ended' || report.sessionStatus === 'cancelled';
  return h('section', { class: 'panel', id: 'panel-attendance' },
    h('div', { class: 'panel-head' }, h('h2', {}, t('att.title')),
      h('a', { class: 'btn small', href: reportURL, target: '_blank', rel: 'noopener', id: 'link-report' }, t('att.report'))),
    h('p', { class: 'att-summary', id: 'att-summary' }, attendanceSummary(t, report)),
    h('p', { class: 'muted small' }, t('att.reference', { time: dateTime(report.reference), grace: duration(report.graceSeconds, t) })),
    h('table', { class: 'table compact' }, h('thead', {}, attendanceHead(t, final)), h('tbody', {}, attendanceRows(t, report, final, lobbyUnits))));
}

// unitNames maps unit codes to names, for events that carry only the code.
export function eventsPanel(t, events, unitNames = {}) {
  const recent = events.slice(-60).reverse();
  return h('section', { class: 'panel', id: 'panel-events' },
    h('div', { class: 'panel-head' }, h('h2', {}, t('ev.title'))),
    recent.length ? h('ol', { class: 'events' }, recent.map((e) => h('li', { 'data-type': e.type },
      h('span', { class: 'ev-time' }, clock(e.time)), h('span', { class: 'ev-text' }, eventText(e, t, unitNames)))))
      : h('p', { class: 'empty' }, t('ev.empty')));
}
