#!/usr/bin/env node
// Webhook verification with livekit-server-sdk's `WebhookReceiver` (Node), for the Switchyard
// e2e webhook tests: the Python receiver (tests/e2e/test_webhooks.py) hands every request it
// gets to this process and answers the server only after both SDKs accepted it.
//
// Protocol with the parent process:
//   stdin: one JSON object per line: {"seq":<n>,"body":<raw request body>,"auth":<Authorization header>}
//          ({"op":"quit"} or stdin EOF ends the process)
//   stdout: first {"event":"ready","sdk":"livekit-server-sdk"}, then one line per request:
//     {"seq":<n>,"ok":true,"event":..,"id":..,"createdAt":<number>,"room":{"name","sid"},
//      "participant":{"identity","sid","state","disconnectReason"}|null,"track":{"sid"}|null}
//     {"seq":<n>,"ok":false,"error":<message>}
//   stderr: human-readable log.
//
// Usage: node webhook_verifier.mjs --key <api key> --secret <api secret>
import { createInterface } from 'node:readline';
import { WebhookReceiver } from 'livekit-server-sdk';

function parseArgs(argv) {
  const o = { key: process.env.LK_API_KEY || '', secret: process.env.LK_API_SECRET || '' };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (a === '--key') o.key = v;
    else if (a === '--secret') o.secret = v;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.key || !o.secret) throw new Error('--key and --secret are required');
  return o;
}

const opts = parseArgs(process.argv);
const receiver = new WebhookReceiver(opts.key, opts.secret);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

out({ event: 'ready', sdk: 'livekit-server-sdk' });

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    console.error(`bad input line: ${e}`);
    continue;
  }
  if (msg.op === 'quit') break;
  try {
    // receive(body, authHeader): verifies the JWT (HS256, iss = api key, exp/nbf) and its
    // sha256 claim against the raw body, then parses the protojson WebhookEvent.
    const ev = await receiver.receive(msg.body, msg.auth);
    out({
      seq: msg.seq,
      ok: true,
      event: ev.event,
      id: ev.id,
      createdAt: Number(ev.createdAt),
      room: ev.room ? { name: ev.room.name, sid: ev.room.sid } : null,
      participant: ev.participant
        ? {
            identity: ev.participant.identity,
            sid: ev.participant.sid,
            state: ev.participant.state,
            disconnectReason: ev.participant.disconnectReason,
          }
        : null,
      track: ev.track ? { sid: ev.track.sid } : null,
    });
  } catch (e) {
    out({ seq: msg.seq, ok: false, error: String(e && e.message ? e.message : e) });
  }
}
process.exit(0);
