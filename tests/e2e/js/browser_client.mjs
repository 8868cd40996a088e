#!/usr/bin/env node
// Real-browser LiveKit participant for the Switchyard e2e tests.
//
// Launches Debian's headless chromium through playwright-core, loads livekit-client's UMD build
// into a blank file:// page, connects `new LivekitClient.Room(...)` to the given URL/token and
// (by default) publishes the fake camera + microphone with enableCameraAndMicrophone().
//
// Protocol with the parent process (the Python test):
//   stdout: one JSON object per line, always with "event" and "t" (ms since start):
//     {"event":"launched","browser":"148.0..."}
//     {"event":"connected","identity":..,"room":..,"roomSid":..,"remotes":[..]}
//     {"event":"published","tracks":[{"trackSid","kind","source","simulcasted"}]}
//     {"event":"participantConnected"|"participantDisconnected","identity":..}
//     {"event":"trackSubscribed","identity":..,"trackSid":..,"kind":..,"source":..}
//     {"event":"data","from":..,"participantIdentity":..,"payload":<utf8>,"kind":"reliable"|"lossy","topic":..}
//     {"event":"stats","remote":[{identity,trackSid,kind,source,framesDecoded,framesReceived,
//                                 packetsReceived,bytesReceived,frameWidth,frameHeight}],
//                      "local":[{trackSid,kind,source,framesEncoded,packetsSent,bytesSent,
//                                layers:[{rid,ssrc,packetsSent,framesEncoded,frameWidth,frameHeight,active}]}]}
//                      (every --stats-ms)
//     {"event":"ack","id":..,"ok":true|false,"error":..,"result":..}  (reply to a stdin command)
//     {"event":"disconnected","reason":..} / {"event":"error","stage":..,"message":..} / {"event":"exit","code":..}
//   stdin: one JSON command per line:
//     {"cmd":"publishData","id":..,"payload":"text","reliable":true,"topic":"t","destinationIdentities":["x"]}
//     {"cmd":"stats","id":..}      -> an immediate "stats" event, then ack
//     {"cmd":"setCamera","id":..,"enabled":true}      -> localParticipant.setCameraEnabled(enabled)
//     {"cmd":"setMicrophone","id":..,"enabled":true}  -> localParticipant.setMicrophoneEnabled(enabled)
//     {"cmd":"unpublish","id":..,"source":"microphone"|"camera"} -> localParticipant.unpublishTrack(track)
//        (these three: ack carries "result":{"tracks":[..]}, the local publications afterwards, in
//         the format of the "published" event; a "published" event with "cmd" is emitted too)
//     {"cmd":"iceStats","id":..}   -> ack "result":{"publisher":{..},"subscriber":{..}}: each
//        connection's selected candidate pair (state, local/remote candidateType, protocol,
//        relayProtocol, address, port) and its configured iceServers / iceTransportPolicy
//     {"cmd":"quit"}               -> room.disconnect(), close the browser, exit 0 (stdin EOF does the same)
//   stderr: human-readable log (page console, chromium noise).
//
// Usage: node browser_client.mjs --url ws://10.200.0.1:7880 --token <jwt>
//          [--no-publish] [--single-pc true|false] [--stats-ms 1000] [--log-level info]
//        (LK_URL / LK_TOKEN environment variables work instead of --url / --token.)
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium_args.mjs';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const UMD = path.join(HERE, 'node_modules', 'livekit-client', 'dist', 'livekit-client.umd.js');
const PAGE = path.join(HERE, 'page.html');
const T0 = Date.now();

function parseArgs(argv) {
  const o = {
    url: process.env.LK_URL || '',
    token: process.env.LK_TOKEN || '',
    publish: true,
    singlePc: undefined, // undefined = livekit-client default (true: /rtc/v1 first, falls back to /rtc)
    statsMs: 1000,
    logLevel: process.env.LK_LOG_LEVEL || 'info',
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
    else if (a === '--no-publish') o.publish = false;
    else if (a === '--single-pc') o.singlePc = next() === 'true';
    else if (a === '--stats-ms') o.statsMs = Number(next());
    else if (a === '--log-level') o.logLevel = next();
    else if (a === '--chromium') o.chromium = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.url || !o.token) throw new Error('--url and --token (or LK_URL / LK_TOKEN) are required');
  return o;
}

function emit(obj) {
  process.stdout.write(JSON.stringify({ ...obj, t: Date.now() - T0 }) + '\n');
}

function log(...args) {
  process.stderr.write(`[browser_client +${Date.now() - T0}ms] ${args.join(' ')}\n`);
}

