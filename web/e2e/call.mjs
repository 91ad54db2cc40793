// Real calls in headless Chromium against a running ducha.
//
//   node call.mjs --supervisor URL --county URL [--observer URL]
//                                   a supervisor and a county office (and an observer)
//   node call.mjs --invalid URL     a bad or expired link shows the Chinese error
//   node call.mjs --busy URL        a camera held by another program: message, then join without it
//   node call.mjs --replaced URL    the same link opened twice: the first window is told
//   node call.mjs --reconnect URL   prints {"event":"ready"} once joined; the caller then
//                                   restarts the server; {"event":"dropped"} once the page
//                                   noticed; the result once it is back in the call
//
// URLs may also come from DUCHA_SUPERVISOR_URL, DUCHA_COUNTY_URL, DUCHA_OBSERVER_URL,
// DUCHA_INVALID_URL. DUCHA_STEP_TIMEOUT_MS (default 60000) bounds each step;
// DUCHA_SCREENSHOTS=DIR saves screenshots. The last stdout line is one JSON
// result; exit 1 on failure with {"ok": false, "step": ..., "reason": ...}, 2 on bad usage.

import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS as ARGS, StepError, sleep, readArgs, pollWithin } from './harness.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const STEP_MS = Number(process.env.DUCHA_STEP_TIMEOUT_MS || 60000);
const poll = (step, probe, check, describe) => pollWithin(STEP_MS, step, probe, check, { describe });
const TOTAL_MS = Number(process.env.DUCHA_TOTAL_TIMEOUT_MS || 8 * STEP_MS);
const SHOTS = process.env.DUCHA_SCREENSHOTS || '';
const INVALID_LINK_ZH = '邀请链接无效或已过期，请联系督查人员重新获取';
const DEVICE_BUSY_ZH = '摄像头或麦克风被其他程序占用，请关闭其他程序后重试';
const REPLACED_ZH = '您已在其他窗口加入';
const RECONNECTING_ZH = '连接中断，正在重新连接…';
const RECONNECTED_ZH = '已重新连接';

function parseArgs(argv) {
  const opts = {
    supervisor: process.env.DUCHA_SUPERVISOR_URL || '',
    county: process.env.DUCHA_COUNTY_URL || '',
    observer: process.env.DUCHA_OBSERVER_URL || '',
    invalid: process.env.DUCHA_INVALID_URL || '',
    busy: '',
    replaced: '',
    reconnect: '',
  };
  readArgs(argv, opts);
  opts.mode = ['invalid', 'busy', 'replaced', 'reconnect'].find((m) => opts[m]) || 'call';
  if (opts.mode === 'call' && !(opts.supervisor && opts.county)) {
    throw new Error('need --supervisor and --county, or one of --invalid, --busy, --replaced, --reconnect');
  }
  return opts;
}

const log = (...a) => console.error('[call]', ...a);

function state(page) {
  return page.evaluate(() => (window.__ducha ? window.__ducha.state() : null));
}

// inbound summarises what a page receives: per video stream what the test
// checks, plus enough context (connection, audio, bytes) to explain a failure.
function inbound(page) {
  return page.evaluate(async () => {
    const pc = window.__ducha && window.__ducha.pc();
    if (!pc) return { pc: 'none', video: [] };
    const out = { pc: pc.connectionState, video: [], audioPackets: 0, bytesReceived: 0, remoteTracks: window.__ducha.tracks() };
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        out.video.push({ track: r.trackIdentifier || '', framesDecoded: r.framesDecoded || 0, frameWidth: r.frameWidth || 0, frameHeight: r.frameHeight || 0,
          packetsReceived: r.packetsReceived || 0, packetsLost: r.packetsLost || 0, pliCount: r.pliCount || 0, keyFramesDecoded: r.keyFramesDecoded || 0 });
      }
      if (r.type === 'inbound-rtp' && r.kind === 'audio') out.audioPackets += r.packetsReceived || 0;
      if (r.type === 'outbound-rtp' && r.kind === 'video') {
        // One per simulcast layer; the summary adds them up.
        const v = out.sentVideo || { framesEncoded: 0, keyFramesEncoded: 0, pliCount: 0, firCount: 0, nackCount: 0, frameWidth: 0 };
        v.framesEncoded += r.framesEncoded || 0;
        v.keyFramesEncoded += r.keyFramesEncoded || 0;
        v.pliCount += r.pliCount || 0;
        v.firCount += r.firCount || 0;
        v.nackCount += r.nackCount || 0;
        v.frameWidth = Math.max(v.frameWidth, r.frameWidth || 0);
        out.sentVideo = v;
      }
      if (r.type === 'transport') out.bytesReceived += r.bytesReceived || 0;
    });
    return out;
  });
}

