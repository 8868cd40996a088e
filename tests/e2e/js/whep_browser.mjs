#!/usr/bin/env node
// Plain-browser WHEP viewer for the Switchyard e2e tests (no LiveKit SDK in the page).
//
// Launches Debian's headless chromium through playwright-core (like browser_client.mjs), opens the
// blank file:// page.html and, inside the page, does what a minimal WHEP player does:
//   pc = new RTCPeerConnection({iceServers: []});
//   pc.addTransceiver('video', {direction: 'recvonly'}); pc.addTransceiver('audio', {direction: 'recvonly'});
//   setLocalDescription(createOffer()), wait for ICE gathering to complete (at most 2 s),
//   fetch(url, {method: 'POST', headers: {'Content-Type': 'application/sdp',
//                                         Authorization: 'Bearer <token>'}, body: offer}),
//   setRemoteDescription(answer); received video is rendered into a <video> element;
//   then getStats() every --stats-ms.
// The fetch is cross-origin (file:// page -> http://10.200.0.1:7880), so the server's CORS
// answers matter exactly as for a real web player: the preflight must allow the Authorization
// and Content-Type headers, and the 201 must expose Location for the player to DELETE it.
//
// Protocol with the parent process (the Python test):
//   stdout: one JSON object per line, always with "event" and "t" (ms since start):
//     {"event":"launched","browser":"156..."}
//     {"event":"posted","status":201,"location":..|null,"etag":..|null,"contentType":..,"body":<only if not 201>}
//     {"event":"answered","iceConnectionState":..}
//     {"event":"track","kind":"video"|"audio"}
//     {"event":"stats","video":{framesDecoded,framesReceived,packetsReceived,bytesReceived,frameWidth,
//                               frameHeight,codec},"audio":{packetsReceived,bytesReceived,codec},
//                      "iceConnectionState":..,"connectionState":..}   (every --stats-ms)
//     {"event":"ack","id":..,"ok":true|false,"error":..,"result":..}  (reply to a stdin command)
//     {"event":"error","stage":..,"message":..} / {"event":"exit","code":..}
//   stdin: one JSON command per line:
//     {"cmd":"delete","id":..}  -> fetch(location, {method: 'DELETE', Authorization}); ack result {status}
//                                  (fails if the browser could not read Location)
//     {"cmd":"stats","id":..}   -> an immediate "stats" event, then ack
//     {"cmd":"quit"}            -> pc.close(), close the browser, exit 0 (stdin EOF does the same)
//   stderr: human-readable log (page console, chromium noise).
//
// Usage: node whep_browser.mjs --url http://10.200.0.1:7880/whep/v1?participant=web --token <jwt>
//          [--stats-ms 500] [--chromium /usr/bin/chromium]
//        (an empty --token sends no Authorization header: for ?access_token= URLs)
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium_args.mjs';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PAGE = path.join(HERE, 'page.html');
const T0 = Date.now();

function parseArgs(argv) {
  const o = {
    url: '',
    token: undefined,
    statsMs: 500,
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === '--url') o.url = next();
    else if (a === '--token') o.token = next();
    else if (a === '--stats-ms') o.statsMs = Number(next());
    else if (a === '--chromium') o.chromium = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.url || o.token === undefined) throw new Error('--url and --token are required');
  return o;
}

function emit(obj) {
  process.stdout.write(JSON.stringify({ ...obj, t: Date.now() - T0 }) + '\n');
}

function log(...args) {
  process.stderr.write(`[whep_browser +${Date.now() - T0}ms] ${args.join(' ')}\n`);
}

