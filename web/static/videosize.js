// Telling the server how large each received video is shown (`video-size`,
// PROTOCOL.md "Simulcast"), so that it sends the smallest layer that still
// looks sharp there, and nothing of a video nobody can see.
//
// Tiles change size on every frame while a window is dragged, so a size is
// sent only once it has held still for a moment, only when it differs from
// what the server was last told, and within a small budget of messages: the
// server cuts off a client past 50 messages a second, and candidates and
// pings count against the same limit.

const DEBOUNCE_MS = 250;
const RATE_PER_SEC = 4; // steady budget of video-size messages
const BURST = 8; // enough for every tile at once after a reconnect or a tab switch
const RETRY_MS = 1000; // after a send that found no connection

const key = (s) => `${s.width}x${s.height}`;

export class VideoSizes {
  // send(trackId, width, height) sends one video-size and returns whether it
  // went out; false (no connection yet) keeps the size pending. Time and
  // timers are injectable so tests need not sleep.
  constructor({
    send,
    now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (t) => clearTimeout(t),
    debounceMs = DEBOUNCE_MS,
    ratePerSec = RATE_PER_SEC,
    burst = BURST,
  }) {
    this.send = send;
    this.now = now;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.debounceMs = debounceMs;
    this.ratePerSec = ratePerSec;
    this.burst = burst;
    this.shown = new Map(); // server track id -> {width, height} on screen
    this.since = new Map(); // server track id -> when what we want for it last changed
    this.sent = new Map(); // server track id -> "WxH" the server was told
    this.visible = true;
    this.tokens = burst;
    this.refilledAt = now();
    this.timer = null;
    this.timerAt = Infinity;
    this.closed = false;
  }

  // update takes every remote video on screen now, as [trackId, {width,
  // height}] pairs (device pixels; 0x0 for a hidden tile). A track no longer
  // listed has no tile any more: it is forgotten, so a tile that comes back
  // is reported afresh.
  update(sizes) {
    const next = new Map(sizes);
    const now = this.now();
    for (const track of [...this.shown.keys()]) {
      if (next.has(track)) continue;
      this.shown.delete(track);
      this.since.delete(track);
      this.sent.delete(track);
    }
    for (const [track, s] of next) {
      const v = { width: Math.max(0, Math.round(s.width) || 0), height: Math.max(0, Math.round(s.height) || 0) };
      const prev = this.shown.get(track);
      if (prev && prev.width === v.width && prev.height === v.height) continue;
      this.shown.set(track, v);
      this.since.set(track, now);
    }
    this.flush();
  }

  // setVisible follows the page's visibility: a hidden page (another tab,
  // a minimised window) shows nothing, so every video is reported as 0x0.
  setVisible(visible) {
    if (visible === this.visible) return;
    this.visible = visible;
    this.touchAll();
  }

  // reset is for a new connection: the server knows none of our sizes.
  reset() {
    this.sent.clear();
    this.touchAll();
  }

  // resubscribed says a track was (re)subscribed: its size is sent again
  // even if the server was told the same before.
  resubscribed(track) {
    this.sent.delete(track);
    if (this.shown.has(track)) this.since.set(track, this.now());
    this.flush();
  }

  // wanted is what the server should be told for a track now.
  wanted(track) {
    const s = this.shown.get(track);
    return this.visible && s ? s : { width: 0, height: 0 };
  }

  // lastSent is what the server was told, track -> {width, height}.
  lastSent() {
    const out = {};
    for (const [track, k] of this.sent) {
      const [width, height] = k.split('x').map(Number);
      out[track] = { width, height };
    }
    return out;
  }

  close() {
    this.clearTimer(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    this.closed = true;
  }

  touchAll() {
    const now = this.now();
    for (const track of this.shown.keys()) this.since.set(track, now);
    this.flush();
  }

  refill(now) {
    const earned = ((now - this.refilledAt) / 1000) * this.ratePerSec;
    this.tokens = Math.min(this.burst, this.tokens + earned);
    this.refilledAt = now;
  }

  // flush sends what has settled, oldest change first, as far as the budget
  // allows, and sets a timer for the rest.
  flush() {
    if (this.closed) return;
    const now = this.now();
    this.refill(now);
    let next = Infinity;
    const due = [];
    for (const track of this.shown.keys()) {
      const want = this.wanted(track);
      if (this.sent.get(track) === key(want)) continue;
      const at = (this.since.get(track) ?? now) + this.debounceMs;
      if (at > now) next = Math.min(next, at);
      else due.push({ at, track, want });
    }
    due.sort((a, b) => a.at - b.at);
    for (const d of due) {
      if (this.tokens < 1) {
        next = Math.min(next, now + Math.ceil(((1 - this.tokens) / this.ratePerSec) * 1000));
        break;
      }
      if (!this.send(d.track, d.want.width, d.want.height)) {
        next = Math.min(next, now + RETRY_MS);
        break;
      }
      this.tokens -= 1;
      this.sent.set(d.track, key(d.want));
    }
    this.arm(next, now);
  }

  arm(at, now) {
    if (at === this.timerAt) return;
    this.clearTimer(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (at === Infinity) return;
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.flush();
    }, Math.max(0, at - now));
  }
}
