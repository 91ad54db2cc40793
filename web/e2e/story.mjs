// The whole supervision story in headless Chromium against a running ducha:
//
//   node story.mjs --base http://127.0.0.1:PORT --username sup1 --password PW
//
// A supervisor signs in to the console, schedules a session for two county
// units (A and B) starting now, issues the invitation links and opens the
// lobby, then joins the call from the console. County A opens its link in a
// second browser, waits in the lobby and is admitted from the console; both
// decode each other's video. The supervisor mutes A from the console and
// lifts it from the call page, A chats, the session starts; the supervisor
// removes A, whose page says so and whose link is refused afterwards; B never
// comes. The supervisor ends the session, and the attendance panel and the
// printable report say A attended and B was absent.
//
// At most three pages are open at once (console, the supervisor's call,
// county A): one publishing page costs ~40% of a core here.
// DUCHA_STEP_TIMEOUT_MS (default 60000) bounds each step; DUCHA_SCREENSHOTS=DIR
// saves screenshots. The last stdout line is one JSON result; exit 1 on
// failure with {"ok": false, "step", "reason"}, 2 on bad usage.

import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS as ARGS, StepError, sleep, readArgs, pollWithin } from './harness.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const STEP_MS = Number(process.env.DUCHA_STEP_TIMEOUT_MS || 60000);
const poll = (step, probe, check, describe) => pollWithin(STEP_MS, step, probe, check, { describe });
const TOTAL_MS = Number(process.env.DUCHA_TOTAL_TIMEOUT_MS || 12 * STEP_MS);
const SHOTS = process.env.DUCHA_SCREENSHOTS || '';

const UNIT_A = { code: '140105', name: '小店区信访局' };
const UNIT_B = { code: '140106', name: '迎泽区信访局' };
const TITLE = '关于小店区、迎泽区信访件办理情况的督查';
const CASE_NUMBER = '晋信2026-0117';
const CHAT_TEXT = '小店区信访局已收到，现在汇报办理情况';

const ZH = {
  loginTitle: '督查人员登录',
  lobby: '请在候会室等候，督查人员准入后自动进入',
  recording: '录制中',
  modMuted: '您已被督查人员静音',
  removed: '您已被督查人员移出本次督查',
  revoked: '邀请链接已被撤销，请联系督查人员获取新的链接',
  ended: '本次督查已结束',
  onTime: '准时',
  absent: '缺席',
};

function parseArgs(argv) {
  const opts = { base: process.env.DUCHA_BASE_URL || '', username: 'sup1', password: process.env.DUCHA_PASSWORD || '' };
  readArgs(argv, opts);
  if (!opts.base || !opts.password) throw new Error('need --base URL and --password (or DUCHA_PASSWORD)');
  opts.base = opts.base.replace(/\/+$/, '');
  return opts;
}

const log = (...a) => console.error('[story]', ...a);

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `story-${name}.png`), fullPage: true }).catch((e) => log('screenshot failed', e.message));
}

function watch(page, label, errors) {
  page.on('console', (m) => log(`${label} console.${m.type()}:`, m.text()));
  page.on('pageerror', (e) => errors.push(`${label}: ${e.message}`));
}

// callState reads the join page's test hook and what its screen shows.
function callState(page) {
  return page.evaluate(() => {
    const d = window.__ducha;
    const vis = (id) => {
      const e = document.getElementById(id);
      return !!e && !e.hidden && e.getClientRects().length > 0;
    };
    const text = (id) => (document.getElementById(id) || {}).textContent || '';
    return {
      state: d ? d.state() : null,
      overlay: vis('overlay') ? text('overlay-text') : '',
      lobby: vis('lobby') ? text('lobby-text') : '',
      rec: vis('rec-indicator') ? text('rec-indicator') : '',
      modNote: vis('mod-muted') ? text('mod-muted') : '',
      micDisabled: !!(document.getElementById('btn-mic') || {}).disabled,
      micShown: vis('btn-mic'),
    };
  });
}

