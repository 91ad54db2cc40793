// The integrity badge: the result of the server running the same check as
// `ducha verify`, impossible to miss when it fails.

import { h, replace } from './dom.js';
import { dateTime } from './format.js';
import { errorText } from './api.js';

// badgeState maps a verification answer to the badge's tone and headline.
export function badgeState(v) {
  if (!v) return { tone: 'pending', key: 'int.checking' };
  switch (v.result) {
    case 'intact':
      return { tone: 'ok', key: 'int.badgeIntact' };
    case 'altered':
      return { tone: 'bad', key: 'int.badgeAltered' };
    default:
      return { tone: 'warn', key: 'int.badgeCould' };
  }
}

// whereText names the first bad link: whose segment, which one, the object.
export function whereText(v, t) {
  const fb = v && v.firstBad;
  if (!fb) return '';
  if (fb.index < 0 || fb.seq == null) return `${t('int.firstBadManifest')} ${fb.key || ''}`.trim();
  const source = fb.source === 'screen' ? t('pl.screen') : fb.source === 'camera' ? t('pl.camera') : fb.source || '';
  return `${t('int.firstBad', { who: fb.participantName || fb.participant || '?', source, seq: Number(fb.seq) + 1 })} (${fb.key})`;
}

export function mountIntegrity(ctx, root, id) {
  const { t, api, i18n } = ctx;
  let v = null;
  let error = null;
  let busy = false;

  async function check() {
    if (busy) return;
    busy = true;
    v = null;
    error = null;
    draw();
    try {
      v = await api.verify(id);
    } catch (err) {
      error = err;
    } finally {
      busy = false;
      draw();
    }
  }

  function row(label, value, tone = '') {
    return h('div', { class: `int-row ${tone}` }, h('span', { class: 'int-label' }, label), h('span', { class: 'int-value' }, value));
  }

  function draw() {
    const st = error ? { tone: 'warn', key: 'int.badgeError' } : badgeState(v);
    const head = error ? t(st.key, { msg: errorText(error, t) }) : t(st.key);
    const badge = h('div', { id: 'integrity-badge', class: `badge ${st.tone}`, 'data-result': v ? v.result : error ? 'error' : 'checking', role: 'status' },
      h('strong', {}, head));
    const where = whereText(v, t);
    if (where) badge.append(h('div', { id: 'integrity-where', class: 'where' }, where));
    const rows = [];
    if (v) {
      const rep = v.report || {};
      rows.push(row(t('int.signature'), t(v.signatureValid ? 'int.sigValid' : 'int.sigInvalid'), v.signatureValid ? 'ok' : 'bad'));
      rows.push(row(t('int.segments'), t('int.segmentsOk', { ok: rep.segments_ok ?? 0, n: rep.segments ?? 0 }),
        rep.segments_ok === rep.segments ? 'ok' : 'bad'));
      rows.push(row(t('int.signer'), v.publicKey || rep.key || '—'));
      const s = v.storage || {};
      rows.push(row(t('int.retention'), s.retentionMode
        ? t('int.retentionUntil', { mode: s.retentionMode, until: dateTime(s.retainUntil, i18n.locale()) })
        : t('int.retentionNone')));
      rows.push(row(t('int.legalHold'), s.held > 0 ? t('int.legalHoldOn', { held: s.held, n: s.objects }) : t('int.legalHoldOff')));
      rows.push(row(t('int.checkedAt'), dateTime(v.checkedAt, i18n.locale())));
    }
    const recheck = h('button', { id: 'integrity-recheck', class: 'btn small', type: 'button', disabled: busy, on: { click: check } }, t('int.recheck'));
    const details = v ? h('details', { class: 'int-report' }, h('summary', {}, t('int.report')),
      h('pre', {}, i18n.lang() === 'en' ? v.textEn : v.text)) : null;
    replace(root, badge, h('div', { class: 'int-rows' }, rows), h('div', { class: 'int-actions' }, recheck), details);
  }

  draw();
  check();
  return { onLang: draw, result: () => v };
}
