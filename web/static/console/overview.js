// The bureau's overview: every session with someone connected now, and the
// connection quality of each county office (RTT and loss from RTCP, and the
// SFU's bandwidth estimate toward it, which caps the video it is sent).

import { h, replace, chip, changeTracker } from './dom.js';
import { quality, rttText, lossText, rateText } from './format.js';
import { statusChip } from './sessions.js';

const OVERVIEW_REFRESH_MS = 5000;
const Q_TONES = { good: 'green', fair: 'amber', poor: 'red', unknown: '' };

export function mountOverview(ctx, root) {
  const { t, api, scope } = ctx;
  const changed = changeTracker();
  const title = h('h1');
  const lead = h('p', { class: 'muted' });
  const body = h('div', { id: 'overview' });
  let data = null;

  function card(s) {
    const rows = s.participants.map((p) => {
      const q = quality(p.rttMillis, p.lossPercent);
      return h('tr', { 'data-participant-id': p.id, 'data-unit': p.unit || '' },
        h('td', {}, p.name || p.identity, p.lobby ? h('span', { class: 'muted small' }, ` · ${t('ov.lobby')}`) : null),
        h('td', {}, t(`prole.${p.role}`)),
        h('td', { class: 'num' }, rttText(p.rttMillis, t)),
        h('td', { class: 'num' }, lossText(p.lossPercent, t)),
        h('td', { class: 'num', 'data-downlink-kbps': p.downlinkKbps ?? '' }, rateText(p.downlinkKbps, t)),
        h('td', {}, chip(t(`ov.q.${q}`), Q_TONES[q], { 'data-quality': q })));
    });
    return h('article', { class: 'card ov-card', 'data-session-id': s.sessionId },
      h('div', { class: 'head-row' },
        h('h2', {}, s.title),
        h('div', { class: 'chips' }, statusChip(t, s.status), chip(t('ov.participants', { n: s.participants.length }), 'blue'))),
      s.caseNumber ? h('p', { class: 'muted' }, t('sess.case', { case: s.caseNumber })) : null,
      h('table', { class: 'table compact' },
        h('thead', {}, h('tr', {}, ...['colName', 'colRole', 'colRtt', 'colLoss', 'colDownlink', 'colQuality'].map((k) => h('th', {}, t(`ov.${k}`))))),
        h('tbody', {}, rows)),
      h('a', { class: 'btn small', href: `#/session/${encodeURIComponent(s.sessionId)}` }, t('ov.open')));
  }

  function draw() {
    title.textContent = t('ov.title');
    lead.textContent = t('ov.lead');
    if (!data) return replace(body, h('p', { class: 'muted' }, t('con.loading')));
    if (!data.sessions.length) return replace(body, h('p', { class: 'empty' }, t('ov.empty')));
    replace(body, data.sessions.map(card));
  }

  async function refresh() {
    try {
      const r = await api.overview();
      r.sessions.sort((a, b) => a.title.localeCompare(b.title, 'zh-CN'));
      data = r;
      if (changed('ov', r)) draw();
    } catch (err) {
      ctx.fail(err);
    }
  }

  draw();
  root.append(h('section', { class: 'page' }, h('div', { class: 'page-head' }, h('div', {}, title, lead)), body));
  scope.every(OVERVIEW_REFRESH_MS, refresh);
  return { onLang: draw };
}