function tileInfo(page, pid) {
  return page.evaluate((id) => {
    const tile = document.querySelector(`.tile:not(.local)[data-participant-id="${CSS.escape(id)}"]`);
    if (!tile) return null;
    const badge = tile.querySelector('.muted-badge');
    const video = tile.querySelector('video');
    return {
      name: tile.querySelector('.name').textContent,
      role: tile.querySelector('.role').textContent,
      audioMuted: tile.dataset.audioMuted,
      badgeVisible: !!badge && !badge.hidden && badge.getClientRects().length > 0,
      badgeText: badge ? badge.textContent : '',
      videoWidth: video ? video.videoWidth : 0,
      videoHeight: video ? video.videoHeight : 0,
      currentTime: video ? video.currentTime : 0,
    };
  }, pid);
}

// waitDecoding waits until the page decodes a received video and its
// decoded frame count keeps growing. Which simulcast layer arrives (and so
// the frame size) is the server's choice; the caller checks it.
async function waitDecoding(step, page) {
  const base = new Map();
  let grown = null;
  const t0 = Date.now();
  await poll(step, () => inbound(page), (x) => {
    for (const s of x.video) {
      if (!s.frameWidth) continue;
      if (!base.has(s.track)) base.set(s.track, s.framesDecoded);
      if (s.framesDecoded >= base.get(s.track) + 10) grown = s;
    }
    return grown !== null;
  });
  return { framesDecoded: grown.framesDecoded, frameWidth: grown.frameWidth, frameHeight: grown.frameHeight, packetsLost: grown.packetsLost,
    msToGrowingFrames: Date.now() - t0 };
}

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) }).catch((e) => log('screenshot failed', e.message));
}

// Counts getUserMedia calls, so a test can prove an observer never asks.
function countMediaRequests() {
  const md = navigator.mediaDevices;
  const orig = md.getUserMedia.bind(md);
  window.__gumCalls = 0;
  md.getUserMedia = (c) => {
    window.__gumCalls++;
    return orig(c);
  };
}

// Pretends another program holds the camera, as Chromium on Windows reports it.
function cameraBusy() {
  navigator.mediaDevices.getUserMedia = () =>
    Promise.reject(new DOMException('Could not start video source', 'NotReadableError'));
}

async function openPage(browser, url, label, errors, initScript = countMediaRequests) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  await ctx.addInitScript(initScript);
  const page = await ctx.newPage();
  page.on('console', (m) => log(`${label} console.${m.type()}:`, m.text()));
  page.on('pageerror', (e) => errors.push(`${label}: ${e.message}`));
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
  return page;
}

