// Pure-logic tests of the replay page's modules, run with `node --test`
// (no browser): the timeline clock, the sync decisions, the dictionaries.
// The browser test is replay.mjs, driven by replay_test.go.

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TimelineClock } from '../static/replay/clock.js';
import {
  correction, inSpans, segmentAt, nextSegment, localSeconds, ready, formatOffset, tilesOf, SEEK_THRESHOLD_S, MAX_RATE_NUDGE,
} from '../static/replay/sync.js';
import { MESSAGES, createI18n } from '../static/replay/i18n.js';
import { dayStart } from '../static/replay/api.js';
import { queryOf, integrityKey } from '../static/replay/search.js';
import { badgeState, whereText } from '../static/replay/integrity.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'static', 'replay');

function fakeNow(start = 1000) {
  let v = start;
  const now = () => v;
  now.advance = (ms) => { v += ms; };
  return now;
}

test('the clock runs at its rate, holds, seeks and stops at the end', () => {
  const now = fakeNow();
  const c = new TimelineClock(10000, now);
  assert.equal(c.position(), 0);
  now.advance(500);
  assert.equal(c.position(), 0, 'paused clocks do not move');
  c.play();
  now.advance(1000);
  assert.equal(c.position(), 1000);
  c.setRate(2);
  now.advance(1000);
  assert.equal(c.position(), 3000);
  c.hold(true);
  now.advance(5000);
  assert.equal(c.position(), 3000, 'a held clock waits for the tiles');
  assert.equal(c.moving, false);
  c.hold(false);
  now.advance(500);
  assert.equal(c.position(), 4000);
  c.seek(9500);
  now.advance(1000);
  assert.equal(c.position(), 10000, 'never past the end');
  assert.ok(c.ended());
  c.pause();
  c.play();
  assert.equal(c.position(), 0, 'play at the end starts over');
  c.seek(-50);
  assert.equal(c.position(), 0);
});

test('segments and presence are looked up on the timeline', () => {
  const segs = [
    { index: 0, startMs: 0, endMs: 4000, state: 'archived' },
    { index: 3, startMs: 4000, endMs: 8000, state: 'lost' },
    { index: 5, startMs: 8000, endMs: 12000, state: 'archived' },
  ];
  assert.equal(segmentAt(segs, 0).index, 0);
  assert.equal(segmentAt(segs, 3999).index, 0);
  assert.equal(segmentAt(segs, 4000), null, 'a lost segment has nothing to play');
  assert.equal(segmentAt(segs, 11999).index, 5);
  assert.equal(segmentAt(segs, 12000, 12000).index, 5, 'the last frame stays up at the very end');
  assert.equal(segmentAt(segs, 12000, 20000), null);
  assert.equal(localSeconds(segs[2], 9500), 1.5);
  assert.equal(nextSegment(segs, segs[0]).index, 5, 'the lost one is skipped');
  assert.equal(nextSegment(segs, segs[2]), null);
  const spans = [{ startMs: 0, endMs: 1000 }, { startMs: 5000, endMs: 6000 }];
  assert.ok(inSpans(spans, 500));
  assert.ok(!inSpans(spans, 1000));
  assert.ok(inSpans(spans, 5999));
  assert.ok(!inSpans(spans, 3000));
  assert.ok(!inSpans(undefined, 0));
});

test('drift is corrected by speed when small, by seeking when large', () => {
  assert.deepEqual(correction(10.0, 10.01, 1), { rate: 1 }, 'inside the deadband');
  const ahead = correction(10.04, 10.0, 1);
  assert.ok(ahead.rate < 1 && ahead.rate >= 1 - MAX_RATE_NUDGE, `ahead: ${JSON.stringify(ahead)}`);
  const behind = correction(10.0, 10.06, 2);
  assert.ok(behind.rate > 2 && behind.rate <= 2 * (1 + MAX_RATE_NUDGE), `behind: ${JSON.stringify(behind)}`);
  assert.ok(correction(10.0, 10.03, 1).rate < correction(10.0, 10.07, 1).rate, 'further off, faster');
  assert.ok(SEEK_THRESHOLD_S < 0.1, 'a tile is put back before it is 100 ms off');
  assert.deepEqual(correction(3, 3 + SEEK_THRESHOLD_S + 0.01, 1), { seek: 3 + SEEK_THRESHOLD_S + 0.01 });
  assert.deepEqual(correction(9.9, 12, 1, 10), { seek: 9.95 }, 'never seek past the file');
  assert.ok(correction(5, 5.12, 2).rate > 2, 'at 2x, 120 ms is still corrected by speed');
  assert.ok('seek' in correction(5, 5.12, 1), 'at 1x, 120 ms is a seek');
  assert.deepEqual(correction(9.97, 10.02, 1, 10), { rate: 1 }, 'at the end of the file: nothing to fix');
});