function inbound(page) {
  return page.evaluate(async () => {
    const pc = window.__ducha && window.__ducha.pc();
    if (!pc) return { pc: 'none', video: [] };
    const out = { pc: pc.connectionState, video: [] };
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        out.video.push({ framesDecoded: r.framesDecoded || 0, frameWidth: r.frameWidth || 0, frameHeight: r.frameHeight || 0 });
      }
    });
    return out;
  });
}

// waitDecoding waits for 640-pixel-wide video whose decoded frame count
// keeps growing.
async function waitDecoding(step, page) {
  let base = null;
  const v = await poll(step, () => inbound(page), (x) => {
    const s = x.video.find((y) => y.frameWidth === 640);
    if (!s) return false;
    if (base === null) base = s.framesDecoded;
    return s.framesDecoded >= base + 10;
  });
  const s = v.video.find((x) => x.frameWidth === 640);
  return { framesDecoded: s.framesDecoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight };
}

function consoleState(page) {
  return page.evaluate(() => {
    const p = document.getElementById('session-page');
    const rows = (sel) => Array.from(document.querySelectorAll(sel), (e) => ({ ...e.dataset, text: e.textContent }));
    return {
      status: p ? p.dataset.status : '',
      lobby: rows('#panel-lobby li.person'),
      participants: rows('#panel-participants li.person'),
      invitations: rows('#panel-invitations li.inv'),
      attendance: rows('#panel-attendance tbody tr'),
      events: Array.from(document.querySelectorAll('#panel-events li'), (e) => e.dataset.type),
      rec: !!document.getElementById('rec-indicator'),
    };
  });
}

// confirmDialog accepts the console's own confirmation dialog.
async function confirmDialog(page) {
  await page.waitForSelector('#confirm:not([hidden]) #confirm-ok', { timeout: STEP_MS });
  await page.click('#confirm-ok', { timeout: STEP_MS });
}

function stepper(result) {
  return async (name, fn) => {
    const t0 = Date.now();
    log('step', name);
    const v = await fn(name);
    result.steps.push({ name, ms: Date.now() - t0 });
    return v;
  };
}

