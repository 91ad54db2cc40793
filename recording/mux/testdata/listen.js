// Plays a recorded segment in Chromium's <video> from start to end with its
// sound on, and reports how loud the element's audio output was at each
// media time, as one JSON line on stdout: what a listener hears while
// watching, so a test can tell whether audio stays in step with video.
// Usage: node listen.js PAGE_URL   (the page has <video id=v>)
const { runInPage } = require('./page.js');

runInPage(async () => {
  const v = document.getElementById('v');
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const out = { levels: [] };
  try {
    const end = Date.now() + 15000;
    while (v.readyState < 1) {
      if (v.error) throw new Error(`media error ${v.error.code}: ${v.error.message}`);
      if (Date.now() > end) throw new Error('timeout waiting for metadata');
      await sleep(50);
    }
    out.duration = v.duration;
    // The element's output goes through an analyser: a muted element
    // would feed it silence.
    v.muted = false;
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024; // about 20 ms at 48 kHz
    ctx.createMediaElementSource(v).connect(analyser);
    analyser.connect(ctx.destination);
    await ctx.resume();
    const buf = new Float32Array(analyser.fftSize);
    const ended = new Promise((r) => v.addEventListener('ended', r, { once: true }));
    await v.play();
    const limit = Date.now() + 1000 * (v.duration * 2 + 10);
    let done = false;
    ended.then(() => { done = true; });
    while (!done) {
      if (v.error) throw new Error(`media error ${v.error.code}: ${v.error.message}`);
      if (Date.now() > limit) throw new Error('timeout waiting for the end');
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      out.levels.push([v.currentTime, Math.sqrt(sum / buf.length)]);
      await sleep(20);
    }
    out.ended = v.ended;
    out.endedAt = v.currentTime;
  } catch (e) {
    out.error = String(e.message || e);
  }
  if (v.error) out.mediaError = `${v.error.code}: ${v.error.message}`;
  return out;
});
