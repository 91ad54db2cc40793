// The auditor's replay in headless Chromium against a running ducha.
//
//   node replay.mjs --base URL --username U --case CASE --phase play
//       signs in on the replay page, finds the recording by case number,
//       checks the integrity badge says intact, plays, seeks to the middle
//       and to an event, and checks every tile against the timeline clock.
//   node replay.mjs --base URL --username U --case CASE --phase tampered
//       opens the same recording and waits for the badge to turn red.
//
// The password comes from DUCHA_PASSWORD. DUCHA_STEP_TIMEOUT_MS (default
// 60000) bounds each step; DUCHA_SCREENSHOTS=DIR saves screenshots. The
// last stdout line is one JSON result; exit 1 on failure.

import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, StepError, sleep, readArgs, pollWithin } from './harness.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const STEP_MS = Number(process.env.DUCHA_STEP_TIMEOUT_MS || 60000);
const poll = (step, probe, check, describe) => pollWithin(STEP_MS, step, probe, check, { describe, interval: 200 });
const SHOTS = process.env.DUCHA_SCREENSHOTS || '';
const ARGS = [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required'];
// The tolerance the issue sets: every tile within 100 ms of the timeline.
const SYNC_MS = 100;

const log = (...a) => console.error('[replay]', ...a);

function parseArgs(argv) {
  const o = { base: '', username: '', case: '', phase: 'play' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in o) || i + 1 >= argv.length) throw new Error(`unknown or incomplete argument ${argv[i]}`);
    o[k] = argv[++i];
  }
  if (!o.base || !o.username || !o.case || !['play', 'tampered'].includes(o.phase)) {
    throw new Error('need --base, --username, --case and --phase play|tampered');
  }
  return o;
}

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true }).catch((e) => log('screenshot failed', e.message));
}

const snapshot = (page) => page.evaluate(() => (window.duchaReplay ? window.duchaReplay.snapshot() : null));

// syncProblems lists the tiles out of line with the clock in one snapshot.
// A tile that reached the end of its file is waiting for the next segment
// (the clock holds for it as soon as it moves on) and is not measured.
function measured(snap) {
  return snap.tiles.filter((t) => t.visible && t.active && !t.ended && !t.seeking && t.readyState >= 2);
}
function syncProblems(snap, tolerance) {
  return measured(snap).filter((t) => Math.abs(t.timelineMs - snap.positionMs) > tolerance || !(t.videoWidth > 0))
    .map((t) => `${t.name}: tile at ${t.timelineMs.toFixed(0)} ms, clock at ${snap.positionMs.toFixed(0)} ms, width ${t.videoWidth}`);
}

// checkPlaying samples the page for a while after playback settled: the
// clock moves, every visible tile with video is within SYNC_MS of it, its
// currentTime grows, and it shows decoded video.
async function checkPlaying(step, page, wantVisible, tolerance = SYNC_MS) {
  await poll(`${step}-settle`, () => snapshot(page), (s) => s && s.running && !s.held &&
    measured(s).length >= wantVisible);
  // Tiles start within a frame or two of each other; the drift loop pulls
  // them together in well under a second.
  await sleep(1200);
  const samples = [];
  const first = {};
  const worst = {};
  const history = [];
  for (let i = 0; i < 10; i++) {
    const s = await snapshot(page);
    s.at = Date.now();
    history.push(s.tiles.map((t) => `${t.name}@${(t.timelineMs - s.positionMs).toFixed(0)}ms x${t.playbackRate}${t.paused ? ' paused' : ''}`)
      .join(', ') + (s.held ? ' (held)' : ''));
    if (s.running && !s.held) {
      const bad = syncProblems(s, tolerance);
      if (bad.length) throw new StepError(step, `out of sync: ${bad.join('; ')}; drift history: ${history.join(' | ')}`);
      for (const t of measured(s)) {
        if (!(t.key in first)) first[t.key] = t;
        worst[t.key] = Math.max(worst[t.key] || 0, Math.abs(t.timelineMs - s.positionMs));
      }
      samples.push(s);
    }
    await sleep(150);
  }
  if (samples.length < 5) throw new StepError(step, `the clock held in ${10 - samples.length} of 10 samples`);
  const last = samples[samples.length - 1];
  const visible = last.tiles.filter((t) => t.visible);
  if (visible.length < wantVisible) throw new StepError(step, `${visible.length} tiles visible, want ${wantVisible}`);
  for (const t of measured(last)) {
    const f = first[t.key];
    if (!f || !(t.timelineMs > f.timelineMs + 500)) throw new StepError(step, `${t.name}: currentTime did not grow (${JSON.stringify([f, t])})`);
  }
  if (!(last.positionMs > samples[0].positionMs + 500)) throw new StepError(step, 'the clock did not move');
  const wall = samples.length > 1 ? last.at - samples[0].at : 0;
  return {
    positionMs: Math.round(last.positionMs),
    clockPerWall: wall > 0 ? Number(((last.positionMs - samples[0].positionMs) / wall).toFixed(2)) : null,
    tiles: visible.map((t) => ({ name: t.name, videoWidth: t.videoWidth, worstDriftMs: Math.round(worst[t.key] ?? -1) })),
    samples: samples.length,
  };
}

