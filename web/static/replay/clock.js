// The replay's one timeline clock: milliseconds of the session's server
// time since the start of the recording. Every tile follows it; it does not
// follow them, except that it holds still while a tile it needs is not
// ready (buffering, seeking, loading the next segment), so a slow tile
// delays everyone instead of drifting away.

export class TimelineClock {
  // now returns milliseconds (performance.now in the page, a fake in tests).
  constructor(durationMs, now = () => performance.now()) {
    this.duration = Math.max(0, durationMs);
    this.now = now;
    this.base = 0; // position when the clock last started moving
    this.anchor = 0; // now() at that moment
    this.running = false; // the user pressed play
    this.held = false; // waiting for tiles
    this.rate = 1;
  }

  get moving() {
    return this.running && !this.held;
  }

  position() {
    if (!this.moving) return this.base;
    const p = this.base + (this.now() - this.anchor) * this.rate;
    return Math.min(Math.max(p, 0), this.duration);
  }

  // freeze fixes the current position as the new base.
  freeze() {
    this.base = this.position();
    this.anchor = this.now();
  }

  play() {
    if (this.running) return;
    if (this.base >= this.duration) this.base = 0;
    this.freeze();
    this.running = true;
    this.anchor = this.now();
  }

  pause() {
    this.freeze();
    this.running = false;
  }

  seek(ms) {
    this.base = Math.min(Math.max(Number(ms) || 0, 0), this.duration);
    this.anchor = this.now();
  }

  setRate(r) {
    this.freeze();
    this.rate = r;
  }

  hold(on) {
    if (on === this.held) return;
    this.freeze();
    this.held = on;
  }

  ended() {
    return this.position() >= this.duration;
  }
}
