// Loads a recorded segment in Chromium's <video>, plays it, seeks to the
// middle and reports what the element saw, as one JSON line on stdout.
// Usage: node play.js PAGE_URL   (the page has <video id=v>)
const { runInPage } = require('./page.js');

runInPage(async () => {
  const v = document.getElementById('v');
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (cond, ms, what) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (v.error) throw new Error(`media error ${v.error.code}: ${v.error.message}`);
      if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
      await sleep(50);
    }
  };
  const out = {};
  try {
    await until(() => v.readyState >= 1, 15000, 'metadata');
    out.duration = v.duration;
    out.videoWidth = v.videoWidth;
    out.videoHeight = v.videoHeight;
    await v.play();
    await until(() => v.currentTime > 0.5, 15000, 'playback');
    out.playedTo = v.currentTime;
    // Seek to the middle and count frames presented after it.
    const target = v.duration / 2;
    let frames = 0;
    let firstMediaTime = -1;
    const onFrame = (_now, meta) => {
      if (firstMediaTime < 0) firstMediaTime = meta.mediaTime;
      frames++;
      v.requestVideoFrameCallback(onFrame);
    };
    const seeked = new Promise((r) => v.addEventListener('seeked', r, { once: true }));
    v.currentTime = target;
    await seeked;
    out.seekTarget = target;
    out.afterSeek = v.currentTime;
    v.requestVideoFrameCallback(onFrame);
    await sleep(1500);
    out.afterPlay = v.currentTime;
    out.framesAfterSeek = frames;
    out.firstFrameAfterSeek = firstMediaTime;
    out.videoWidthAfterSeek = v.videoWidth;
    const q = v.getVideoPlaybackQuality();
    out.decodedFrames = q.totalVideoFrames;
  } catch (e) {
    out.error = String(e.message || e);
  }
  if (v.error) out.mediaError = `${v.error.code}: ${v.error.message}`;
  return out;
});
