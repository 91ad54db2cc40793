// Where each tile should be on the timeline, and how to get it there. Pure
// functions over plain data, so node tests cover them without a browser.

// Beyond this a tile is moved by seeking (everyone waits for it); below it
// by adjusting its speed. Below the 100 ms the replay promises, so a tile
// that falls behind (a busy decoder, a slow disk) is put back before it
// is visibly out of step.
export const SEEK_THRESHOLD_S = 0.08;
// Within this a tile counts as in sync and plays at the clock's rate.
export const DEADBAND_S = 0.02;
// Speed changes used to pull a tile back in line, by how far off it is. A
// few fixed steps rather than a continuous rate: every change of a media
// element's playbackRate makes the browser re-time its pipeline, so the
// rate changes only when the step does. The browser keeps the pitch.
export const NUDGE_STEPS = [[0.05, 0.05], [Infinity, 0.1]];
export const MAX_RATE_NUDGE = 0.1;
// Near the end of a file a player may have no future data; treat it as ready.
export const END_SLACK_S = 0.3;

// inSpans reports whether ms lies in one of the [startMs, endMs) spans.
export function inSpans(spans, ms) {
  return (spans || []).some((s) => ms >= s.startMs && ms < s.endMs);
}

// segmentAt returns the playable segment covering ms, or null. Segments of
// one track do not overlap; the last one also covers its own end so the
// final frame stays up when the timeline stops there.
export function segmentAt(segments, ms, durationMs = Infinity) {
  const list = (segments || []).filter((s) => s.state === 'archived');
  for (const s of list) {
    if (ms >= s.startMs && ms < s.endMs) return s;
  }
  const last = list[list.length - 1];
  if (last && ms >= last.endMs && last.endMs >= durationMs && ms <= durationMs) return last;
  return null;
}

// nextSegment is the playable segment that follows seg, or null.
export function nextSegment(segments, seg) {
  let best = null;
  for (const s of segments || []) {
    if (s.state !== 'archived' || s.index === seg.index || s.startMs < seg.startMs) continue;
    if (!best || s.startMs < best.startMs) best = s;
  }
  return best;
}

// localSeconds is where in its file a segment is at timeline position ms.
export function localSeconds(segment, ms) {
  return Math.max(0, (ms - segment.startMs) / 1000);
}

// correction decides what to do about a tile that is at currentTime while
// it should be at want (both in seconds of its file), playing at rate.
// It returns {seek: seconds} to jump, or {rate} to play at.
export function correction(currentTime, want, rate, fileDuration = Infinity) {
  // Past the end of the file (a segment's last frame is shorter than the
  // time the manifest gives it): nothing to correct.
  if (want >= fileDuration - 0.05 && currentTime >= fileDuration - 0.05) return { rate };
  const drift = currentTime - want;
  const off = Math.abs(drift);
  // Faster playback drifts faster between ticks and costs more to decode:
  // the seek threshold grows with the rate, so 2x plays on instead of
  // stopping for a seek every few frames.
  if (off > SEEK_THRESHOLD_S * Math.max(1, rate)) return { seek: Math.min(want, Math.max(0, fileDuration - 0.05)) };
  if (off <= DEADBAND_S) return { rate };
  const nudge = NUDGE_STEPS.find(([upTo]) => off <= upTo)[1];
  return { rate: rate * (drift > 0 ? 1 - nudge : 1 + nudge) };
}

// ready reports whether a media element can play on from where it is.
export function ready(v) {
  if (!v || v.seeking || v.error) return false;
  if (v.readyState >= 3) return true;
  if (v.ended) return true;
  const d = Number.isFinite(v.duration) ? v.duration : Infinity;
  return v.readyState >= 2 && d - v.currentTime < END_SLACK_S;
}

// formatOffset renders a timeline position as m:ss or h:mm:ss.
export function formatOffset(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

// tilesOf makes one tile per recorded source of each participant, camera
// first; a participant without any recorded source gets none (they are in
// the attendance list).
export function tilesOf(detail) {
  const tiles = [];
  for (const p of detail.participants || []) {
    const tracks = [...(p.tracks || [])].sort((a, b) => (a.source === 'camera' ? -1 : b.source === 'camera' ? 1 : 0));
    for (const tr of tracks) {
      tiles.push({
        key: `${p.id}/${tr.source}`,
        participant: p,
        source: tr.source,
        segments: tr.segments || [],
        presence: p.presence || [],
      });
    }
  }
  return tiles;
}