async function runCall(browser, opts, result) {
  const errors = result.pageErrors;
  const run = stepper(result);
  // As in a real session: the supervisor opens the room and publishes, then
  // the county office joins and finds the supervisor already there.
  // DUCHA_JOIN_TOGETHER=1 opens both at once instead, which provokes
  // negotiation glare (for soak runs).
  const together = process.env.DUCHA_JOIN_TOGETHER === '1';
  const sup = await openPage(browser, opts.supervisor, 'supervisor', errors);
  const countyOpening = together ? openPage(browser, opts.county, 'county', errors) : null;
  const supState = await run('supervisor-joined', (n) =>
    poll(n, () => Promise.all([state(sup), inbound(sup)]), ([s, x]) => s && s.phase === 'joined' && s.media === 'open' &&
      x.pc === 'connected' && x.sentVideo && x.sentVideo.framesEncoded > 0).then(([s]) => s));
  const county = await (countyOpening || openPage(browser, opts.county, 'county', errors));
  const countyState = await run('county-joined', (n) =>
    poll(n, () => state(county), (s) => s && s.phase === 'joined' && s.media === 'open'));
  const countyId = countyState.self.id;
  const supId = supState.self.id;

  await run('chinese-default', (n) =>
    poll(n, () => sup.evaluate(() => ({
      lang: document.documentElement.lang,
      leave: document.querySelector('#btn-leave .label').textContent,
      mic: document.querySelector('#btn-mic .label').textContent,
      membersOpen: !document.getElementById('members').hidden,
      members: Array.from(document.querySelectorAll('.member .role-chip'), (e) => e.textContent),
    })), (s) => s.lang === 'zh-CN' && s.leave === '离开' && s.mic === '静音' && s.membersOpen &&
      s.members.includes('督查人员') && s.members.includes('县级单位')),
  );
  await run('county-members-closed', (n) =>
    poll(n, () => county.evaluate(() => document.getElementById('members').hidden), (hidden) => hidden === true),
  );

  const [supVideo, countyVideo] = await run('media-both-ways', (n) =>
    Promise.all([waitDecoding(`${n} (supervisor)`, sup), waitDecoding(`${n} (county)`, county)]),
  );
  result.supervisor = { id: supId, ...supVideo };
  result.county = { id: countyId, ...countyVideo };

  if (opts.observer) await runObserver(browser, opts, result, run, sup);

  const tile = await run('tile-shows-county', (n) =>
    poll(n, () => tileInfo(sup, countyId), (t) => t && t.name === countyState.self.name && t.role === '县级单位' &&
      t.videoWidth > 0 && t.audioMuted === 'false'),
  );
  const t1 = await poll('tile-video-plays', () => tileInfo(sup, countyId), (t) => t && t.currentTime > tile.currentTime + 0.5);
  result.supervisor.tileVideoWidth = t1.videoWidth;
  result.supervisor.tileVideoHeight = t1.videoHeight;
  await shot(sup, 'supervisor-call');
  await shot(county, 'county-call');

  await run('speaker-outlined', (n) => waitSpeaker(n, sup, countyId));
  result.simulcast = await runSimulcast(sup, county, countyId, !!opts.observer, run);

  await run('county-mutes', async (n) => {
    await county.click('#btn-mic', { timeout: STEP_MS });
    await poll(n, () => county.evaluate(() => document.querySelector('#btn-mic .label').textContent), (l) => l === '取消静音');
    const t = await poll(n, () => tileInfo(sup, countyId), (x) => x && x.audioMuted === 'true' && x.badgeVisible && x.badgeText.includes('已静音'));
    const p = await sup.evaluate((id) => window.__ducha.participants().find((x) => x.id === id), countyId);
    if (!p || !p.audioMuted) throw new StepError(n, `participants() does not show the county muted: ${JSON.stringify(p)}`);
    return t;
  });
  await shot(sup, 'supervisor-muted');

  await run('county-leaves', async (n) => {
    await county.click('#btn-leave', { timeout: STEP_MS });
    await poll(n, () => state(county), (s) => s && s.phase === 'left');
    await poll(n, () => sup.evaluate((id) => ({
      tile: !!document.querySelector(`.tile[data-participant-id="${CSS.escape(id)}"]`),
      listed: window.__ducha.participants().some((p) => p.id === id),
    }), countyId), (s) => !s.tile && !s.listed);
  });
  await shot(sup, 'supervisor-alone');
  const after = await state(sup);
  if (after.phase !== 'joined') throw new StepError('supervisor-stays', `supervisor left the call too: ${after.phase}`);
}

// waitSpeaker waits until the page outlines the tile of pid as speaking
// (active-speakers; the fake microphone beeps), in a colour one can see.
async function waitSpeaker(step, page, pid) {
  return poll(step, () => page.evaluate((id) => {
    const tile = document.querySelector(`.tile:not(.local)[data-participant-id="${CSS.escape(id)}"]`);
    if (!tile) return null;
    const cs = getComputedStyle(tile);
    return { speaking: tile.classList.contains('speaking'), border: cs.borderTopColor, width: cs.borderTopWidth };
  }, pid), (t) => t && t.speaking && t.border === 'rgb(62, 207, 110)' && parseFloat(t.width) >= 3);
}

// Simulcast (PROTOCOL.md): how long the server may take to follow a tile's
// new size (debounce, a keyframe of the new layer, the stats' own delay).
const LAYER_SWITCH_MS = Number(process.env.DUCHA_LAYER_SWITCH_MS || 20000);

