// The session page: what the chair needs around a call. Links and QR codes
// for the invited units, the session controls, the lobby, the participants
// with mute and remove, the live attendance and the event log, refreshed
// every few seconds from the API.
//
// The call itself runs in the join page, opened in its own window with the
// supervisor's join link (GET .../join-link). Not an iframe: every ducha
// page is sent with frame-ancestors 'none' and X-Frame-Options DENY, so that
// no other site can frame a page holding a camera; a window of its own also
// lets the chair put the call on the big screen and keep this page on the
// laptop. The join page shows the lobby and members too, and sends the same
// moderation as `moderate` messages, so either window can be used.

import { h, replace, chip, changeTracker } from './dom.js';
import { errorText } from './api.js';
import { dateTime, clock, allowedControls } from './format.js';
import { statusChip } from './sessions.js';
import { invitationsPanel, lobbyPanel, participantsPanel, attendancePanel, eventsPanel } from './panels.js';

const REFRESH_MS = 3000;
const EVENTS_PAGE = 200;
const EVENT_PAGES_PER_TICK = 5;

// Controls in toolbar order: [control, i18n key, tone].
const CONTROLS = [
  ['join', 'sess.join', 'primary'],
  ['open-lobby', 'sess.openLobby', ''],
  ['start', 'sess.start', 'green'],
  ['lock', 'sess.lock', ''],
  ['unlock', 'sess.unlock', ''],
  ['recording-on', 'sess.recOn', ''],
  ['recording-off', 'sess.recOff', ''],
  ['end', 'sess.end', 'danger'],
  ['cancel', 'sess.cancelSession', 'danger-ghost'],
];

