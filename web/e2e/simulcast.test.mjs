// Pure-logic tests of the pages' simulcast parts (simulcast.js, videosize.js),
// run with `node --test` (no browser). The browser side is in peer.test.mjs.

import test from 'node:test';
import assert from 'node:assert/strict';
import { sendEncodings, applyLayers, displayedSize } from '../static/simulcast.js';
import { VideoSizes } from '../static/videosize.js';

test('the camera is sent as three layers, the microphone and a shared screen as one stream', () => {
  const cam = sendEncodings('camera');
  assert.deepEqual(cam, [
    { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
    { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
    { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1500000 },
  ]);
  // Each call gets its own objects: the browser and applyLayers modify them.
  cam[0].active = false;
  assert.equal(sendEncodings('camera')[0].active, undefined);
  assert.equal(sendEncodings('screen'), undefined);
  assert.equal(sendEncodings('microphone'), undefined);
  assert.equal(sendEncodings(undefined), undefined);
});

test('layers: listed rids are active, the others paused, and an empty list pauses all', () => {
  const enc = sendEncodings('camera').map((e) => ({ ...e, active: true }));
  const active = () => enc.map((e) => e.active);
  assert.equal(applyLayers(enc, ['q', 'h']), true);
  assert.deepEqual(active(), [true, true, false]);
  assert.equal(applyLayers(enc, ['h', 'q']), false, 'same set in another order: nothing to change');
  assert.equal(applyLayers(enc, []), true);
  assert.deepEqual(active(), [false, false, false]);
  assert.equal(applyLayers(enc, ['f']), true, 'a listed layer is resumed');
  assert.deepEqual(active(), [false, false, true]);
  assert.equal(applyLayers(enc, ['q', 'h', 'f', 'x']), true, 'an unknown rid is ignored');
  assert.deepEqual(active(), [true, true, true]);
  assert.equal(applyLayers(enc, null), true, 'no list at all counts as empty');
  assert.deepEqual(active(), [false, false, false]);

  // An ordinary stream (no rid) is never paused, whatever the list says.
  const single = [{ active: true }];
  assert.equal(applyLayers(single, []), false);
  assert.equal(single[0].active, true);
  assert.equal(applyLayers(undefined, ['q']), false);
});

test('displayedSize is the picture inside the tile, in device pixels', () => {
  // A 16:9 camera in a 4:3 box shows letterboxed.
  assert.deepEqual(displayedSize(640, 480, 1280, 720), { width: 640, height: 360 });
  // A 4:3 camera in a 16:9 box shows pillarboxed.
  assert.deepEqual(displayedSize(640, 360, 640, 480), { width: 480, height: 360 });
  assert.deepEqual(displayedSize(160, 90, 1280, 720, 2), { width: 320, height: 180 });
  assert.deepEqual(displayedSize(100.4, 56.6, 0, 0, 1.5), { width: 151, height: 85 }, 'no frames yet: the box');
  assert.deepEqual(displayedSize(0, 0, 1280, 720), { width: 0, height: 0 });
  assert.deepEqual(displayedSize(20000, 20000, 0, 0, 1), { width: 16384, height: 16384 }, 'the server accepts up to 16384');
});

// fakeClock drives VideoSizes' timers without sleeping.
function fakeClock() {
  let t = 0;
  let seq = 0;
  const timers = new Map();
  return {
    now: () => t,
    setTimer: (fn, ms) => {
      const id = ++seq;
      timers.set(id, { at: t + ms, fn });
      return id;
    },
    clearTimer: (id) => timers.delete(id),
    pending: () => timers.size,
    advance(ms) {
      const end = t + ms;
      for (;;) {
        let next = null;
        for (const [id, x] of timers) if (x.at <= end && (!next || x.at < next[1].at)) next = [id, x];
        if (!next) break;
        timers.delete(next[0]);
        t = next[1].at;
        next[1].fn();
      }
      t = end;
    },
  };
}

function harness(opts = {}) {
  const clock = fakeClock();
  const sent = [];
  let online = true;
  const vs = new VideoSizes({
    send: (track, width, height) => {
      if (!online) return false;
      sent.push({ at: clock.now(), msg: `${track} ${width}x${height}` });
      return true;
    },
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    ...opts,
  });
  return {
    vs,
    clock,
    setOnline: (v) => {
      online = v;
    },
    msgs: () => sent.map((s) => s.msg),
    sent,
  };
}

const sz = (width, height) => ({ width, height });

test('video-size: a size is sent once it has held still for the debounce time', () => {
  const h = harness();
  h.vs.update([['T1', sz(640, 360)]]);
  assert.deepEqual(h.msgs(), [], 'nothing at once');
  h.clock.advance(100);
  h.vs.update([['T1', sz(600, 338)]]); // the grid is still moving
  h.clock.advance(200);
  assert.deepEqual(h.msgs(), [], 'the second change restarted the wait');
  h.clock.advance(60);
  assert.deepEqual(h.msgs(), ['T1 600x338'], 'only the settled size');
  assert.equal(h.sent[0].at, 350);
  h.clock.advance(5000);
  assert.equal(h.msgs().length, 1, 'nothing more while nothing changes');
  assert.equal(h.clock.pending(), 0, 'no timer left running');
  assert.deepEqual(h.vs.lastSent(), { T1: { width: 600, height: 338 } });
});

test('video-size: only changes are sent', () => {
  const h = harness();
  h.vs.update([['T1', sz(640, 360)], ['T2', sz(320, 180)]]);
  h.clock.advance(300);
  assert.deepEqual(h.msgs().sort(), ['T1 640x360', 'T2 320x180']);
  // Rendering again with the same sizes sends nothing.
  h.vs.update([['T1', sz(640, 360)], ['T2', sz(320, 180)]]);
  h.clock.advance(1000);
  assert.equal(h.msgs().length, 2);
  // A change that is undone before it settles sends nothing either.
  h.vs.update([['T1', sz(100, 56)], ['T2', sz(320, 180)]]);
  h.clock.advance(100);
  h.vs.update([['T1', sz(640, 360)], ['T2', sz(320, 180)]]);
  h.clock.advance(1000);
  assert.equal(h.msgs().length, 2);
  // A real change is sent, for that track only.
  h.vs.update([['T1', sz(160, 90)], ['T2', sz(320, 180)]]);
  h.clock.advance(300);
  assert.deepEqual(h.msgs().slice(2), ['T1 160x90']);
});

test('video-size: a hidden page shows nothing, and the real sizes return when it is visible', () => {
  const h = harness();
  h.vs.update([['T1', sz(640, 360)], ['T2', sz(0, 0)]]);
  h.clock.advance(300);
  assert.deepEqual(h.msgs().sort(), ['T1 640x360', 'T2 0x0'], 'a collapsed tile is 0x0');
  h.vs.setVisible(false);
  h.clock.advance(300);
  assert.deepEqual(h.msgs().slice(2), ['T1 0x0'], 'T2 was already 0x0');
  // While hidden, tile changes are remembered but not sent.
  h.vs.update([['T1', sz(800, 450)], ['T2', sz(0, 0)]]);
  h.clock.advance(1000);
  assert.equal(h.msgs().length, 3);
  h.vs.setVisible(true);
  h.clock.advance(300);
  assert.deepEqual(h.msgs().slice(3), ['T1 800x450']);
});

test('video-size: everything is told again after a reconnect, and a track again when resubscribed', () => {
  const h = harness();
  h.vs.update([['T1', sz(640, 360)], ['T2', sz(320, 180)]]);
  h.clock.advance(300);
  h.vs.reset();
  h.clock.advance(300);
  assert.deepEqual(h.msgs().slice(2).sort(), ['T1 640x360', 'T2 320x180']);
  h.vs.resubscribed('T2');
  h.clock.advance(300);
  assert.deepEqual(h.msgs().slice(4), ['T2 320x180']);
  // A tile that goes away is forgotten; when it is back, it is told again.
  h.vs.update([['T1', sz(640, 360)]]);
  h.clock.advance(300);
  h.vs.update([['T1', sz(640, 360)], ['T2', sz(320, 180)]]);
  h.clock.advance(300);
  assert.deepEqual(h.msgs().slice(5), ['T2 320x180']);
});

test('video-size: a size that found no connection is sent once there is one', () => {
  const h = harness();
  h.setOnline(false);
  h.vs.update([['T1', sz(640, 360)]]);
  h.clock.advance(5000);
  assert.deepEqual(h.msgs(), []);
  h.setOnline(true);
  h.clock.advance(1500);
  assert.deepEqual(h.msgs(), ['T1 640x360']);
});

test('video-size: never more than a few messages a second, however many tiles change', () => {
  const h = harness();
  const many = (w) => Array.from({ length: 30 }, (_, i) => [`T${i}`, sz(w, Math.round((w * 9) / 16))]);
  h.vs.update(many(640));
  h.clock.advance(20000);
  assert.equal(h.msgs().length, 30, 'all sent in the end');
  // Resize every tile repeatedly, as a window drag does, for ten seconds.
  for (let i = 0; i < 100; i++) {
    h.vs.update(many(300 + i));
    h.clock.advance(100);
  }
  h.clock.advance(20000);
  const last = new Map(h.msgs().map((m) => m.split(' ')));
  assert.equal(last.get('T0'), '399x224', 'the last size is what the server knows');
  // Any one-second window holds at most the burst plus a second's rate.
  const times = h.sent.map((s) => s.at);
  for (const t0 of times) {
    const n = times.filter((t) => t >= t0 && t < t0 + 1000).length;
    assert.ok(n <= 12, `${n} messages within a second from t=${t0}`);
  }
  assert.ok(h.msgs().length <= 30 + 30 + 12 * 10, `${h.msgs().length} messages for 100 resizes`);
});

test('video-size: close stops everything', () => {
  const h = harness();
  h.vs.update([['T1', sz(640, 360)]]);
  h.vs.close();
  h.clock.advance(5000);
  h.vs.update([['T1', sz(320, 180)]]);
  h.clock.advance(5000);
  assert.deepEqual(h.msgs(), []);
  assert.equal(h.clock.pending(), 0);
});