// remoteVideo finds, on page, the tile of pid's camera: its track and what
// the page receives of it.
function remoteVideo(page, pid) {
  return page.evaluate(async (id) => {
    const tile = document.querySelector(`.tile:not(.local):not(.screen)[data-participant-id="${CSS.escape(id)}"]`);
    const video = tile && tile.querySelector('video');
    const track = video && video.srcObject ? video.srcObject.getVideoTracks()[0] : null;
    const pc = window.__ducha.pc();
    if (!track || !pc) return { track: '', frameHeight: 0 };
    let stat = null;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video' && r.trackIdentifier === track.id) stat = r;
    });
    const serverId = window.__ducha.tracks().find((t) => t.participantId === id && t.kind === 'video' && t.source !== 'screen');
    const sent = serverId ? window.__ducha.videoSizes()[serverId.id] || null : null;
    return {
      track: track.id,
      box: `${video.clientWidth}x${video.clientHeight}`,
      videoSize: sent, // what the page told the server
      frameWidth: stat ? stat.frameWidth || 0 : 0,
      frameHeight: stat ? stat.frameHeight || 0 : 0,
      framesDecoded: stat ? stat.framesDecoded || 0 : 0,
    };
  }, pid);
}

// sentLayers returns, per rid, what page's camera has sent so far.
function sentLayers(page) {
  return page.evaluate(async () => {
    const pc = window.__ducha.pc();
    const out = {};
    let availableOutgoingBitrate = 0;
    if (!pc) return { rids: out };
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video' && r.rid) {
        out[r.rid] = { bytesSent: r.bytesSent || 0, framesEncoded: r.framesEncoded || 0, frameHeight: r.frameHeight || 0, active: r.active,
          limit: r.qualityLimitationReason, target: r.targetBitrate || 0 };
      }
      if (r.type === 'candidate-pair' && r.nominated && r.availableOutgoingBitrate) availableOutgoingBitrate = r.availableOutgoingBitrate;
    });
    // availableOutgoingBitrate is the browser's own estimate of its uplink:
    // too low, and it sends only the lowest layer, whatever the server asks.
    return { rids: out, layers: window.__ducha.layers(), availableOutgoingBitrate };
  });
}

// runSimulcast checks the layers end to end: the supervisor shrinks the
// county's tile and must then receive a small layer, and a large one again
// once the tile is back to its size; meanwhile the county (watched small by
// the supervisor, large by the observer) sends more than one layer.
async function runSimulcast(sup, county, countyId, withObserver, run) {
  const out = {};
  const resize = (w, h) => sup.evaluate(([id, width, height]) => {
    const tile = document.querySelector(`.tile:not(.local):not(.screen)[data-participant-id="${CSS.escape(id)}"]`);
    tile.style.width = width;
    tile.style.height = height;
  }, [countyId, w, h]);

  // At its grid size (about 470x260 here) the tile needs at least the
  // 640x360 layer; wait for it, so that a drop below can be seen.
  // The county's own view goes into the failure message: whether it
  // sends the layer at all, and how much uplink its browser thinks it has.
  const withCounty = async (v) => ({ ...v, county: await sentLayers(county) });
  const base = await run('simulcast-baseline', (n) =>
    pollWithin(LAYER_SWITCH_MS, n, () => remoteVideo(sup, countyId).then(withCounty), (v) => v.frameHeight >= 360));
  out.baselineFrameHeight = base.frameHeight;

  await resize('160px', '90px');
  const small = await run('simulcast-small-tile', (n) =>
    pollWithin(LAYER_SWITCH_MS, n, () => remoteVideo(sup, countyId).then(withCounty), (v) => !!v.videoSize && v.videoSize.height <= 90 &&
      v.frameHeight > 0 && v.frameHeight <= 360 && v.frameHeight < base.frameHeight));
  out.smallTile = small.box;
  out.smallVideoSize = small.videoSize;
  out.smallFrameHeight = small.frameHeight;

  // Two samples a second apart: the layers whose byte counts grow are sent.
  const sending = await run('simulcast-layers-sent', (n) =>
    pollWithin(LAYER_SWITCH_MS, n, async () => {
      const a = await sentLayers(county);
      await sleep(1000);
      const b = await sentLayers(county);
      const growing = Object.keys(b.rids).filter((rid) => a.rids[rid] && b.rids[rid].bytesSent > a.rids[rid].bytesSent).sort();
      const encoded = Object.keys(b.rids).filter((rid) => b.rids[rid].framesEncoded > 0).sort();
      return { growing, encoded, rids: b.rids, layers: b.layers, availableOutgoingBitrate: b.availableOutgoingBitrate };
    }, (x) => (withObserver ? x.growing.length >= 2 : x.encoded.length >= 2)));
  out.ridsSent = withObserver ? sending.growing : sending.encoded;
  out.ridsEncoded = sending.encoded;
  out.countyLayers = sending.layers;

  await resize('', '');
  const large = await run('simulcast-large-tile', (n) =>
    pollWithin(LAYER_SWITCH_MS, n, () => remoteVideo(sup, countyId).then(withCounty), (v) => !!v.videoSize && v.videoSize.height > 90 &&
      v.frameHeight >= 360 && v.frameHeight > small.frameHeight));
  out.largeTile = large.box;
  out.largeVideoSize = large.videoSize;
  out.largeFrameHeight = large.frameHeight;
  return out;
}

