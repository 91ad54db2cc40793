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
