#!/usr/bin/env node
// LiveKit server API client for the Switchyard e2e tests: `RoomServiceClient` from
// livekit-server-sdk (Node), which speaks Twirp with JSON bodies
// (`Content-Type: application/json;charset=UTF-8`, camelCase, protobuf-es toJson/fromJson).
//
// Protocol with the parent process (the Python test):
//   stdin: one JSON command per line, {"id":..,"op":<method>, ...arguments}:
//     {"op":"createRoom","options":{"name":..,"emptyTimeout":..,"maxParticipants":..,"metadata":..}}
//     {"op":"listRooms","names":[..]}                  (names optional)
//     {"op":"listParticipants","room":..}
//     {"op":"getParticipant","room":..,"identity":..}
//     {"op":"updateRoomMetadata","room":..,"metadata":..}
//     {"op":"updateParticipant","room":..,"identity":..,"options":{"metadata","name","attributes","permission"}}
//     {"op":"mutePublishedTrack","room":..,"identity":..,"trackSid":..,"muted":true}
//     {"op":"updateSubscriptions","room":..,"identity":..,"trackSids":[..],"subscribe":false}
//     {"op":"sendData","room":..,"payload":<utf8 text>,"kind":"reliable"|"lossy",
//                      "options":{"topic":..,"destinationIdentities":[..]}}
//     {"op":"removeParticipant","room":..,"identity":..}
//     {"op":"deleteRoom","room":..}
//     {"op":"quit"}                                    (stdin EOF does the same)
//   stdout: one JSON object per line, the reply to each command:
//     {"id":..,"op":..,"ok":true,"result":<protobuf-es message .toJson(), array of them, or null>,"ms":..}
//     {"id":..,"op":..,"ok":false,"error":{"name","message","status","code","metadata"},"ms":..}
//     and first {"event":"ready","sdk":"livekit-server-sdk"}
//   stderr: human-readable log.
//
// Usage: node room_service_client.mjs --host http://10.200.0.1:7880 --key <key> --secret <secret>
//        (LK_HOST / LK_API_KEY / LK_API_SECRET environment variables work too)
import { createInterface } from 'node:readline';
import { RoomServiceClient, DataPacket_Kind } from 'livekit-server-sdk';

function parseArgs(argv) {
  const o = {
    host: process.env.LK_HOST || '',
    key: process.env.LK_API_KEY || '',
    secret: process.env.LK_API_SECRET || '',
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (a === '--host') o.host = v;
    else if (a === '--key') o.key = v;
    else if (a === '--secret') o.secret = v;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.host || !o.key || !o.secret) throw new Error('--host, --key and --secret are required');
  return o;
}

// protobuf-es messages -> plain JSON (int64 as strings, enums as names, bytes as base64).
function toPlain(v) {
  if (v === undefined || v === null) return null;
  if (Array.isArray(v)) return v.map(toPlain);
  if (typeof v === 'object' && typeof v.toJson === 'function') {
    return v.toJson({ emitDefaultValues: true });
  }
  return v;
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj, (_k, val) => (typeof val === 'bigint' ? val.toString() : val)) + '\n');
}

async function run(svc, c) {
  switch (c.op) {
    case 'createRoom':
      return svc.createRoom(c.options);
    case 'listRooms':
      return svc.listRooms(c.names);
    case 'listParticipants':
      return svc.listParticipants(c.room);
    case 'getParticipant':
      return svc.getParticipant(c.room, c.identity);
    case 'updateRoomMetadata':
      return svc.updateRoomMetadata(c.room, c.metadata);
    case 'updateParticipant':
      return svc.updateParticipant(c.room, c.identity, c.options || {});
    case 'mutePublishedTrack':
      return svc.mutePublishedTrack(c.room, c.identity, c.trackSid, c.muted);
    case 'updateSubscriptions':
      return svc.updateSubscriptions(c.room, c.identity, c.trackSids, c.subscribe);
    case 'sendData': {
      const kind = c.kind === 'lossy' ? DataPacket_Kind.LOSSY : DataPacket_Kind.RELIABLE;
      return svc.sendData(c.room, new TextEncoder().encode(c.payload), kind, c.options || {});
    }
    case 'removeParticipant':
      return svc.removeParticipant(c.room, c.identity);
    case 'deleteRoom':
      return svc.deleteRoom(c.room);
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

async function main() {
  const args = parseArgs(process.argv);
  // failover off: a 5xx must surface as an error, not be retried against "other regions".
  const svc = new RoomServiceClient(args.host, args.key, args.secret, { failover: false, requestTimeout: 10 });
  out({ event: 'ready', sdk: 'livekit-server-sdk' });
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let c;
    try {
      c = JSON.parse(line);
    } catch (e) {
      out({ ok: false, error: { name: 'BadCommand', message: String(e) } });
      continue;
    }
    if (c.op === 'quit') break;
    const t0 = Date.now();
    try {
      const r = await run(svc, c);
      out({ id: c.id, op: c.op, ok: true, result: toPlain(r), ms: Date.now() - t0 });
    } catch (e) {
      console.error(`${c.op} failed:`, e);
      out({
        id: c.id,
        op: c.op,
        ok: false,
        error: {
          name: e?.name,
          message: e?.message,
          status: e?.status,
          code: e?.code,
          metadata: e?.metadata,
        },
        ms: Date.now() - t0,
      });
    }
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  out({ event: 'error', message: String(e?.stack || e) });
  process.exit(1);
});
