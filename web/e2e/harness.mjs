// Shared pieces of the browser scripts (call, story, replay, large,
// joinbench): how they start Chromium, step errors the Go tests report by
// step name, argument parsing, and polling a page until it shows what a
// step expects.

// The system Chromium (what `make test` installs) and how every script
// starts it: headless, fake camera and microphone allowed without a prompt,
// loopback ICE candidates (the server runs on 127.0.0.1).
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

export class StepError extends Error {
  constructor(step, reason) {
    super(`${step}: ${reason}`);
    this.step = step;
    this.reason = reason;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// readArgs fills opts (whose keys are the accepted --flags, with defaults)
// from argv; an unknown or incomplete flag is an error.
export function readArgs(argv, opts) {
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in opts) || i + 1 >= argv.length) throw new Error(`unknown or incomplete argument ${argv[i]}`);
    opts[k] = argv[++i];
  }
  return opts;
}

// pollWithin evaluates probe every interval ms until check(value) is true,
// for at most ms; the last value goes into the failure reason so a red run
// says what the page looked like.
export async function pollWithin(ms, step, probe, check, { describe = (v) => JSON.stringify(v), interval = 250 } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (check(last)) return last;
    } catch (err) {
      last = `probe error: ${err.message}`;
    }
    if (Date.now() > deadline) throw new StepError(step, `timed out after ${ms} ms; last seen: ${describe(last)}`);
    await sleep(interval);
  }
}