async function signInAndOpen(page, o, run) {
  await run('page-in-chinese', async (n) => {
    await page.goto(`${o.base}/static/replay/index.html`, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
    await page.waitForSelector('#login-form', { timeout: STEP_MS });
    const title = await page.textContent('#login-form h1');
    if (title !== '审计人员登录') throw new StepError(n, `login title ${JSON.stringify(title)}`);
  });
  await run('sign-in', async () => {
    await page.fill('#login-username', o.username);
    await page.fill('#login-password', process.env.DUCHA_PASSWORD || '');
    await page.click('#login-submit');
    await page.waitForSelector('#search-form', { timeout: STEP_MS });
  });
  const found = await run('find-by-case', async (n) => {
    await page.fill('#search-case', o.case);
    await page.click('#search-submit');
    const rows = await poll(n, () => page.$$eval('#results tbody tr', (trs) => trs.map((tr) => ({
      id: tr.dataset.id, text: tr.textContent,
    }))), (r) => r.length === 1);
    if (!rows[0].text.includes(o.case)) throw new StepError(n, `row ${rows[0].text}`);
    return rows[0];
  });
  await run('open', async () => {
    await page.click(`#results tbody tr[data-id="${found.id}"] button.open`);
    await page.waitForSelector('#tiles .tile', { timeout: STEP_MS, state: 'attached' });
  });
  return found.id;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const result = { ok: false, phase: o.phase, steps: [], pageErrors: [] };
  const run = async (name, f) => {
    log('step', name);
    const v = await f(name);
    result.steps.push({ name });
    return v;
  };
  const browser = await chromium.launch({ executablePath: CHROMIUM, ignoreDefaultArgs: ['--headless'], args: ARGS });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 950 } });
    const page = await ctx.newPage();
    page.on('console', (m) => log(`console.${m.type()}:`, m.text()));
    page.on('pageerror', (e) => result.pageErrors.push(e.message));
    result.recording = await signInAndOpen(page, o, run);

    if (o.phase === 'tampered') {
      const badge = await run('badge-red', (n) => poll(n, () => page.evaluate(() => {
        const b = document.querySelector('#integrity-badge');
        return b ? { result: b.dataset.result, text: b.textContent, tone: b.className } : null;
      }), (b) => b && b.result !== 'checking'));
      await shot(page, 'replay-tampered');
      if (badge.result !== 'altered' || !badge.tone.includes('bad')) throw new StepError('badge-red', `badge ${JSON.stringify(badge)}`);
      result.badge = badge;
      result.ok = true;
      return result;
    }

    result.badge = await run('badge-intact', (n) => poll(n, () => page.evaluate(() => {
      const b = document.querySelector('#integrity-badge');
      return b ? { result: b.dataset.result, text: b.textContent, tone: b.className } : null;
    }), (b) => b && b.result !== 'checking').then((b) => {
      if (b.result !== 'intact' || !b.tone.includes('ok') || !b.text.includes('完好')) throw new StepError(n, `badge ${JSON.stringify(b)}`);
      return b;
    }));
    const info = await snapshot(page);
    result.durationMs = info.durationMs;
    result.tileCount = info.tiles.length;
    if (info.tiles.length !== 3) throw new StepError('tiles', `${info.tiles.length} tiles, want one per participant (3)`);
    const events = await page.$$eval('#events .event', (bs) => bs.map((b) => ({ type: b.dataset.type, offsetMs: Number(b.dataset.offsetMs),
      text: b.textContent })));
    result.events = events.map((e) => e.type);
    const markers = await page.$$eval('#timeline .marker', (ms) => ms.length);
    if (markers !== events.length) throw new StepError('markers', `${markers} markers for ${events.length} events`);

    result.start = await run('play', async (n) => {
      await page.click('#btn-play');
      return checkPlaying(n, page, 3);
    });
    await shot(page, 'replay-playing');

    result.middle = await run('seek-middle', async (n) => {
      const box = await page.locator('#timeline').boundingBox();
      await page.mouse.click(box.x + box.width * 0.5, box.y + box.height / 2);
      const s = await snapshot(page);
      const target = info.durationMs / 2;
      if (Math.abs(s.positionMs - target) > 0.03 * info.durationMs) throw new StepError(n, `clock at ${s.positionMs} after clicking the middle (${target})`);
      return checkPlaying(n, page, 2);
    });
    await shot(page, 'replay-middle');

    const ev = events.find((e) => e.type === 'chat') || events.find((e) => e.type === 'mute');
    if (!ev) throw new StepError('seek-event', `no chat or mute event in ${JSON.stringify(events)}`);
    result.event = await run('seek-event', async (n) => {
      await page.click(`#events .event[data-type="${ev.type}"]`);
      const s = await snapshot(page);
      if (Math.abs(s.positionMs - ev.offsetMs) > 300) throw new StepError(n, `clock at ${s.positionMs}, event at ${ev.offsetMs}`);
      const r = await checkPlaying(n, page, 3);
      return { type: ev.type, offsetMs: ev.offsetMs, ...r };
    });

    // At 2x every tile decodes twice the frames on a machine shared with
    // the server: the speed is checked, and sync within a looser bound.
    result.speed = await run('speed-2x', async (n) => {
      await page.click('.speed[data-rate="2"]');
      const r = await checkPlaying(n, page, 2, 2.5 * SYNC_MS);
      const s = await snapshot(page);
      if (s.rate !== 2) throw new StepError(n, `rate ${s.rate}`);
      if (!(r.clockPerWall > 1.3)) throw new StepError(n, `the clock ran at ${r.clockPerWall}x wall time`);
      await page.click('.speed[data-rate="1"]');
      return r;
    });

    result.presence = await run('left-early-hidden', async (n) => {
      await page.evaluate((ms) => window.duchaReplay.seek(ms), info.durationMs - 1500);
      const s = await poll(n, () => snapshot(page), (x) => x && x.tiles.filter((t) => t.visible).length === 2);
      return s.tiles.map((t) => ({ name: t.name, visible: t.visible }));
    });

    await run('english', async (n) => {
      await page.click('#btn-lang');
      const t = await page.textContent('#btn-play');
      if (!['Play', 'Pause'].includes(t)) throw new StepError(n, `play button says ${t}`);
      await page.click('#btn-lang');
    });
    if (result.pageErrors.length) throw new StepError('page-errors', result.pageErrors.join('; '));
    result.ok = true;
    return result;
  } finally {
    await browser.close().catch(() => {});
  }
}

main().then((r) => {
  console.log(JSON.stringify(r));
  process.exit(r.ok ? 0 : 1);
}, (err) => {
  console.log(JSON.stringify({ ok: false, step: err.step || 'setup', reason: err.reason || err.message }));
  process.exit(1);
});
