// How long a browser takes from opening an invitation link to its first
// decoded frame of the supervisor's video, split into the steps between.
// A measurement tool, not a test: docs/benchmarks.md quotes its output.
//
//   node joinbench.mjs --supervisor URL --joiners FILE [--joins N] [--settle-ms MS] [--parallel N]
//
// FILE holds one invitation link per line (county links publish their camera
// and microphone like a county office; observer links only receive, which
// also keeps Chromium's host addresses hidden behind mDNS names, so the
// server learns the page's address from its checks, as behind a NAT). The
// supervisor page opens first and publishes its fake camera; then each
// joiner link is opened in turn, N joins in all (links reused in turn), each
// closed once it has decoded a frame. Each join prints one JSON line with the
// milliseconds since navigation of each step; the last line sums them up.

import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { CHROMIUM, CHROMIUM_ARGS as ARGS, readArgs, sleep } from './harness.mjs';


// Runs in every page before its own scripts: stamps the signaling messages
// and the connection's states with performance.now() (ms since navigation),
// and the first decoded video frame, polled from getStats every 10 ms.
function instrument() {
  const ev = [];
  const mark = (name) => ev.push([name, Math.round(performance.now())]);
  window.__joinbench = ev;
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...a) {
      super(...a);
      mark('ws-new');
      this.addEventListener('open', () => mark('ws-open'));
      this.addEventListener('message', (e) => {
        try {
          mark(`rx-${JSON.parse(e.data).type}`);
        } catch {}
      });
    }
    send(d) {
      try {
        mark(`tx-${JSON.parse(d).type}`);
      } catch {}
      return super.send(d);
    }
  };
  const PC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends PC {
    constructor(...a) {
      super(...a);
      mark('pc-new');
      this.addEventListener('iceconnectionstatechange', () => mark(`ice-${this.iceConnectionState}`));
      this.addEventListener('connectionstatechange', () => mark(`pc-${this.connectionState}`));
      this.addEventListener('icecandidate', (e) => {
        if (e.candidate && e.candidate.candidate) mark(`cand-${e.candidate.address && e.candidate.address.endsWith('.local') ? 'mdns' : e.candidate.type}`);
      });
      this.addEventListener('track', (e) => mark(`track-${e.track.kind}`));
      const timer = setInterval(async () => {
        if (this.connectionState === 'closed') return clearInterval(timer);
        const stats = await this.getStats();
        stats.forEach((r) => {
          if (r.type === 'inbound-rtp' && r.kind === 'video' && r.framesDecoded > 0 && !ev.some(([n]) => n === 'first-frame')) {
            mark('first-frame');
            clearInterval(timer);
          }
        });
      }, 10);
    }
  };
}

// first returns the time of the first event called name, or null.
const first = (ev, name) => {
  const e = ev.find(([n]) => n === name);
  return e ? e[1] : null;
};

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function main() {
  const opts = readArgs(process.argv.slice(2), { supervisor: '', joiners: '', joins: '20', 'settle-ms': '1500', parallel: '1' });
  if (!opts.joiners) throw new Error('need --joiners FILE');
  const links = readFileSync(opts.joiners, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  // Without --supervisor the room is already live (a load tool's S2 room,
  // its supervisor a simulated one).
  const sup = opts.supervisor ? await (await browser.newContext()).newPage() : null;
  if (sup) await sup.goto(opts.supervisor);
  // The supervisor publishes before anyone joins.
  for (let i = 0; sup && i < 300; i++) {
    const sending = await sup.evaluate(async () => {
      const pc = window.__ducha && window.__ducha.pc();
      if (!pc) return false;
      let frames = 0;
      (await pc.getStats()).forEach((r) => {
        if (r.type === 'outbound-rtp' && r.kind === 'video') frames += r.framesEncoded || 0;
      });
      return frames > 30;
    });
    if (sending) break;
    await sleep(100);
  }
  // One join: open the link in a fresh context, wait for its first frame
  // (30 s at most), report its stamps, close it.
  const join = async (i) => {
    const ctx = await browser.newContext();
    await ctx.addInitScript(instrument);
    const page = await ctx.newPage();
    await page.goto(links[i % links.length]);
    let ev = [];
    for (let k = 0; k < 1500; k++) {
      ev = await page.evaluate(() => window.__joinbench || []);
      if (first(ev, 'first-frame') !== null) break;
      await sleep(20);
    }
    const row = { join: i, link: i % links.length };
    for (const name of ['ws-open', 'rx-joined', 'rx-offer', 'tx-answer', 'cand-host', 'cand-mdns', 'ice-checking', 'ice-connected', 'pc-connected', 'track-video', 'first-frame']) {
      row[name] = first(ev, name);
    }
    return { row, ctx };
  };
  // --parallel N opens N links at once (a wave, as when a session starts),
  // each with its own link: the same link twice would replace the first.
  const wave = Math.max(1, Math.min(Number(opts.parallel), links.length));
  const rows = [];
  for (let i = 0; i < Number(opts.joins); i += wave) {
    const done = await Promise.all(Array.from({ length: Math.min(wave, Number(opts.joins) - i) }, (_, k) => join(i + k)));
    for (const { row, ctx } of done) {
      console.log(JSON.stringify(row));
      rows.push(row);
      await ctx.close();
    }
    await sleep(Number(opts['settle-ms']));
  }
  const sent = sup && await sup.evaluate(async () => {
    const out = [];
    (await window.__ducha.pc().getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video') {
        out.push({ rid: r.rid, fps: r.framesPerSecond, frames: r.framesEncoded, keyframes: r.keyFramesEncoded, pli: r.pliCount, fir: r.firCount, limit: r.qualityLimitationReason, w: r.frameWidth, h: r.frameHeight });
      }
    });
    return out;
  });
  if (sent) console.error(JSON.stringify({ supervisorSent: sent }));
  await browser.close();
  const summary = { joins: rows.length, failed: rows.filter((r) => r['first-frame'] === null).length };
  const spans = {
    'navigation to joined': (r) => r['rx-joined'],
    'joined to offer': (r) => r['rx-offer'] - r['rx-joined'],
    'offer to answer': (r) => r['tx-answer'] - r['rx-offer'],
    'answer to connected': (r) => r['pc-connected'] - r['tx-answer'],
    'connected to first frame': (r) => r['first-frame'] - r['pc-connected'],
    'joined to first frame': (r) => r['first-frame'] - r['rx-joined'],
  };
  for (const [name, f] of Object.entries(spans)) {
    const v = rows.filter((r) => r['first-frame'] !== null).map(f).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    summary[name] = { p50: quantile(v, 0.5), p95: quantile(v, 0.95), max: v.length ? v[v.length - 1] : null };
  }
  console.log(JSON.stringify(summary));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