function overlay(page) {
  return page.evaluate(() => ({
    shown: !document.getElementById('overlay').hidden,
    text: document.getElementById('overlay-text').textContent,
    state: window.__ducha ? window.__ducha.state() : null,
  }));
}

function outboundVideoBytes(page) {
  return page.evaluate(async () => {
    const pc = window.__ducha && window.__ducha.pc();
    if (!pc) return { state: 'none', bytes: 0 };
    let bytes = 0;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video') bytes += r.bytesSent || 0;
    });
    return { state: pc.connectionState, bytes };
  });
}

function stepper(result) {
  return async (name, fn) => {
    const t0 = Date.now();
    const v = await fn(name);
    result.steps.push({ name, ms: Date.now() - t0 });
    return v;
  };
}

// runObserver adds a receive-only participant: it must never open a device
// nor send, yet see the others, and the supervisor must see it listed.
async function runObserver(browser, opts, result, run, sup) {
  const obs = await openPage(browser, opts.observer, 'observer', result.pageErrors);
  const st = await run('observer-joined', (n) => poll(n, () => state(obs), (s) => s && s.phase === 'joined'));
  const video = await run('observer-decodes', (n) => waitDecoding(n, obs));
  const check = await obs.evaluate(() => ({
    gumCalls: window.__gumCalls,
    sending: window.__ducha.pc().getSenders().filter((x) => x.track).length,
    micShown: !document.getElementById('btn-mic').hidden,
  }));
  if (check.gumCalls !== 0 || check.sending !== 0 || check.micShown) {
    throw new StepError('observer-sends-nothing', JSON.stringify(check));
  }
  await run('supervisor-lists-observer', (n) =>
    poll(n, () => sup.evaluate(() => Array.from(document.querySelectorAll('.member .role-chip'), (e) => e.textContent)),
      (roles) => roles.includes('观察员')),
  );
  result.observer = { id: st.self.id, ...video, getUserMediaCalls: check.gumCalls };
}

async function runBusy(browser, opts, result) {
  const run = stepper(result);
  const page = await openPage(browser, opts.busy, 'busy', result.pageErrors, cameraBusy);
  await run('device-busy-message', (n) =>
    poll(n, () => overlay(page), (o) => o.shown && o.text === DEVICE_BUSY_ZH));
  await shot(page, 'device-busy');
  await page.click('[data-action="btn.joinWithoutMedia"]', { timeout: STEP_MS });
  const o = await run('joined-without-media', (n) =>
    poll(n, () => overlay(page), (x) => !x.shown && x.state.phase === 'joined' && x.state.media === 'declined'));
  result.busy = { phase: o.state.phase, media: o.state.media };

  // The language switch applies at once and survives a reload.
  const labels = () => page.evaluate(() => ({
    lang: document.documentElement.lang,
    leave: document.querySelector('#btn-leave .label').textContent,
    toggle: document.getElementById('btn-lang').textContent,
  }));
  await page.click('#btn-lang', { timeout: STEP_MS });
  await run('english-switch', (n) => poll(n, labels, (l) => l.lang === 'en' && l.leave === 'Leave' && l.toggle === '中文'));
  await page.reload({ waitUntil: 'domcontentloaded', timeout: STEP_MS });
  await run('english-remembered', (n) => poll(n, labels, (l) => l.lang === 'en' && l.leave === 'Leave'));
  await shot(page, 'english');
  await page.click('#btn-lang', { timeout: STEP_MS });
  await run('chinese-again', (n) => poll(n, labels, (l) => l.lang === 'zh-CN' && l.leave === '离开' && l.toggle === 'EN'));
}