// ---------------------------------------------------------------------------------------------
// Runs inside the page. Must be self-contained (it is serialized by page.evaluate).
async function pageMain(opts) {
  const emit = (obj) => window.__syEmit(obj);
  const auth = opts.token ? { Authorization: `Bearer ${opts.token}` } : {};

  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.ontrack = (ev) => {
    emit({ event: 'track', kind: ev.track.kind });
    if (ev.track.kind === 'video') {
      const el = document.createElement('video');
      el.muted = true;
      el.autoplay = true;
      el.playsInline = true;
      el.srcObject = new MediaStream([ev.track]);
      document.body.appendChild(el);
    }
  };
  pc.oniceconnectionstatechange = () => console.log(`iceConnectionState ${pc.iceConnectionState}`);

  const state = { pc, location: null };
  async function collectStats() {
    const out = {
      video: { framesDecoded: 0, framesReceived: 0, packetsReceived: 0, bytesReceived: 0 },
      audio: { packetsReceived: 0, bytesReceived: 0 },
      iceConnectionState: pc.iceConnectionState,
      connectionState: pc.connectionState,
    };
    const report = await pc.getStats();
    const codecs = new Map();
    report.forEach((v) => { if (v.type === 'codec') codecs.set(v.id, v.mimeType); });
    report.forEach((v) => {
      if (v.type !== 'inbound-rtp') return;
      const k = v.kind === 'video' ? 'video' : 'audio';
      const s = out[k];
      s.packetsReceived += v.packetsReceived ?? 0;
      s.bytesReceived += v.bytesReceived ?? 0;
      if (v.codecId && codecs.has(v.codecId)) s.codec = codecs.get(v.codecId);
      if (k === 'video') {
        s.framesDecoded += v.framesDecoded ?? 0;
        s.framesReceived += v.framesReceived ?? 0;
        if (v.frameWidth) { s.frameWidth = v.frameWidth; s.frameHeight = v.frameHeight; }
        if (v.decoderImplementation) s.decoder = v.decoderImplementation;
      }
    });
    return out;
  }

  async function handle(cmd) {
    switch (cmd.cmd) {
      case 'delete': {
        if (!state.location) {
          throw new Error('no Location to DELETE (missing, or not readable: Access-Control-Expose-Headers must list Location)');
        }
        const r = await fetch(state.location, { method: 'DELETE', headers: { ...auth } });
        return { status: r.status, url: state.location };
      }
      case 'stats':
        emit({ event: 'stats', ...(await collectStats()) });
        return {};
      case 'quit':
        pc.close();
        return {};
      default:
        throw new Error(`unknown command ${cmd.cmd}`);
    }
  }
  window.__whep = { state, handle };

  await pc.setLocalDescription(await pc.createOffer());
  // Non-trickle like most WHEP players: wait for gathering (capped; an ICE-lite server does not
  // need our candidates anyway, it learns our address from our connectivity checks).
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timer = setTimeout(resolve, 2000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    });
  });

  let resp;
  try {
    resp = await fetch(opts.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', ...auth },
      body: pc.localDescription.sdp,
    });
  } catch (e) {
    emit({ event: 'error', stage: 'post', message: `${e?.message ?? e} (a CORS/preflight refusal looks like this: ` +
      'the OPTIONS answer must allow Authorization and Content-Type)' });
    return false;
  }
  const body = await resp.text();
  const location = resp.headers.get('Location');
  state.location = location ? new URL(location, opts.url).href : null;
  emit({ event: 'posted', status: resp.status, location: state.location, etag: resp.headers.get('ETag'),
    contentType: resp.headers.get('Content-Type'), body: resp.status === 201 ? undefined : body });
  if (resp.status !== 201) {
    emit({ event: 'error', stage: 'post', message: `POST answered ${resp.status}: ${body}` });
    return false;
  }
  try {
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
  } catch (e) {
    emit({ event: 'error', stage: 'answer', message: `setRemoteDescription: ${e?.message ?? e}`, sdp: body });
    return false;
  }
  emit({ event: 'answered', iceConnectionState: pc.iceConnectionState });

  if (opts.statsMs > 0) {
    const tick = async () => {
      if (pc.connectionState === 'closed') return;
      try { emit({ event: 'stats', ...(await collectStats()) }); } catch (e) { /* next tick */ }
      setTimeout(tick, opts.statsMs);
    };
    setTimeout(tick, opts.statsMs);
  }
  return true;
}
// ---------------------------------------------------------------------------------------------

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv);
  } catch (e) {
    emit({ event: 'error', stage: 'args', message: e.message });
    process.exit(2);
  }

  const browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  emit({ event: 'launched', browser: browser.version() });

  let closing = false;
  let page = null;
  const shutdown = async (code) => {
    if (closing) return;
    closing = true;
    try {
      await Promise.race([
        page?.evaluate(() => window.__whep?.state?.pc?.close()).catch(() => {}),
        new Promise((r) => setTimeout(r, 3000)),
      ]);
    } catch (e) { /* ignore */ }
    await browser.close().catch(() => {});
    emit({ event: 'exit', code });
    process.exit(code);
  };

  const context = await browser.newContext();
  page = await context.newPage();
  page.on('console', (m) => log(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log(`pageerror: ${e?.stack ?? e}`));
  page.on('crash', () => { emit({ event: 'error', stage: 'page', message: 'page crashed' }); shutdown(3); });
  page.on('requestfailed', (r) => log(`requestfailed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  await page.exposeFunction('__syEmit', (obj) => emit(obj));
  await page.goto(pathToFileURL(PAGE).href);

  const rl = createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    line = line.trim();
    if (!line) return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      emit({ event: 'ack', id: null, ok: false, error: `bad json: ${e.message}` });
      return;
    }
    if (cmd.cmd === 'quit') {
      emit({ event: 'ack', id: cmd.id ?? null, ok: true });
      await shutdown(0);
      return;
    }
    try {
      const result = await page.evaluate((c) => window.__whep.handle(c), cmd);
      const ack = { event: 'ack', id: cmd.id ?? null, ok: true };
      if (result && Object.keys(result).length) ack.result = result;
      emit(ack);
    } catch (e) {
      emit({ event: 'ack', id: cmd.id ?? null, ok: false, error: String(e?.message ?? e) });
    }
  });
  rl.on('close', () => shutdown(0));
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));

  const ok = await page.evaluate(pageMain, { url: opts.url, token: opts.token, statsMs: opts.statsMs });
  if (!ok) await shutdown(1);
}

main().catch((e) => {
  emit({ event: 'error', stage: 'main', message: String(e?.stack ?? e) });
  process.exit(1);
});