export function mountSession(ctx, root, id) {
  const { t, api, scope } = ctx;
  const state = { session: null, invitations: [], participants: [], attendance: null, events: [], afterSeq: 0, error: null };
  const qrOpen = new Set();
  const busy = new Set();
  const changed = changeTracker();
  const el = {
    head: h('div', { class: 'card session-head', id: 'session-head' }),
    controls: h('div', { class: 'card controls', id: 'session-controls' }),
    invitations: h('div'),
    lobby: h('div'),
    participants: h('div'),
    attendance: h('div'),
    events: h('div'),
    updated: h('p', { class: 'muted small updated', id: 'session-updated' }),
  };
  const page = h('section', { class: 'page session', id: 'session-page', 'data-session-id': id },
    h('a', { href: '#/sessions', class: 'back' }, ''),
    el.head, el.controls,
    h('div', { class: 'grid' },
      h('div', { class: 'col' }, el.lobby, el.participants, el.attendance),
      h('div', { class: 'col' }, el.invitations, el.events)),
    el.updated);
  root.append(page);

  const reportURL = `/console/report.html?session=${encodeURIComponent(id)}`;

  function drawHead() {
    page.querySelector('.back').textContent = `‹ ${t('sess.back')}`;
    const s = state.session;
    if (!s) {
      replace(el.head, h('p', { class: state.error ? 'form-error' : 'muted' }, state.error ? errorText(state.error, t) : t('con.loading')));
      return;
    }
    page.dataset.status = s.status;
    const chips = [statusChip(t, s.status)];
    if (s.recording && !s.status.match(/ended|cancelled/)) {
      chips.push(h('span', { class: 'rec', id: 'rec-indicator' }, h('span', { class: 'rec-dot' }), t('sess.recording')));
    } else if (!s.recording) {
      chips.push(chip(t('sess.recordingOff'), ''));
    }
    if (s.locked) chips.push(chip(t('sess.locked'), 'amber', { id: 'locked-indicator' }));
    const actual = s.startedAt
      ? t('sess.actual', { start: dateTime(s.startedAt), end: s.endedAt ? t('sess.actualEnd', { end: dateTime(s.endedAt) }) : '' })
      : '';
    replace(el.head,
      h('div', { class: 'head-row' }, h('h1', { id: 'session-title' }, s.title), h('div', { class: 'chips' }, chips)),
      h('p', { class: 'meta' },
        s.caseNumber ? h('span', {}, t('sess.case', { case: s.caseNumber })) : null,
        h('span', {}, t('sess.time', { start: dateTime(s.scheduledStart), end: dateTime(s.scheduledEnd) })),
        actual ? h('span', {}, actual) : null,
        h('span', {}, t('sess.supervisor', { name: s.supervisorName || '' }))));
  }

  function drawControls() {
    const s = state.session;
    if (!s) return replace(el.controls);
    const allowed = allowedControls(s);
    const buttons = CONTROLS.filter(([c]) => allowed[c]).map(([c, key, tone]) =>
      h('button', { type: 'button', class: `btn ${tone}`.trim(), 'data-control': c, disabled: busy.has(c) }, t(key)));
    el.controls.hidden = buttons.length === 0; // an ended session has nothing left to control
    replace(el.controls,
      h('div', { class: 'control-row' }, buttons),
      allowed.join ? h('p', { class: 'muted small' }, t('sess.joinHelp')) : null,
      h('p', { class: 'join-fallback', id: 'join-fallback', hidden: true }));
  }

  function drawPanels(force = false) {
    const s = state.session;
    if (!s) return;
    const me = ctx.account ? ctx.account.id : '';
    const waiting = state.participants.filter((p) => p.lobby);
    const inCall = state.participants.filter((p) => !p.lobby);
    const canIssue = allowedControls(s).invite;
    const final = s.status === 'ended' || s.status === 'cancelled';
    // Nobody can wait or be in the call of a finished session.
    el.lobby.hidden = final;
    el.participants.hidden = final;
    const lobbyUnits = new Set(waiting.map((p) => p.unit).filter(Boolean));
    const unitNames = Object.fromEntries(s.invitedUnits.map((u) => [u.code, u.name]));
    if (changed('inv', [s.invitedUnits, s.status, state.invitations, [...qrOpen]]) || force) {
      replace(el.invitations, invitationsPanel(t, s, state.invitations, { canIssue, qrOpen, qrURL: (inv) => api.qrURL(id, inv) }));
    }
    if (changed('lobby', waiting) || force) replace(el.lobby, lobbyPanel(t, waiting));
    if (changed('part', inCall) || force) replace(el.participants, participantsPanel(t, inCall, me));
    if (state.attendance && (changed('att', [state.attendance, [...lobbyUnits]]) || force)) {
      replace(el.attendance, attendancePanel(t, state.attendance, reportURL, lobbyUnits));
    }
    if (changed('ev', state.events.length) || force) replace(el.events, eventsPanel(t, state.events, unitNames));
  }

  function drawAll() {
    drawHead();
    drawControls();
    drawPanels(true);
  }

  async function loadEvents() {
    for (let i = 0; i < EVENT_PAGES_PER_TICK; i++) {
      const r = await api.events(id, state.afterSeq, EVENTS_PAGE);
      state.events.push(...r.events);
      state.afterSeq = r.nextAfterSeq;
      if (!r.more) return;
    }
  }

  // refresh is serialised: the poll and an action's own refresh must not
  // both page through the event log from the same afterSeq.
  let chain = Promise.resolve();
  function refresh() {
    chain = chain.then(doRefresh, doRefresh);
    return chain;
  }

  async function doRefresh() {
    if (!scope.live) return;
    try {
      state.session = await api.getSession(id);
      state.error = null;
    } catch (err) {
      state.error = err;
      drawHead();
      return;
    }
    const s = state.session;
    const final = s.status === 'ended' || s.status === 'cancelled';
    const [inv, parts, att, ev] = await Promise.allSettled([
      api.invitations(id),
      final ? Promise.resolve({ participants: [] }) : api.participants(id),
      api.attendance(id),
      loadEvents(),
    ]);
    if (inv.status === 'fulfilled') state.invitations = inv.value.invitations;
    if (parts.status === 'fulfilled') state.participants = parts.value.participants;
    if (att.status === 'fulfilled') state.attendance = att.value;
    for (const r of [inv, parts, att, ev]) if (r.status === 'rejected') console.warn('[console] refresh', r.reason);
    if (changed('head', s)) {
      drawHead();
      drawControls();
    }
    drawPanels();
    el.updated.textContent = t('con.refreshed', { time: clock(new Date()) });
  }

  // run performs one action, shows its failure, and refreshes at once so
  // the page shows the outcome without waiting for the next poll.
  async function run(key, fn) {
    if (busy.has(key)) return;
    busy.add(key);
    drawControls();
    try {
      await fn();
    } catch (err) {
      ctx.fail(err);
    } finally {
      busy.delete(key);
      await refresh().catch(() => {});
      drawControls();
    }
  }

  async function join() {
    // Open the window inside the click, before the request, or a popup
    // blocker would refuse it once the answer comes back.
    const w = window.open('about:blank', `ducha-call-${id}`);
    let link;
    try {
      link = await api.joinLink(id);
    } catch (err) {
      if (w) w.close();
      throw err;
    }
    if (w) {
      w.opener = null; // the call page has no business with the console
      w.location.replace(link.url);
      return;
    }
    const fb = page.querySelector('#join-fallback');
    replace(fb, t('sess.popupBlocked'), ' ', h('a', { href: link.url, target: '_blank', rel: 'noopener' }, t('sess.join')));
    fb.hidden = false;
  }

  async function control(c) {
    const s = state.session;
    if (c === 'join') return join();
    if (c === 'end' && !(await ctx.confirm(t('sess.confirmEnd')))) return;
    if (c === 'cancel') {
      if (!(await ctx.confirm(t('sess.confirmCancel')))) return;
      return api.cancelSession(id);
    }
    if (s) return api.moderate(id, c);
  }

  async function copyLink(input, button) {
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      // No clipboard API on plain-HTTP intranet pages: select for Ctrl+C.
      input.focus();
      input.select();
      if (!document.execCommand || !document.execCommand('copy')) {
        ctx.flash(t('inv.copyFailed'), 'warn');
        return;
      }
    }
    button.textContent = t('inv.copied');
    setTimeout(() => {
      button.textContent = t('inv.copy');
    }, 2000);
  }

  page.addEventListener('click', (ev) => {
    const ctl = ev.target.closest('[data-control]');
    if (ctl) return run(ctl.dataset.control, () => control(ctl.dataset.control));
    if (ev.target.closest('#btn-issue')) return run('issue', () => api.issueInvitations(id));
    const btn = ev.target.closest('[data-action]');
    if (!btn) return;
    const action = btn.dataset.action;
    const inv = btn.closest('.inv');
    switch (action) {
      case 'admit':
      case 'mute':
      case 'unmute':
        return run(`${action}:${btn.dataset.target}`, () => api.moderate(id, action, btn.dataset.target));
      case 'remove':
        return run(`remove:${btn.dataset.target}`, async () => {
          if (await ctx.confirm(t('sess.confirmRemove', { name: btn.dataset.name || '' }))) {
            await api.moderate(id, 'remove', btn.dataset.target);
          }
        });
      case 'copy':
        return copyLink(inv.querySelector('.inv-url'), btn);
      case 'qr': {
        const invId = inv.dataset.invitationId;
        if (qrOpen.has(invId)) qrOpen.delete(invId);
        else qrOpen.add(invId);
        return drawPanels();
      }
      case 'revoke': {
        const name = inv.querySelector('.inv-name').textContent;
        return run(`revoke:${inv.dataset.invitationId}`, async () => {
          if (await ctx.confirm(t('sess.confirmRevoke', { name }))) await api.revokeInvitation(id, inv.dataset.invitationId);
        });
      }
      default:
    }
  });

  drawAll();
  scope.every(REFRESH_MS, refresh);
  return { onLang: drawAll };
}