async function runReplaced(browser, opts, result) {
  const run = stepper(result);
  const first = await openPage(browser, opts.replaced, 'first', result.pageErrors);
  await run('first-joined', (n) => poll(n, () => state(first), (s) => s && s.phase === 'joined'));
  const second = await openPage(browser, opts.replaced, 'second', result.pageErrors);
  await run('second-joined', (n) => poll(n, () => state(second), (s) => s && s.phase === 'joined'));
  const o = await run('first-told-replaced', (n) =>
    poll(n, () => overlay(first), (x) => x.shown && x.text === REPLACED_ZH && x.state.phase === 'error'));
  await shot(first, 'replaced');
  // The replaced window must stay put, not reconnect and take the call back.
  await sleep(3000);
  const [a, b] = await Promise.all([state(first), state(second)]);
  if (a.phase !== 'error' || b.phase !== 'joined') {
    throw new StepError('replaced-stays-replaced', `first ${a.phase}, second ${b.phase}`);
  }
  result.replaced = { message: o.text, errorCode: o.state.errorCode };
}

function bannerAndState(page) {
  return page.evaluate(() => ({ banner: document.getElementById('banner').textContent, state: window.__ducha.state() }));
}

async function runReconnect(browser, opts, result) {
  const run = stepper(result);
  const page = await openPage(browser, opts.reconnect, 'reconnect', result.pageErrors);
  await run('joined', (n) => poll(n, () => state(page), (s) => s && s.phase === 'joined' && s.media === 'open'));
  await run('sending', (n) => poll(n, () => outboundVideoBytes(page), (x) => x.state === 'connected' && x.bytes > 0));
  console.log(JSON.stringify({ event: 'ready' }));
  await run('drop-noticed', (n) =>
    poll(n, () => bannerAndState(page), (x) => x.state.phase === 'reconnecting' && x.banner === RECONNECTING_ZH));
  await shot(page, 'reconnecting');
  console.log(JSON.stringify({ event: 'dropped' }));
  const back = await run('rejoined', (n) =>
    poll(n, () => bannerAndState(page), (x) => x.state.phase === 'joined' && x.state.reconnects >= 1 && x.banner === RECONNECTED_ZH));
  const before = await outboundVideoBytes(page);
  await run('sending-again', (n) =>
    poll(n, () => outboundVideoBytes(page), (x) => x.state === 'connected' && x.bytes > before.bytes + 10000));
  result.reconnect = { reconnects: back.state.reconnects, selfId: back.state.self.id };
}

async function runInvalid(browser, opts, result) {
  const page = await openPage(browser, opts.invalid, 'invalid', result.pageErrors);
  const t0 = Date.now();
  const shown = await poll('invalid-link-message', () => page.evaluate(() => ({
    overlay: !document.getElementById('overlay').hidden,
    text: document.getElementById('overlay-text').textContent,
    state: window.__ducha ? window.__ducha.state() : null,
  })), (s) => s.overlay && s.text === '邀请链接无效或已过期，请联系督查人员重新获取' && s.state && s.state.phase === 'error');
  result.steps.push({ name: 'invalid-link-message', ms: Date.now() - t0 });
  result.invalid = { message: shown.text, errorCode: shown.state.errorCode };
  if (shown.text !== INVALID_LINK_ZH) throw new StepError('invalid-link-message', shown.text);
  await shot(page, 'invalid-link');
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.log(JSON.stringify({ ok: false, step: 'usage', reason: err.message }));
    process.exit(2);
  }
  const result = { ok: false, mode: opts.mode, steps: [], pageErrors: [] };
  const hardStop = setTimeout(() => {
    console.log(JSON.stringify({ ...result, step: 'total', reason: `gave up after ${TOTAL_MS} ms` }));
    process.exit(1);
  }, TOTAL_MS);
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, ignoreDefaultArgs: ['--headless'], args: ARGS, timeout: STEP_MS });
    const modes = { call: runCall, invalid: runInvalid, busy: runBusy, replaced: runReplaced, reconnect: runReconnect };
    await modes[opts.mode](browser, opts, result);
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
