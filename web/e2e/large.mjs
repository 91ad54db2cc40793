// A large room in headless Chromium against a running ducha started with a
// low --large-room (PROTOCOL.md, "Large rooms"):
//
//   node large.mjs --supervisor URL --county URL --late URL
//
// The supervisor and a county join while the room is small; the late county
// then joins a room over the limit and must hear the others on speaker slots:
// three slot tracks, at least one of them live and receiving packets, played
// by the page. It must also publish at once rather than wait for audio (and
// county video) the server never sends it. Fake microphones beep, which the
// server's audio level reading counts as speech.
//
// The last stdout line is one JSON result ({"ok": true, "large": {...}}, or
// {"ok": false, "step", "reason"} and exit 1). DUCHA_STEP_TIMEOUT_MS (default
// 30000) bounds each step.

import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS as ARGS, StepError, sleep, readArgs, pollWithin } from './harness.mjs';

const STEP_MS = Number(process.env.DUCHA_STEP_TIMEOUT_MS || 30000);
const poll = (step, probe, check, describe) => pollWithin(STEP_MS, step, probe, check, { describe });

const log = (...a) => console.error('[large]', ...a);

function parseArgs(argv) {
  const opts = { supervisor: '', county: '', late: '' };
  readArgs(argv, opts);
  if (!opts.supervisor || !opts.county || !opts.late) throw new Error('need --supervisor, --county and --late');
  return opts;
}

async function openPage(browser, url, label, errors) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  const page = await ctx.newPage();
  page.on('console', (m) => log(`${label} console.${m.type()}:`, m.text()));
  page.on('pageerror', (e) => errors.push(`${label}: ${e.message}`));
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
  return page;
}

// joined: in the call, camera open, media connected and our video sent.
function joinedAndSending(page) {
  return page.evaluate(async () => {
    const d = window.__ducha;
    const s = d ? d.state() : null;
    const pc = d && d.pc();
    let sent = 0;
    if (pc) (await pc.getStats()).forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'video') sent += r.framesEncoded || 0; });
    return { phase: s && s.phase, media: s && s.media, pc: pc ? pc.connectionState : 'none', framesEncoded: sent, self: s && s.self,
      slotMode: s && s.slotMode, subscribeWait: s && s.subscribeWait };
  });
}

const ready = (x) => x.phase === 'joined' && x.media === 'open' && x.pc === 'connected' && x.framesEncoded > 0;

// slots reads the page's speaker slots with their receive statistics.
function slots(page) {
  return page.evaluate(async () => {
    const d = window.__ducha;
    const list = d.slots();
    const stats = new Map();
    let otherAudio = 0;
    (await d.pc().getStats()).forEach((r) => {
      if (r.type !== 'inbound-rtp' || r.kind !== 'audio') return;
      if (list.some((s) => s.track === r.trackIdentifier)) stats.set(r.trackIdentifier, r);
      else otherAudio++;
    });
    return {
      otherAudio,
      audioReceivedPerParticipant: d.tracks().filter((t) => t.kind === 'audio' && t.received).length,
      slots: list.map((s) => {
        const r = stats.get(s.track) || {};
        return { ...s, packetsReceived: r.packetsReceived || 0, totalAudioEnergy: r.totalAudioEnergy || 0, audioLevel: r.audioLevel || 0 };
      }),
    };
  });
}

function tile(page, pid) {
  return page.evaluate((id) => {
    const t = document.querySelector(`.tile:not(.local)[data-participant-id="${CSS.escape(id)}"]`);
    if (!t) return null;
    const badge = t.querySelector('.muted-badge');
    const v = t.querySelector('video');
    return { audioMuted: t.dataset.audioMuted, badgeShown: !!badge && !badge.hidden, videoWidth: v ? v.videoWidth : 0,
      speaking: t.classList.contains('speaking') };
  }, pid);
}

async function run(browser, opts, result) {
  const errors = result.pageErrors;
  const step = async (name, fn) => {
    const t0 = Date.now();
    const v = await fn(name);
    result.steps.push({ name, ms: Date.now() - t0 });
    return v;
  };
  // The first two join a small room: one audio track each, no slots.
  const sup = await openPage(browser, opts.supervisor, 'supervisor', errors);
  const supState = await step('supervisor-joined', (n) => poll(n, () => joinedAndSending(sup), ready));
  const county = await openPage(browser, opts.county, 'county', errors);
  const countyState = await step('county-joined', (n) => poll(n, () => joinedAndSending(county), ready));
  // The third makes the room large (more than --large-room 2).
  const late = await openPage(browser, opts.late, 'late', errors);
  const lateState = await step('late-joined', (n) => poll(n, () => joinedAndSending(late), (x) => ready(x) && !!x.subscribeWait));
  const out = {
    earlySlotMode: supState.slotMode || countyState.slotMode,
    slotMode: lateState.slotMode,
    subscribeWait: lateState.subscribeWait,
  };
  result.large = out;

  // Three slots, played, and at least one of them carries a speaker: live,
  // unmuted (Chromium unmutes a remote track when packets arrive), and its
  // packet count grows.
  const heard = await step('slot-audio-live', (n) => poll(n, async () => {
    const a = await slots(late);
    await sleep(1000);
    const b = await slots(late);
    const growing = b.slots.filter((s) => {
      const before = a.slots.find((x) => x.id === s.id);
      return before && s.packetsReceived > before.packetsReceived;
    });
    return { ...b, growing: growing.map((s) => s.id) };
  }, (x) => x.slots.length === 3 && x.slots.every((s) => s.attached && !s.paused && s.readyState === 'live') &&
    x.growing.some((id) => { const s = x.slots.find((y) => y.id === id); return !s.muted; })));
  out.slots = heard.slots;
  out.growing = heard.growing;
  out.otherAudio = heard.otherAudio;
  out.audioReceivedPerParticipant = heard.audioReceivedPerParticipant;

  // Tiles: the others' microphones are on (heard on the slots), so no
  // "muted" badge; the supervisor's video comes, the other county's not.
  const tiles = await step('late-tiles', (n) => poll(n, async () => ({
    supervisor: await tile(late, supState.self.id),
    county: await tile(late, countyState.self.id),
  }), (t) => t.supervisor && t.county && t.supervisor.audioMuted === 'false' && t.county.audioMuted === 'false' &&
    t.supervisor.videoWidth > 0));
  out.tiles = tiles;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.log(JSON.stringify({ ok: false, step: 'usage', reason: err.message }));
    process.exit(2);
  }
  const result = { ok: false, mode: 'large', steps: [], pageErrors: [] };
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, ignoreDefaultArgs: ['--headless'], args: ARGS, timeout: STEP_MS });
    await run(browser, opts, result);
    if (result.pageErrors.length) throw new StepError('page-errors', result.pageErrors.join(' | '));
    result.ok = true;
  } catch (err) {
    result.step = err.step || 'setup';
    result.reason = err.reason || err.message;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

main();
