// The Peer module in real Chromium, without a ducha server: the pages'
// negotiation rules checked against a recorded Pion offer.
// Run with `node --test peer.test.mjs` (needs /usr/bin/chromium).

import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join, normalize } from 'node:path';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const STATIC = join(here, '..', 'static');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// A recorded first offer of a Pion server that publishes one audio track:
// transport-cc at id 4 and no mid extension, unlike Chromium's own numbering.
const PION_AUDIO_OFFER = (await readFile(join(here, 'testdata', 'pion-offer-audio.sdp'), 'utf8'))
  .split(/\r?\n/).filter(Boolean).join('\r\n') + '\r\n';

function serveStatic() {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end('<!doctype html><title>peer test</title>');
    }
    const rel = normalize(path.replace(/^\/static\//, ''));
    if (!path.startsWith('/static/') || rel.startsWith('..')) {
      res.writeHead(404);
      return res.end();
    }
    try {
      const body = await readFile(join(STATIC, rel));
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

let server;
let browser;
let base;

test.before(async () => {
  server = await serveStatic();
  base = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    ignoreDefaultArgs: ['--headless'],
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream', '--allow-loopback-in-peer-connection'],
    timeout: 60000,
  });
});

test.after(async () => {
  if (browser) await browser.close();
  if (server) await new Promise((r) => server.close(r));
});

async function newPage() {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  return page;
}

// Glare: our offer (camera + microphone) crosses the server's offer that
// carries only an audio track. The server's offer must be answered and our
// video then offered again, with a BUNDLE-consistent SDP that Chromium takes.
test('glare with a partial server offer is answered and our offer follows', { timeout: 90000 }, async () => {
  const page = await newPage();
  const out = await page.evaluate(async (serverSdp) => {
    const { Peer } = await import('/static/peer.js');
    const sent = [];
    const logs = [];
    const peer = new Peer({
      signal: (type, data) => sent.push({ type, data }),
      onTrack: () => {},
      onFailed: (reason) => sent.push({ type: 'failed', data: reason }),
      log: (...a) => logs.push(a.map(String).join(' ')),
    });
    const until = async (fn, ms = 20000) => {
      const end = Date.now() + ms;
      while (!fn()) {
        if (Date.now() > end) throw new Error(`timeout; sent ${JSON.stringify(sent.map((m) => m.type))}; log ${logs.join(' | ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    const [audio] = stream.getAudioTracks();
    const [video] = stream.getVideoTracks();
    peer.addTrack(audio, stream, 'microphone');
    peer.addTrack(video, stream, 'camera');
    await until(() => sent.some((m) => m.type === 'offer'));
    const first = sent.find((m) => m.type === 'offer');
    // A candidate that arrives with the server's offer must wait for it.
    peer.handleCandidate({ candidate: 'candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 });
    await peer.handleOffer(serverSdp);
    await until(() => sent.filter((m) => m.type === 'offer').length >= 2 || sent.some((m) => m.type === 'failed'));
    const offers = sent.filter((m) => m.type === 'offer');
    const result = {
      order: sent.filter((m) => m.type !== 'candidate').map((m) => m.type),
      firstSources: first.data.sources,
      secondSources: offers[1] ? offers[1].data.sources : null,
      secondSdp: offers[1] ? offers[1].data.sdp : '',
      state: peer.pc.signalingState,
      remoteCandidateAdded: (peer.pc.remoteDescription?.sdp || '').includes('127.0.0.1 50000'),
      ids: { audio: audio.id, video: video.id },
      logs,
    };
    peer.close();
    for (const t of stream.getTracks()) t.stop();
    return result;
  }, PION_AUDIO_OFFER);
  await page.close();

  assert.deepEqual(out.order.slice(0, 3), ['offer', 'answer', 'offer'], `messages: ${out.order}; log: ${out.logs.join(' | ')}`);
  assert.ok(!out.order.includes('failed'), `negotiation gave up: ${out.logs.join(' | ')}`);
  assert.deepEqual(out.firstSources, { [out.ids.audio]: 'microphone', [out.ids.video]: 'camera' });
  assert.deepEqual(out.secondSources, { [out.ids.audio]: 'microphone', [out.ids.video]: 'camera' });
  assert.equal(out.state, 'have-local-offer');
  assert.ok(out.remoteCandidateAdded, 'the early candidate was not applied after the offer');
  const seen = new Map();
  for (const [, id, uri] of out.secondSdp.matchAll(/^a=extmap:(\d+)(?:\/\w+)? (\S+)/gm)) {
    assert.ok(!seen.has(id) || seen.get(id) === uri, `id ${id} is ${seen.get(id)} and ${uri}`);
    seen.set(id, uri);
  }
  assert.match(out.secondSdp, /m=video/);
});

// An answer that crosses a rollback must be dropped, not applied.
test('a stale answer is ignored', { timeout: 60000 }, async () => {
  const page = await newPage();
  const out = await page.evaluate(async () => {
    const { Peer } = await import('/static/peer.js');
    const logs = [];
    const peer = new Peer({ signal: () => {}, onTrack: () => {}, onFailed: () => logs.push('failed'), log: (m) => logs.push(m) });
    await peer.handleAnswer('v=0\r\n');
    const state = peer.pc.signalingState;
    peer.close();
    return { state, logs };
  });
  await page.close();
  assert.equal(out.state, 'stable');
  assert.ok(out.logs.some((l) => l.includes('answer without an outstanding offer')), out.logs.join(' | '));
});

// A server offer that cannot be applied leaves the two sides disagreeing:
// the peer must report it so the page re-joins instead of sitting silent.
test('an offer that cannot be applied is reported as a failure', { timeout: 60000 }, async () => {
  const page = await newPage();
  const out = await page.evaluate(async () => {
    const { Peer } = await import('/static/peer.js');
    const failures = [];
    const sent = [];
    const peer = new Peer({ signal: (t) => sent.push(t), onTrack: () => {}, onFailed: (r) => failures.push(r), log: () => {} });
    await peer.handleOffer('v=0\r\nthis is not sdp\r\n');
    peer.close();
    return { failures, sent };
  });
  await page.close();
  assert.deepEqual(out.failures, ['negotiation_failed']);
  assert.ok(!out.sent.includes('answer'), `answered a broken offer: ${out.sent}`);
});

const MID_URI = 'urn:ietf:params:rtp-hdrext:sdes:mid';
const RID_URI = 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id';

// sections splits an SDP into its m-sections, each {mid, lines}.
function sections(sdp) {
  return sdp.split(/\r?\n(?=m=)/).slice(1).map((s) => {
    const lines = s.split(/\r?\n/).filter(Boolean);
    const mid = (lines.find((l) => l.startsWith('a=mid:')) || '').slice(6);
    return { mid, lines };
  });
}

// The camera goes out as three simulcast layers (q, h, f); the microphone
// and a shared screen as one stream each. Then the SDP repair of sdp.js must
// keep the simulcast lines and the mid/rid header extensions the server needs
// to tell the layers apart, in an offer Chromium still takes.
test('the camera is offered as simulcast, the microphone and a screen as one stream', { timeout: 90000 }, async () => {
  const page = await newPage();
  const out = await page.evaluate(async ([midUri, ridUri]) => {
    const { Peer } = await import('/static/peer.js');
    const { fixExtmapIds, extmapIds } = await import('/static/sdp.js');
    const sent = [];
    const logs = [];
    const peer = new Peer({
      signal: (type, data) => sent.push({ type, data }),
      onTrack: () => {},
      onFailed: (reason) => sent.push({ type: 'failed', data: reason }),
      log: (...a) => logs.push(a.map(String).join(' ')),
    });
    const until = async (fn, ms = 20000) => {
      const end = Date.now() + ms;
      while (!fn()) {
        if (Date.now() > end) throw new Error(`timeout; sent ${JSON.stringify(sent.map((m) => m.type))}; log ${logs.join(' | ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
    const [audio] = stream.getAudioTracks();
    const [video] = stream.getVideoTracks();
    const canvas = document.createElement('canvas');
    canvas.width = 1280;
    canvas.height = 720;
    canvas.getContext('2d').fillRect(0, 0, 100, 100);
    const [screen] = canvas.captureStream(5).getVideoTracks();
    peer.addTrack(audio, stream, 'microphone');
    peer.addTrack(video, stream, 'camera');
    peer.addTrack(screen, new MediaStream([screen]), 'screen');
    await until(() => sent.some((m) => m.type === 'offer'));
    const offer = sent.find((m) => m.type === 'offer');
    const encodings = (track) =>
      peer.pc.getSenders().find((s) => s.track === track).getParameters().encodings
        .map((e) => ({ rid: e.rid || '', scale: e.scaleResolutionDownBy, maxBitrate: e.maxBitrate, active: e.active }));
    const mid = (track) => peer.pc.getTransceivers().find((t) => t.sender.track === track).mid;

    // The repair, with a server that numbered mid and rid the other way
    // round, applied to a fresh connection's offer as peer.js does.
    const ids = extmapIds(offer.data.sdp);
    const server = new Map([[midUri, ids.get(ridUri)], [ridUri, ids.get(midUri)]]);
    const pc2 = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    pc2.addTransceiver(audio, { direction: 'sendonly', streams: [stream] });
    pc2.addTransceiver(video, { direction: 'sendonly', streams: [stream], sendEncodings: [{ rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' }] });
    const fresh = await pc2.createOffer();
    const fixed = fixExtmapIds(fresh.sdp, server);
    let accepted = '';
    try {
      await pc2.setLocalDescription({ type: 'offer', sdp: fixed.sdp });
      accepted = 'yes';
    } catch (err) {
      accepted = err.message;
    }
    const result = {
      sdp: offer.data.sdp,
      sources: offer.data.sources,
      ids: { audio: audio.id, video: video.id, screen: screen.id },
      mids: { audio: mid(audio), video: mid(video), screen: mid(screen) },
      encodings: { audio: encodings(audio), video: encodings(video), screen: encodings(screen) },
      fresh: fresh.sdp,
      fixed: fixed.sdp,
      fixedChanged: fixed.changed,
      accepted,
      applied: pc2.localDescription ? pc2.localDescription.sdp : '',
      server: Object.fromEntries(server),
      logs,
    };
    pc2.close();
    peer.close();
    for (const t of [...stream.getTracks(), screen]) t.stop();
    return result;
  }, [MID_URI, RID_URI]);
  await page.close();

  assert.deepEqual(out.sources, { [out.ids.audio]: 'microphone', [out.ids.video]: 'camera', [out.ids.screen]: 'screen' });
  assert.deepEqual(out.encodings.video.map((e) => [e.rid, e.scale, e.maxBitrate, e.active]), [
    ['q', 4, 150000, true], ['h', 2, 500000, true], ['f', 1, 1500000, true]]);
  assert.deepEqual(out.encodings.audio.map((e) => e.rid), ['']);
  assert.deepEqual(out.encodings.screen.map((e) => e.rid), [''], 'a shared screen is one stream');

  const byMid = new Map(sections(out.sdp).map((s) => [s.mid, s.lines]));
  const cam = byMid.get(out.mids.video);
  assert.ok(cam.includes('a=simulcast:send q;h;f'), cam.join('\n'));
  for (const rid of ['q', 'h', 'f']) assert.ok(cam.includes(`a=rid:${rid} send`), `a=rid:${rid} send missing`);
  for (const uri of [MID_URI, RID_URI]) assert.ok(cam.some((l) => l.startsWith('a=extmap:') && l.endsWith(` ${uri}`)), `${uri} missing`);
  for (const m of [out.mids.audio, out.mids.screen]) {
    assert.ok(!byMid.get(m).some((l) => l.startsWith('a=simulcast') || l.startsWith('a=rid')), `mid ${m} is simulcast`);
  }

  // sdp.js touched only the extension ids: every other line is as Chromium
  // wrote it, every extension is still there, and mid/rid took the server's ids.
  assert.equal(out.fixedChanged, true);
  const notExtmap = (sdp) => sdp.split(/\r?\n/).filter((l) => !l.startsWith('a=extmap:'));
  assert.deepEqual(notExtmap(out.fixed), notExtmap(out.fresh));
  const uris = (sdp) => sections(sdp).map((s) => s.lines.filter((l) => l.startsWith('a=extmap:')).map((l) => l.split(' ')[1]).sort());
  assert.deepEqual(uris(out.fixed), uris(out.fresh));
  assert.equal(out.accepted, 'yes', 'Chromium refused the repaired simulcast offer');
  const applied = sections(out.applied)[1].lines;
  assert.ok(applied.includes('a=simulcast:send q;h;f'), applied.join('\n'));
  assert.ok(applied.includes(`a=extmap:${out.server[MID_URI]} ${MID_URI}`), applied.join('\n'));
  assert.ok(applied.includes(`a=extmap:${out.server[RID_URI]} ${RID_URI}`), applied.join('\n'));
});

// `layers` pauses the camera layers nobody receives and resumes listed
// ones; an empty list pauses all; ordinary streams are left alone.
test('layers messages switch the camera encodings on and off', { timeout: 90000 }, async () => {
  const page = await newPage();
  const out = await page.evaluate(async () => {
    const { Peer } = await import('/static/peer.js');
    const sent = [];
    const logs = [];
    const peer = new Peer({
      signal: (type, data) => sent.push({ type, data }),
      onTrack: () => {},
      onFailed: (reason) => sent.push({ type: 'failed', data: reason }),
      log: (...a) => logs.push(a.map(String).join(' ')),
    });
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
    const [audio] = stream.getAudioTracks();
    const [video] = stream.getVideoTracks();
    peer.addTrack(audio, stream, 'microphone');
    peer.addTrack(video, stream, 'camera');
    const end = Date.now() + 20000;
    while (!sent.some((m) => m.type === 'offer') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const tr = (track) => peer.pc.getTransceivers().find((t) => t.sender.track === track);
    const active = (track) => tr(track).sender.getParameters().encodings.map((e) => `${e.rid || '-'}:${e.active}`).join(' ');
    const steps = [];
    const step = async (mid, list) => {
      await peer.setLayers(mid, list);
      steps.push(active(video));
    };
    const camMid = tr(video).mid;
    const micMid = tr(audio).mid;
    await step(camMid, ['q']);
    await step(camMid, []);
    await step(camMid, ['h', 'f']);
    await step(camMid, ['h', 'f']);
    await step('no-such-mid', []);
    await peer.setLayers(micMid, []);
    const layersAfter = peer.layers();
    const result = { steps, mic: active(audio), layers: layersAfter, camMid, logs, sent: sent.map((m) => m.type) };
    peer.close();
    for (const t of stream.getTracks()) t.stop();
    return result;
  });
  await page.close();
  assert.ok(out.camMid, `no mid for the camera; sent ${out.sent}; log ${out.logs.join(' | ')}`);
  assert.deepEqual(out.steps, [
    'q:true h:false f:false',
    'q:false h:false f:false',
    'q:false h:true f:true',
    'q:false h:true f:true',
    'q:false h:true f:true',
  ], out.logs.join(' | '));
  assert.equal(out.mic, '-:true', 'the microphone must never be paused');
  assert.deepEqual(out.layers, { [out.camMid]: { q: false, h: true, f: true } });
  assert.equal(out.logs.filter((l) => l.includes('layers of mid')).length, 3, `each change logged once: ${out.logs.join(' | ')}`);
  assert.ok(out.logs.some((l) => l.includes('unknown media section')), out.logs.join(' | '));
  assert.ok(!out.logs.some((l) => l.includes('not applied') || l.includes('not set')), out.logs.join(' | '));
});
