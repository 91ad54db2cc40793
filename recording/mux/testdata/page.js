// What play.js and listen.js share: launch headless Chromium, open the page
// named on the command line, run fn in it (page.evaluate) and print what it
// returns as one JSON line on stdout; a failure prints {"error": ...} and
// exits 1. playwright-core is found through NODE_PATH (set by the Go test).
const { chromium } = require('playwright-core');

const args = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

exports.runInPage = (fn) => {
  (async () => {
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      ignoreDefaultArgs: ['--headless'],
      args,
    });
    try {
      const page = await browser.newPage();
      await page.goto(process.argv[2]);
      console.log(JSON.stringify(await page.evaluate(fn)));
    } finally {
      await browser.close();
    }
  })().catch((e) => {
    console.log(JSON.stringify({ error: String(e.message || e) }));
    process.exit(1);
  });
};