// ---------------------------------------------------------------------------------------------
// Runs inside the page. Must be self-contained (it is serialized by page.evaluate).
async function pageMain(opts) {
  const LK = window.LivekitClient;
  const emit = (obj) => window.__syEmit(obj);
  LK.setLogLevel(opts.logLevel);

  const roomOpts = {}; // library defaults (simulcast on, adaptiveStream/dynacast off)
  if (opts.singlePc !== undefined && opts.singlePc !== null) roomOpts.singlePeerConnection = opts.singlePc;
  const room = new LK.Room(roomOpts);
  const kindName = (k) => (k === LK.DataPacket_Kind.RELIABLE ? 'reliable' : 'lossy');

  room
    .on(LK.RoomEvent.ParticipantConnected, (p) =>
      emit({ event: 'participantConnected', identity: p.identity }))
    .on(LK.RoomEvent.ParticipantDisconnected, (p) =>
      emit({ event: 'participantDisconnected', identity: p.identity }))
    .on(LK.RoomEvent.TrackSubscribed, (track, pub, p) => {
      emit({ event: 'trackSubscribed', identity: p.identity, trackSid: pub.trackSid, kind: track.kind, source: pub.source });
      if (track.kind === LK.Track.Kind.Video) {
        // Render it, like an app would (some browsers only decode tracks with a sink).
        const el = track.attach();
        el.muted = true;
        el.autoplay = true;
        el.playsInline = true;
        document.body.appendChild(el);
      }
    })
    .on(LK.RoomEvent.TrackSubscriptionFailed, (trackSid, p, reason) =>
      emit({ event: 'trackSubscriptionFailed', identity: p?.identity, trackSid, reason: String(reason) }))
    .on(LK.RoomEvent.DataReceived, (payload, participant, kind, topic, _enc, participantIdentity) =>
      emit({
        event: 'data',
        from: participant?.identity ?? null,
        participantIdentity: participantIdentity ?? null,
        payload: new TextDecoder().decode(payload),
        kind: kindName(kind),
        topic: topic ?? null,
      }))
    .on(LK.RoomEvent.Disconnected, (reason) => emit({ event: 'disconnected', reason: reason ?? null }))
    .on(LK.RoomEvent.Reconnecting, () => emit({ event: 'reconnecting' }))
    .on(LK.RoomEvent.Reconnected, () => emit({ event: 'reconnected' }));

  async function collectStats() {
    const remote = [];
    for (const p of room.remoteParticipants.values()) {
      for (const pub of p.trackPublications.values()) {
        const track = pub.track;
        if (!track) continue;
        const report = await track.getRTCStatsReport(); // RemoteTrack: receiver.getStats()
        const s = { identity: p.identity, trackSid: pub.trackSid, kind: pub.kind, source: pub.source,
          framesDecoded: 0, framesReceived: 0, packetsReceived: 0, bytesReceived: 0 };
        report?.forEach((v) => {
          if (v.type !== 'inbound-rtp') return;
          s.framesDecoded += v.framesDecoded ?? 0;
          s.framesReceived += v.framesReceived ?? 0;
          s.packetsReceived += v.packetsReceived ?? 0;
          s.bytesReceived += v.bytesReceived ?? 0;
          if (v.frameWidth) { s.frameWidth = v.frameWidth; s.frameHeight = v.frameHeight; }
          if (v.decoderImplementation) s.decoder = v.decoderImplementation;
        });
        remote.push(s);
      }
    }
    const local = [];
    for (const pub of room.localParticipant.trackPublications.values()) {
      const track = pub.track;
      if (!track) continue;
      const report = await track.getRTCStatsReport(); // LocalTrack: sender.getStats()
      const s = { trackSid: pub.trackSid, kind: pub.kind, source: pub.source,
        framesEncoded: 0, packetsSent: 0, bytesSent: 0, layers: [] };
      report?.forEach((v) => {
        if (v.type !== 'outbound-rtp') return;
        s.framesEncoded += v.framesEncoded ?? 0;
        s.packetsSent += v.packetsSent ?? 0;
        s.bytesSent += v.bytesSent ?? 0;
        s.layers.push({ rid: v.rid ?? null, ssrc: v.ssrc ?? null, packetsSent: v.packetsSent ?? 0,
          framesEncoded: v.framesEncoded ?? null, frameWidth: v.frameWidth ?? null,
          frameHeight: v.frameHeight ?? null, active: v.active ?? null });
      });
      local.push(s);
    }
    return { remote, local };
  }

  const localTracks = () =>
    [...room.localParticipant.trackPublications.values()].map((pub) => ({
      trackSid: pub.trackSid, kind: pub.kind, source: pub.source, simulcasted: pub.simulcasted ?? null,
      width: pub.dimensions?.width ?? null, height: pub.dimensions?.height ?? null,
    }));

  async function handle(cmd) {
    switch (cmd.cmd) {
      case 'setCamera':
      case 'setMicrophone':
      case 'unpublish': {
        const lp = room.localParticipant;
        if (cmd.cmd === 'setCamera') await lp.setCameraEnabled(cmd.enabled !== false);
        else if (cmd.cmd === 'setMicrophone') await lp.setMicrophoneEnabled(cmd.enabled !== false);
        else {
          const pub = [...lp.trackPublications.values()].find((p) => p.source === cmd.source);
          if (!pub || !pub.track) throw new Error(`no local publication with source ${cmd.source}`);
          await lp.unpublishTrack(pub.track, true);
        }
        const tracks = localTracks();
        emit({ event: 'published', cmd: cmd.cmd, tracks });
        return { tracks };
      }
      case 'publishData': {
        const bytes = new TextEncoder().encode(cmd.payload);
        const o = { reliable: !!cmd.reliable };
        if (cmd.topic !== undefined && cmd.topic !== null) o.topic = cmd.topic;
        if (cmd.destinationIdentities) o.destinationIdentities = cmd.destinationIdentities;
        await room.localParticipant.publishData(bytes, o);
        return {};
      }
      case 'stats':
        emit({ event: 'stats', ...(await collectStats()) });
        return {};
      case 'iceStats': {
        const out = {};
        const mgr = room.engine?.pcManager;
        for (const target of ['publisher', 'subscriber']) {
          const pc = mgr?.[target]?._pc ?? mgr?.[target]?.pc;
          if (!pc) { out[target] = null; continue; }
          const stats = await pc.getStats();
          let pairId = null;
          const byId = new Map();
          stats.forEach((v) => {
            byId.set(v.id, v);
            if (v.type === 'transport' && v.selectedCandidatePairId) pairId = v.selectedCandidatePairId;
          });
          if (!pairId) stats.forEach((v) => { if (v.type === 'candidate-pair' && v.nominated && v.state === 'succeeded') pairId = v.id; });
          const pair = pairId ? byId.get(pairId) : null;
          const cand = (id) => {
            const c = id ? byId.get(id) : null;
            return c ? { candidateType: c.candidateType, protocol: c.protocol, relayProtocol: c.relayProtocol ?? null,
              address: c.address ?? c.ip ?? null, port: c.port } : null;
          };
          const cfg = pc.getConfiguration();
          out[target] = {
            connectionState: pc.connectionState,
            pair: pair ? { state: pair.state, bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived,
              local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId) } : null,
            iceTransportPolicy: cfg.iceTransportPolicy,
            iceServers: (cfg.iceServers || []).map((s) => ({ urls: s.urls, username: s.username ?? null })),
          };
        }
        return out;
      }
      case 'quit':
        await room.disconnect();
        return {};
      default:
        throw new Error(`unknown command ${cmd.cmd}`);
    }
  }
  window.__sy = { room, handle };

  try {
    await room.connect(opts.url, opts.token);
  } catch (e) {
    emit({ event: 'error', stage: 'connect', message: String(e?.message ?? e), name: e?.name ?? null,
      reason: e?.reason ?? null, status: e?.status ?? null });
    return false;
  }
  let roomSid = null;
  try { roomSid = await room.getSid(); } catch (e) { /* reported as null */ }
  emit({
    event: 'connected',
    identity: room.localParticipant.identity,
    room: room.name,
    roomSid,
    remotes: [...room.remoteParticipants.values()].map((p) => p.identity),
  });

  if (opts.publish) {
    try {
      await room.localParticipant.enableCameraAndMicrophone();
    } catch (e) {
      emit({ event: 'error', stage: 'publish', message: String(e?.message ?? e) });
      return false;
    }
    emit({ event: 'published', tracks: localTracks() });
  }

  if (opts.statsMs > 0) {
    const tick = async () => {
      if (room.state === 'disconnected') return;
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
  if (!fs.existsSync(UMD)) {
    emit({ event: 'error', stage: 'setup', message: `missing ${UMD}: run scripts/install-test-deps.sh` });
    process.exit(2);
  }

  const browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    args: [...CHROMIUM_ARGS, '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  });
  emit({ event: 'launched', browser: browser.version() });

  let closing = false;
  const shutdown = async (code) => {
    if (closing) return;
    closing = true;
    try {
      await Promise.race([
        page.evaluate(() => window.__sy?.room?.disconnect()).catch(() => {}),
        new Promise((r) => setTimeout(r, 3000)),
      ]);
    } catch (e) { /* ignore */ }
    await browser.close().catch(() => {});
    emit({ event: 'exit', code });
    process.exit(code);
  };

  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => log(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log(`pageerror: ${e?.stack ?? e}`));
  page.on('crash', () => { emit({ event: 'error', stage: 'page', message: 'page crashed' }); shutdown(3); });
  await page.exposeFunction('__syEmit', (obj) => emit(obj));
  await page.goto(pathToFileURL(PAGE).href);
  await page.addScriptTag({ path: UMD });
  const info = await page.evaluate(() => ({
    version: window.LivekitClient?.version,
    protocolVersion: window.LivekitClient?.protocolVersion,
    supported: window.LivekitClient?.isBrowserSupported(),
    secure: window.isSecureContext,
  }));
  log(`page ready: ${JSON.stringify(info)}`);
  emit({ event: 'page', ...info });

  // stdin commands (one JSON per line). EOF = quit.
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
      const result = await page.evaluate((c) => window.__sy.handle(c), cmd);
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

  const ok = await page.evaluate(pageMain, {
    url: opts.url,
    token: opts.token,
    publish: opts.publish,
    singlePc: opts.singlePc ?? null,
    statsMs: opts.statsMs,
    logLevel: opts.logLevel,
  });
  if (!ok) await shutdown(1);
}

main().catch((e) => {
  emit({ event: 'error', stage: 'main', message: String(e?.stack ?? e) });
  process.exit(1);
});