test('a media element is ready when it can play on', () => {
  assert.ok(ready({ readyState: 4, seeking: false }));
  assert.ok(!ready({ readyState: 4, seeking: true }));
  assert.ok(!ready({ readyState: 2, currentTime: 1, duration: 10 }));
  assert.ok(ready({ readyState: 2, currentTime: 9.9, duration: 10 }), 'no future data at the end of a file');
  assert.ok(ready({ readyState: 1, ended: true }));
  assert.ok(!ready({ readyState: 4, error: {} }));
  assert.ok(!ready(null));
});

test('tiles: one per recorded source, camera first; none for people without media', () => {
  const tiles = tilesOf({ participants: [
    { id: 'a', tracks: [{ source: 'screen', segments: [] }, { source: 'camera', segments: [] }], presence: [] },
    { id: 'b', tracks: [], presence: [{ startMs: 0, endMs: 1 }] },
  ] });
  assert.deepEqual(tiles.map((t) => t.key), ['a/camera', 'a/screen']);
});

test('offsets, dates and search parameters', () => {
  assert.equal(formatOffset(0), '0:00');
  assert.equal(formatOffset(65400), '1:05');
  assert.equal(formatOffset(3723000), '1:02:03');
  assert.match(dayStart('2026-05-01'), /^2026-05-01T00:00:00[+-]\d\d:\d\d$/);
  assert.match(dayStart('2026-05-31', 1), /^2026-06-01T00:00:00/);
  assert.equal(dayStart('yesterday'), '');
  const q = queryOf({ from: '2026-05-01', to: '2026-05-01', case: ' XF-1 ', unit: '', q: '工资' });
  assert.match(q.from, /^2026-05-01T00/);
  assert.match(q.to, /^2026-05-02T00/, 'the to date includes its whole day');
  assert.equal(q.case, 'XF-1');
  assert.equal(q.unit, undefined);
  assert.equal(q.q, '工资');
  assert.equal(integrityKey({}), 'int.unchecked');
  assert.equal(integrityKey({ verification: { result: 'altered' } }), 'int.altered');
});

test('the badge is green only for intact, and names the bad segment', () => {
  const t = createI18n().t;
  assert.equal(badgeState({ result: 'intact' }).tone, 'ok');
  assert.equal(badgeState({ result: 'altered' }).tone, 'bad');
  assert.equal(badgeState({ result: 'could_not_check' }).tone, 'warn');
  assert.equal(badgeState(null).tone, 'pending');
  const where = whereText({ firstBad: { index: 4, seq: 1, source: 'camera', participantName: '小店区信访局',
    key: 'sessions/S/segments/P2/camera/000001-x.webm' } }, t);
  assert.match(where, /小店区信访局/);
  assert.match(where, /第 2 段/);
  assert.match(where, /000001-x\.webm/);
  assert.match(whereText({ firstBad: { index: -1, key: 'sessions/S/manifest.json' } }, t), /录像清单/);
});

test('both languages carry the same keys, and every key the page uses exists', () => {
  const zk = Object.keys(MESSAGES.zh).sort();
  const ek = Object.keys(MESSAGES.en).sort();
  assert.deepEqual(zk, ek);
  const used = new Set();
  for (const f of readdirSync(DIR)) {
    if (f === 'i18n.js' || !/\.js$/.test(f)) continue;
    const src = readFileSync(join(DIR, f), 'utf8');
    for (const m of src.matchAll(/['"`]((?:app|login|role|search|col|int|pl|ev|err)\.[A-Za-z_]+)['"`]/g)) used.add(m[1]);
  }
  assert.ok(used.size > 50, `found only ${used.size} used keys: the scan is broken`);
  assert.deepEqual([...used].filter((k) => !(k in MESSAGES.zh)), []);
  const zh = createI18n();
  assert.equal(zh.lang(), 'zh', 'Chinese by default');
  assert.equal(zh.t('int.segmentsOk', { ok: 3, n: 4 }), '3 / 4 一致');
  const store = new Map([['ducha.lang', 'en']]);
  const en = createI18n({ storage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) } });
  assert.equal(en.t('pl.play'), 'Play');
  en.set('zh');
  assert.equal(store.get('ducha.lang'), 'zh');
});
