// Pure-logic tests of the supervisor console modules, run with `node --test`
// (no browser). The browser story itself is story.mjs.

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MESSAGES, createI18n } from '../static/console/i18n.js';
import { MESSAGES as JOIN_MESSAGES } from '../static/i18n.js';
import { fatalDialog } from '../static/link.js';
import { createApi, ApiError, errorText } from '../static/console/api.js';
import {
  toRFC3339, inputValue, fromInput, duration, attendanceText, quality, allowedControls,
  currentInvitations, cleanUnits, eventText,
} from '../static/console/format.js';

const CONSOLE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'static', 'console');
const zh = createI18n({ doc: null, storage: null });
const t = zh.t;

function memStorage(init = {}) {
  const m = new Map(Object.entries(init));
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), map: m };
}

test('both languages carry the same keys, and every key the console uses exists', () => {
  const zk = Object.keys(MESSAGES.zh).sort();
  const ek = Object.keys(MESSAGES.en).sort();
  assert.deepEqual(zk.filter((k) => !MESSAGES.en[k]), [], 'en lacks keys');
  assert.deepEqual(ek.filter((k) => !MESSAGES.zh[k]), [], 'zh lacks keys');
  assert.ok(zk.length > 150, `only ${zk.length} keys`);
  const used = new Set();
  for (const f of readdirSync(CONSOLE_DIR)) {
    if (f === 'i18n.js' || !/\.(js|html)$/.test(f)) continue;
    const src = readFileSync(join(CONSOLE_DIR, f), 'utf8');
    const re = /['"]((?:con|nav|login|prole|st|list|form|sess|inv|lobby|part|att|ev|ov|rep|dur|cerr)\.[A-Za-z_.]+)['"]/g;
    for (const m of src.matchAll(re)) used.add(m[1]);
  }
  assert.ok(used.size > 60, `found only ${used.size} used keys: the scan is broken`);
  const unknown = [...used].filter((k) => !(k in MESSAGES.zh));
  assert.deepEqual(unknown, []);
  // Keys built at run time: statuses, roles and invitation states.
  for (const s of ['scheduled', 'lobby', 'live', 'ended', 'cancelled']) assert.ok(MESSAGES.zh[`st.${s}`], s);
  for (const r of ['supervisor', 'county', 'observer', 'auditor', 'admin']) assert.ok(MESSAGES.zh[`prole.${r}`], r);
  for (const s of ['valid', 'not_yet_valid', 'expired', 'revoked', 'unit_removed', 'session_ended']) assert.ok(MESSAGES.zh[`inv.s.${s}`], s);
});

test('Chinese by default, English remembered under the join page key', () => {
  const store = memStorage();
  const i = createI18n({ doc: null, storage: store });
  assert.equal(i.lang(), 'zh');
  assert.equal(i.acceptLanguage(), 'zh-CN');
  assert.equal(i.t('sess.openLobby'), '开放候会室');
  let heard = '';
  i.onChange((l) => (heard = l));
  i.toggle();
  assert.equal(heard, 'en');
  assert.equal(store.map.get('ducha.lang'), 'en');
  assert.equal(i.acceptLanguage(), 'en');
  assert.equal(createI18n({ doc: null, storage: store }).t('sess.end'), 'End session');
  assert.equal(createI18n({ doc: null, storage: memStorage({ 'ducha.lang': 'fr' }) }).lang(), 'zh');
  assert.equal(i.t('no.such.key'), 'no.such.key');
  assert.equal(zh.t('att.late', { d: '8分钟' }), '迟到 8分钟');
});

test('times go to the API with the browser offset and come back from the form', () => {
  const d = new Date(2026, 2, 2, 10, 5, 7);
  const s = toRFC3339(d);
  assert.match(s, /^2026-03-02T10:05:07[+-]\d{2}:\d{2}$/);
  assert.equal(new Date(s).getTime(), d.getTime());
  assert.equal(inputValue(d), '2026-03-02T10:05');
  assert.equal(fromInput('2026-03-02T10:05').getTime(), new Date(2026, 2, 2, 10, 5).getTime());
  assert.equal(fromInput('2026-03-02T10:05:30').getSeconds(), 30);
  for (const bad of ['', 'tomorrow', '2026-03-02 10:05', null, undefined]) assert.equal(fromInput(bad), null, String(bad));
});

test('durations and attendance read as a chair expects', () => {
  assert.equal(duration(0, t), '0秒');
  assert.equal(duration(59.9, t), '59秒');
  assert.equal(duration(539, t), '8分钟');
  assert.equal(duration(3600, t), '1小时');
  assert.equal(duration(3900, t), '1小时5分');
  assert.equal(duration(-5, t), '0秒');
  assert.equal(attendanceText({ status: 'late', lateSeconds: 480 }, t), '迟到 8分钟');
  assert.equal(attendanceText({ status: 'on_time' }, t), '准时');
  assert.equal(attendanceText({ status: 'absent' }, t), '缺席');
  assert.equal(attendanceText({ status: 'pending' }, t), '尚未到达');
  const en = createI18n({ doc: null, storage: memStorage({ 'ducha.lang': 'en' }) });
  assert.equal(attendanceText({ status: 'late', lateSeconds: 3900 }, en.t), 'Late by 1 h 5 min');
});

test('quality grades RTT and loss, unknown until a receiver report', () => {
  assert.equal(quality(null, null), 'unknown');
  assert.equal(quality(40, 0), 'good');
  assert.equal(quality(200, 0), 'fair');
  assert.equal(quality(40, 3), 'fair');
  assert.equal(quality(500, 0), 'poor');
  assert.equal(quality(40, 12.5), 'poor');
  assert.equal(quality(null, 0.5), 'good');
});

test('controls follow the status machine', () => {
  const on = (s) => Object.entries(allowedControls(s)).filter(([, v]) => v).map(([k]) => k).sort();
  assert.deepEqual(on({ status: 'scheduled', locked: false, recording: true }),
    ['cancel', 'invite', 'join', 'lock', 'open-lobby', 'recording-off', 'start']);
  assert.deepEqual(on({ status: 'lobby', locked: true, recording: false }),
    ['cancel', 'invite', 'join', 'recording-on', 'start', 'unlock']);
  assert.deepEqual(on({ status: 'live', locked: false, recording: true }), ['end', 'invite', 'join', 'lock', 'recording-off']);
  assert.deepEqual(on({ status: 'ended', locked: false, recording: true }), []);
  assert.deepEqual(on({ status: 'cancelled', locked: false, recording: true }), []);
});

test('currentInvitations keeps the newest link per unit in invitation order', () => {
  const units = [{ code: 'A' }, { code: 'B' }, { code: 'C' }];
  const invs = [
    { id: '1', unitCode: 'B', createdAt: '2026-03-02T09:00:00Z', status: 'revoked' },
    { id: '2', unitCode: 'A', createdAt: '2026-03-02T09:00:00Z', status: 'valid' },
    { id: '3', unitCode: 'B', createdAt: '2026-03-02T09:10:00Z', status: 'valid' },
    { id: '4', unitCode: 'Z', createdAt: '2026-03-02T09:10:00Z', status: 'unit_removed' },
  ];
  const { current, history } = currentInvitations(units, invs);
  assert.deepEqual(current.map((i) => i.id), ['2', '3']);
  assert.deepEqual(history.map((i) => i.id).sort(), ['1', '4']);
});

test('cleanUnits trims and drops empty rows', () => {
  assert.deepEqual(cleanUnits([{ code: ' 140105 ', name: ' 小店区信访局 ' }, { code: '', name: '  ' }, { code: 'x' }]),
    [{ code: '140105', name: '小店区信访局' }, { code: 'x', name: '' }]);
});

test('eventText words the log, telling self-mute from the supervisor’s', () => {
  const e = (type, data) => eventText({ type, data, subject: 'P1' }, t);
  assert.equal(e('join', { name: '小店区信访局' }), '小店区信访局 入会');
  assert.equal(e('mute', { name: '小店区信访局', kind: 'audio', by: 'supervisor' }), '小店区信访局 被督查人员静音');
  assert.equal(e('mute', { name: '小店区信访局', kind: 'video' }), '小店区信访局 关闭摄像头');
  assert.equal(e('chat', { name: '张督查', text: '请汇报' }), '张督查：请汇报');
  assert.equal(e('legal_hold_on', {}), 'legal_hold_on');
  assert.equal(eventText({ type: 'invite', data: { unit: '140105' } }, t, { 140105: '小店区信访局' }), '为 小店区信访局 生成邀请链接');
  assert.equal(eventText({ type: 'revoke', data: { unit: '140199' } }, t, { 140105: '小店区信访局' }), '140199 的邀请链接已撤销');
});

function fakeFetch(script) {
  const calls = [];
  const fn = async (url, init) => {
    calls.push({ url, ...init, headers: { ...init.headers } });
    const next = script.shift();
    if (next instanceof Error) throw next;
    return {
      ok: next.status >= 200 && next.status < 300,
      status: next.status,
      headers: { get: (k) => (next.headers || {})[k.toLowerCase()] ?? null },
      json: async () => {
        if (next.body === undefined) throw new SyntaxError('no body');
        return next.body;
      },
    };
  };
  return { fn, calls };
}

test('the API client sends CSRF on changes only, in the page language', async () => {
  const f = fakeFetch([
    { status: 200, body: { account: { id: 'A' }, csrfToken: 'tok-1' } },
    { status: 200, body: { sessions: [], more: false } },
    { status: 200, body: { id: 'S' } },
    { status: 204 },
  ]);
  const api = createApi({ fetchFn: f.fn, acceptLanguage: () => 'en' });
  await api.login('sup1', 'pw');
  assert.equal(f.calls[0].headers['X-CSRF-Token'], undefined);
  assert.equal(JSON.parse(f.calls[0].body).username, 'sup1');
  await api.listSessions({ status: 'scheduled,lobby', q: '', limit: 50 });
  assert.equal(f.calls[1].url, '/api/v1/sessions?status=scheduled%2Clobby&limit=50');
  assert.equal(f.calls[1].headers['X-CSRF-Token'], undefined);
  assert.equal(f.calls[1].headers['Accept-Language'], 'en');
  await api.moderate('S/1', 'remove', 'P-1');
  assert.equal(f.calls[2].url, '/api/v1/sessions/S%2F1/moderation');
  assert.equal(f.calls[2].headers['X-CSRF-Token'], 'tok-1');
  assert.deepEqual(JSON.parse(f.calls[2].body), { action: 'remove', target: 'P-1' });
  assert.equal(await api.logout(), undefined);
  assert.equal(api.hasToken(), false);
});

test('API errors keep their code; a lost sign-in is reported once', async () => {
  let lost = 0;
  const f = fakeFetch([
    { status: 423, body: { error: { code: 'account_locked', message: '账号已锁定' } }, headers: { 'retry-after': '600' } },
    { status: 401, body: { error: { code: 'unauthenticated', message: 'x' } } },
    { status: 422, body: { error: { code: 'validation', message: '结束时间必须晚于开始时间', field: 'scheduledEnd' } } },
    { status: 502 },
    new TypeError('Failed to fetch'),
    { status: 401, body: { error: { code: 'unauthenticated', message: 'x' } } },
  ]);
  const api = createApi({ fetchFn: f.fn, onUnauthenticated: () => lost++ });
  const e1 = await api.login('u', 'p').catch((e) => e);
  assert.ok(e1 instanceof ApiError);
  assert.equal(e1.code, 'account_locked');
  assert.equal(errorText(e1, t), '登录失败次数过多，账号已临时锁定，请 10 分钟后再试');
  assert.equal(lost, 0, 'a failed sign-in is not a lost sign-in');
  await assert.rejects(api.getSession('S'), (e) => e.status === 401);
  assert.equal(lost, 1);
  const e3 = await api.createSession({}).catch((e) => e);
  assert.equal(e3.field, 'scheduledEnd');
  assert.equal(errorText(e3, t), '结束时间必须晚于开始时间');
  const e4 = await api.overview().catch((e) => e);
  assert.equal(e4.code, 'http_502');
  const e5 = await api.overview().catch((e) => e);
  assert.equal(e5.code, 'network');
  assert.equal(errorText(e5, t), '无法连接服务器，请检查网络后重试');
  assert.equal(await api.me(), null, 'me() answers null when signed out');
  assert.equal(lost, 1);
});

test('the join page ends a supervision session with the supervisor’s reason, in plain Chinese', () => {
  const zhJoin = JOIN_MESSAGES.zh;
  const reload = () => {};
  const text = (code) => zhJoin[fatalDialog(code, reload).textKey];
  assert.equal(text('removed'), '您已被督查人员移出本次督查');
  assert.equal(text('session_ended'), '本次督查已结束');
  assert.equal(text('invitation_revoked'), '邀请链接已被撤销，请联系督查人员获取新的链接');
  assert.match(text('invitation_not_yet_valid'), /30 分钟/);
  // Only "too early" may be retried with the same link; the others are final.
  for (const code of ['removed', 'session_ended', 'invitation_revoked']) {
    assert.deepEqual(fatalDialog(code, reload).actions || [], [], code);
  }
  assert.equal(fatalDialog('invitation_not_yet_valid', reload).actions[0].onClick, reload);
  for (const code of ['removed', 'session_ended', 'invitation_revoked', 'invitation_not_yet_valid']) {
    const d = fatalDialog(code, reload);
    for (const k of [d.titleKey, d.textKey, d.detailKey].filter(Boolean)) {
      assert.ok(zhJoin[k] && JOIN_MESSAGES.en[k], `${code}: key ${k} missing`);
    }
  }
  assert.equal(zhJoin['lobby.text'], '请在候会室等候，督查人员准入后自动进入');
  assert.equal(zhJoin['mod.muted'], '您已被督查人员静音');
});
