// Chromium flags shared by the e2e browser scripts (browser_client.mjs, whep_browser.mjs):
// headless in a container, no background traffic (the tests' network namespace has no
// internet), media may autoplay without a user gesture.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--autoplay-policy=no-user-gesture-required',
];