async function story(browser, opts, result) {
  const run = stepper(result);
  const errors = result.pageErrors;
  const supCtx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const con = await supCtx.newPage();
  watch(con, 'console', errors);

  await run('console-chinese', async (n) => {
    await con.goto(`${opts.base}/console/`, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
    await poll(n, () => con.evaluate(() => ({ lang: document.documentElement.lang, title: (document.querySelector('.login h1') || {}).textContent })),
      (s) => s.lang === 'zh-CN' && s.title === ZH.loginTitle);
  });

  await run('sign-in', async (n) => {
    await con.fill('#login-username', opts.username);
    await con.fill('#login-password', opts.password);
    await con.click('#login-submit');
    await poll(n, () => con.evaluate(() => !!document.getElementById('session-list')), (x) => x);
  });

  const sessionId = await run('schedule', async (n) => {
    await con.click('#btn-new-session');
    await con.waitForSelector('#schedule-form', { timeout: STEP_MS });
    await con.fill('#f-title', TITLE);
    await con.fill('#f-case', CASE_NUMBER);
    await con.click('#f-now');
    const rows = await con.$$('#f-units .unit-row');
    if (rows.length < 2) throw new StepError(n, `the form offers ${rows.length} unit rows`);
    for (const [row, u] of [[rows[0], UNIT_A], [rows[1], UNIT_B]]) {
      await (await row.$('.unit-code')).fill(u.code);
      await (await row.$('.unit-name')).fill(u.name);
    }
    if (!(await con.isChecked('#f-recording'))) throw new StepError(n, 'recording is not on by default');
    await con.click('#f-submit');
    const s = await poll(n, () => con.evaluate(() => {
      const p = document.getElementById('session-page');
      return p ? { id: p.dataset.sessionId, status: p.dataset.status, title: (document.getElementById('session-title') || {}).textContent } : null;
    }), (x) => x && x.status === 'scheduled' && x.title === TITLE);
    return s.id;
  });
  result.sessionId = sessionId;

  const links = await run('invite', async (n) => {
    await con.click('#btn-issue');
    const st = await poll(n, () => consoleState(con), (s) => s.invitations.length === 2 && s.invitations.every((i) => i.status === 'valid'));
    const urls = await con.evaluate(() => Object.fromEntries(Array.from(document.querySelectorAll('#panel-invitations li.inv'),
      (li) => [li.dataset.unit, li.querySelector('.inv-url').value])));
    if (!urls[UNIT_A.code] || !urls[UNIT_B.code]) throw new StepError(n, `links: ${JSON.stringify(urls)} from ${JSON.stringify(st.invitations)}`);
    await con.click(`#panel-invitations li.inv[data-unit="${UNIT_A.code}"] [data-action="qr"]`);
    await poll(`${n} (QR code)`, () => con.evaluate((code) => {
      const img = document.querySelector(`#panel-invitations li.inv[data-unit="${code}"] img.qr`);
      return img ? { complete: img.complete, width: img.naturalWidth } : null;
    }, UNIT_A.code), (q) => q && q.complete && q.width > 0);
    return urls;
  });
  result.links = links;

  await run('open-lobby', async (n) => {
    await con.click('[data-control="open-lobby"]');
    await poll(n, () => consoleState(con), (s) => s.status === 'lobby');
  });
  await shot(con, 'console-lobby-open');

  // The supervisor joins its own session: the console opens the call page
  // in a window of its own (see session.js for why not an iframe).
  const call = await run('supervisor-joins', async (n) => {
    const [popup] = await Promise.all([supCtx.waitForEvent('page', { timeout: STEP_MS }), con.click('[data-control="join"]')]);
    watch(popup, 'supervisor-call', errors);
    await poll(n, () => callState(popup), (s) => s.state && s.state.phase === 'joined' && s.state.media === 'open' &&
      s.state.self.role === 'supervisor');
    return popup;
  });

  const countyCtx = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  const county = await countyCtx.newPage();
  watch(county, 'county-A', errors);
  await run('county-waits-in-lobby', async (n) => {
    await county.goto(links[UNIT_A.code], { waitUntil: 'domcontentloaded', timeout: STEP_MS });
    await poll(n, () => callState(county), (s) => s.state && s.state.phase === 'lobby' && s.lobby.includes(ZH.lobby));
  });
  await shot(county, 'county-lobby');

  const waiting = await run('supervisor-sees-lobby', async (n) => {
    const st = await poll(n, () => consoleState(con), (s) => s.lobby.some((p) => p.unit === UNIT_A.code));
    // The call page lists the lobby too (lobby-updated), with its own button.
    await poll(`${n} (call page)`, () => call.evaluate(() => Array.from(document.querySelectorAll('#lobby-list li'), (li) => li.textContent)),
      (names) => names.some((x) => x.includes(UNIT_A.name)));
    return st.lobby.find((p) => p.unit === UNIT_A.code);
  });
  await shot(con, 'console-lobby');
  await shot(call, 'supervisor-call-lobby');

  await run('admit', async (n) => {
    await con.click(`#panel-lobby li[data-participant-id="${waiting.participantId}"] [data-action="admit"]`);
    await poll(n, () => callState(county), (s) => s.state && s.state.phase === 'joined' && s.state.media === 'open' && !s.lobby);
    await poll(`${n} (console)`, () => consoleState(con), (s) => s.lobby.length === 0 && s.participants.some((p) => p.unit === UNIT_A.code));
  });

  const [supVideo, countyVideo] = await run('media-both-ways', (n) =>
    Promise.all([waitDecoding(`${n} (supervisor)`, call), waitDecoding(`${n} (county A)`, county)]));
  result.supervisor = supVideo;
  result.county = countyVideo;

  await run('recording-dot', (n) => poll(n, () => callState(county), (s) => s.rec.includes(ZH.recording)));

  await run('start', async (n) => {
    await con.click('[data-control="start"]');
    await poll(n, () => consoleState(con), (s) => s.status === 'live');
  });

  await run('overview', async (n) => {
    // The bureau's overview lists the running session with county A's link
    // quality, including the SFU's bandwidth estimate toward it (from
    // Chromium's own TWCC feedback).
    await con.evaluate(() => { window.location.hash = '#/overview'; });
    const o = await poll(n, () => con.evaluate((id) => {
      const card = document.querySelector(`#overview article[data-session-id="${id}"]`);
      if (!card) return null;
      return Array.from(card.querySelectorAll('tbody tr'), (tr) => {
        const q = tr.querySelector('[data-quality]');
        const d = tr.querySelector('[data-downlink-kbps]');
        return { unit: tr.dataset.unit, quality: q ? q.dataset.quality : '', downlinkKbps: d ? Number(d.dataset.downlinkKbps || 0) : 0 };
      });
    }, sessionId), (rows) => rows && rows.some((r) => r.unit === UNIT_A.code && r.downlinkKbps > 0));
    result.overview = o;
    await con.evaluate((id) => { window.location.hash = `#/session/${id}`; }, sessionId);
    await poll(`${n} (back)`, () => consoleState(con), (s) => s.status === 'live' && s.participants.some((p) => p.unit === UNIT_A.code));
  });

  const countyPid = (await callState(county)).state.self.id;
  await run('mute-from-console', async (n) => {
    await con.click(`#panel-participants li[data-participant-id="${countyPid}"] [data-action="mute"]`);
    await poll(n, () => callState(county), (s) => s.modNote.includes(ZH.modMuted) && s.micDisabled);
  });
  await shot(county, 'county-mod-muted');
  await run('unmute-from-call-page', async (n) => {
    await call.click(`#member-list li[data-participant-id="${countyPid}"] [data-action="unmute"]`, { timeout: STEP_MS });
    await poll(n, () => callState(county), (s) => !s.modNote && !s.micDisabled);
  });

  await run('chat', async (n) => {
    await county.click('#btn-chat');
    await county.fill('#chat-input', CHAT_TEXT);
    await county.press('#chat-input', 'Enter');
    await poll(n, () => call.evaluate(() => Array.from(document.querySelectorAll('#chat-list .chat-msg'), (e) => e.textContent)),
      (msgs) => msgs.some((m) => m.includes(CHAT_TEXT) && m.includes(UNIT_A.name)));
    await poll(`${n} (console log)`, () => consoleState(con), (s) => s.events.includes('chat'));
  });
  await shot(call, 'supervisor-call');
  await shot(county, 'county-call');

  await run('remove', async (n) => {
    await con.click(`#panel-participants li[data-participant-id="${countyPid}"] [data-action="remove"]`);
    await confirmDialog(con);
    await poll(n, () => callState(county), (s) => s.state && s.state.phase === 'error' && s.state.errorCode === 'removed' &&
      s.overlay === ZH.removed);
    await poll(`${n} (console)`, () => consoleState(con), (s) => !s.participants.some((p) => p.unit === UNIT_A.code) &&
      s.invitations.some((i) => i.unit === UNIT_A.code && i.status === 'revoked'));
  });
  await shot(county, 'county-removed');

  await run('removed-stays-out', async (n) => {
    // No reconnect: the page must still show the removal a while later.
    await sleep(4000);
    const s = await callState(county);
    if (s.state.phase !== 'error' || s.overlay !== ZH.removed) throw new StepError(n, JSON.stringify(s));
  });

  const again = await run('link-refused', async (n) => {
    // County A opens its link again, in a fresh tab as a user would.
    await county.close();
    const page = await countyCtx.newPage();
    watch(page, 'county-A-again', errors);
    await page.goto(links[UNIT_A.code], { waitUntil: 'domcontentloaded', timeout: STEP_MS });
    const s = await poll(n, () => callState(page), (x) => x.state && x.state.phase === 'error' && x.overlay === ZH.revoked);
    result.refused = { errorCode: s.state.errorCode, message: s.overlay };
    return page;
  });
  await shot(again, 'county-link-refused');
  await countyCtx.close();

  await run('end', async (n) => {
    await con.click('[data-control="end"]');
    await confirmDialog(con);
    await poll(n, () => consoleState(con), (s) => s.status === 'ended');
    const s = await poll(`${n} (call page)`, () => callState(call), (x) => x.state && x.state.phase === 'error' && x.overlay === ZH.ended);
    result.ended = { errorCode: s.state.errorCode, message: s.overlay };
  });
  await shot(call, 'supervisor-ended');
  await call.close();

  const att = await run('attendance-panel', (n) => poll(n, () => consoleState(con), (s) => {
    const a = s.attendance.find((r) => r.unit === UNIT_A.code);
    const b = s.attendance.find((r) => r.unit === UNIT_B.code);
    return a && b && a.status === 'on_time' && a.text.includes(ZH.onTime) && b.status === 'absent' && b.text.includes(ZH.absent);
  }));
  result.attendancePanel = att.attendance.map((r) => ({ unit: r.unit, status: r.status }));
  await shot(con, 'console-ended');

  await run('report-page', async (n) => {
    await con.goto(`${opts.base}/console/report.html?session=${encodeURIComponent(sessionId)}`, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
    const r = await poll(n, () => con.evaluate(() => {
      const root = document.getElementById('report');
      return {
        state: root.dataset.state,
        status: root.dataset.sessionStatus,
        summary: (document.getElementById('report-summary') || {}).textContent || '',
        rows: Array.from(document.querySelectorAll('#report-units tbody tr'), (tr) => ({ unit: tr.dataset.unit, status: tr.dataset.status, text: tr.textContent })),
        text: root.textContent,
      };
    }), (x) => x.state === 'ready' && x.rows.length === 2);
    const a = r.rows.find((x) => x.unit === UNIT_A.code);
    const b = r.rows.find((x) => x.unit === UNIT_B.code);
    if (r.status !== 'ended' || !a || a.status !== 'on_time' || !a.text.includes(UNIT_A.name) || !b || b.status !== 'absent' ||
      !b.text.includes(ZH.absent) || !r.text.includes(CASE_NUMBER) || !r.summary.includes('缺席 1')) {
      throw new StepError(n, JSON.stringify(r));
    }
    result.report = { summary: r.summary, rows: r.rows.map(({ unit, status }) => ({ unit, status })) };
  });
  await shot(con, 'report');
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.log(JSON.stringify({ ok: false, step: 'usage', reason: err.message }));
    process.exit(2);
  }
  const result = { ok: false, steps: [], pageErrors: [] };
  const hardStop = setTimeout(() => {
    console.log(JSON.stringify({ ...result, step: 'total', reason: `gave up after ${TOTAL_MS} ms` }));
    process.exit(1);
  }, TOTAL_MS);
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, ignoreDefaultArgs: ['--headless'], args: ARGS, timeout: STEP_MS });
    await story(browser, opts, result);
    if (result.pageErrors.length) throw new StepError('page-errors', result.pageErrors.join(' | '));
    result.ok = true;
  } catch (err) {
    result.step = err.step || 'setup';
    result.reason = err.reason || err.message;
  } finally {
    if (browser) await browser.close().catch(() => {});
    clearTimeout(hardStop);
  }
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

main();
