import { create, fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import { ClientFrameSchema, RoomEventType, type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import WebSocket from "ws";
import { Histogram, type HistogramData } from "../lib/hist.js";
import { body, now } from "../lib/payload.js";
import { type EventSeen, scanBinary, scanJson } from "./frames.js";
import { signerFor } from "./signer.js";

/**
 * Devices of the message-path scenario, many per process. Each is a device stream on WebSocket
 * (binary frames, or the `json` subprotocol) in one room, and may both send — `send` frames on
 * its own stream, open loop, without waiting for an ack before the next — and receive the events
 * of its room. Receivers check every room's order on every device (seq strictly increasing by 1,
 * no duplicates) and time the marked messages; senders check their acks (count, errors by code,
 * and that one device's acks come back in the order its frames were sent).
 */

interface Pending {
  sentAt: number;
  /** The step whose measured window the send belongs to; -1 for warm-up. */
  step: number;
}

interface Device {
  user: string;
  roomId: string;
  sends: boolean;
  ws?: WebSocket;
  live: boolean;
  /** Highest seq shown, per room. */
  seqs: Map<string, number>;
  pending: Map<number, Pending>;
  nextRequest: number;
  lastAnswered: number;
}

let json = false;
let devices: Device[] = [];
let pinger: NodeJS.Timeout | undefined;
const closeCodes: Record<string, number> = {};
const BODY_BYTES = 100;
const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;

const fresh = () => ({
  warm: -1,
  id: -1,
  windowStart: 0,
  windowEnd: 0,
  received: 0,
  stale: 0,
  duplicates: 0,
  gaps: 0,
  missing: 0,
  firstAt: 0,
  lastAt: 0,
  hist: new Histogram(),
  thirds: [new Histogram(), new Histogram(), new Histogram()],
  ok: 0,
  errors: {} as Record<string, number>,
  /** Error frames that answer no send of ours. */
  otherErrors: {} as Record<string, number>,
  outOfOrder: 0,
  unknownAcks: 0,
  measuredPending: 0,
  ackLatency: new Histogram(),
});
let step = fresh();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const encode = (frame: Parameters<typeof toBinary<typeof ClientFrameSchema>>[1]) =>
  json ? toJsonString(ClientFrameSchema, frame) : toBinary(ClientFrameSchema, frame);
const count = (into: Record<string, number>, key: string) => {
  into[key] = (into[key] ?? 0) + 1;
};

function onEvent(d: Device, e: EventSeen): void {
  const last = d.seqs.get(e.roomId);
  if (last !== undefined) {
    if (e.seq <= last) {
      step.duplicates++;
      return;
    }
    if (e.seq > last + 1) {
      step.gaps++;
      step.missing += e.seq - last - 1;
    }
  }
  d.seqs.set(e.roomId, e.seq);
  if (e.step === undefined || e.sentAt === undefined) return;
  if (e.step !== step.id) {
    step.stale++;
    return;
  }
  const at = now();
  step.received++;
  if (step.firstAt === 0) step.firstAt = at;
  step.lastAt = at;
  const latency = at - e.sentAt;
  step.hist.record(latency);
  const third = Math.floor(((e.sentAt - step.windowStart) / (step.windowEnd - step.windowStart)) * 3);
  step.thirds[Math.min(2, Math.max(0, third))]?.record(latency);
}

function answered(d: Device, requestId: string, errorCode: string | undefined): void {
  const rid = Number(requestId);
  const p = d.pending.get(rid);
  if (!p) {
    if (errorCode) count(step.otherErrors, errorCode);
    else step.unknownAcks++;
    return;
  }
  d.pending.delete(rid);
  if (rid < d.lastAnswered) step.outOfOrder++;
  else d.lastAnswered = rid;
  if (p.step !== step.id) return;
  step.measuredPending--;
  if (errorCode) count(step.errors, errorCode);
  else {
    step.ok++;
    step.ackLatency.record(now() - p.sentAt);
  }
}

function onFrame(d: Device, data: Buffer): void {
  const text = json ? data.toString("utf8") : "";
  const seen = json ? scanJson(text) : scanBinary(data);
  if (seen) {
    onEvent(d, seen);
    return;
  }
  let frame: ServerFrame;
  try {
    frame = json ? fromJsonString(ServerFrameSchema, text) : fromBinary(ServerFrameSchema, data);
  } catch {
    return;
  }
  const f = frame.frame;
  switch (f.case) {
    case "synced":
      d.live = true;
      d.ws?.emit("bench-live");
      return;
    case "event": {
      // Only when the scan could not read it (it always can for the server's frames).
      const e: EventSeen = { roomId: f.value.roomId, seq: Number(f.value.seq) };
      if (f.value.content.case === "text") {
        const parts = f.value.content.value.body.split("|");
        if (parts[0] === "B" && parts.length >= 5) {
          e.step = Number(parts[1]);
          e.n = Number(parts[2]);
          e.sentAt = Number(parts[3]);
        }
      }
      onEvent(d, e);
      return;
    }
    case "ack":
      answered(d, frame.requestId, f.value.error ? f.value.error.code || "error" : undefined);
      return;
    case "error":
      if (frame.requestId) answered(d, frame.requestId, f.value.code || "error");
      else count(step.otherErrors, f.value.code || "error");
      return;
    case "resync":
      d.seqs.set(f.value.roomId, Number(f.value.fromSeq) - 1);
      return;
    default:
      return;
  }
}

/** Opens a device's stream; resolves once it is live (`synced`). */
function open(d: Device, url: string, token: string, timeoutMs = 60_000): Promise<void> {
  const ws = new WebSocket(url, json ? ["json"] : [], { perMessageDeflate: false });
  ws.binaryType = "nodebuffer";
  d.ws = ws;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("not live in time"));
    }, timeoutMs);
    ws.once("bench-live", () => {
      clearTimeout(timer);
      resolve();
    });
    ws.on("message", (data: Buffer) => onFrame(d, data));
    ws.once("open", () => {
      ws.send(encode(create(ClientFrameSchema, { frame: { case: "hello", value: { token, deviceId: "d" } } })));
    });
    ws.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.once("close", (code) => {
      count(closeCodes, String(code));
      d.live = false;
      clearTimeout(timer);
      reject(new Error(`closed with ${code} before live`));
    });
  });
}

export interface StreamConnectArgs {
  url: string;
  keyFile: string;
  /** All devices of a process speak the same encoding. */
  json: boolean;
  devices: { user: string; roomId: string; sends: boolean }[];
  concurrency: number;
}

/** Connects devices (added to those already here); resolves when each is live or has failed three times. */
export async function streamConnect(a: StreamConnectArgs) {
  json = a.json;
  const signer = await signerFor(a.keyFile);
  const started = performance.now();
  const added: Device[] = a.devices.map((x) => ({
    ...x,
    live: false,
    seqs: new Map(),
    pending: new Map(),
    nextRequest: 0,
    lastAnswered: 0,
  }));
  devices.push(...added);
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  await Promise.all(
    Array.from({ length: Math.min(a.concurrency, added.length) }, async () => {
      while (next < added.length) {
        const d = added[next++] as Device;
        const token = await signer.sign({ sub: d.user, device_id: "d" });
        let ok = false;
        for (let attempt = 0; attempt < 3 && !ok; attempt++) {
          try {
            await open(d, a.url, token);
            ok = true;
          } catch (err) {
            firstError ??= (err as Error).message;
            await sleep(200 * (attempt + 1));
          }
        }
        if (!ok) failed++;
      }
    }),
  );
  if (!pinger) {
    // Receivers send nothing else: they ping well within CONNECTION_TIMEOUT_SEC, as real clients do.
    const ping = encode(create(ClientFrameSchema, { frame: { case: "ping", value: {} } }));
    pinger = setInterval(() => {
      for (const d of devices) if (d.live) d.ws?.send(ping);
    }, 25_000);
    pinger.unref();
  }
  return {
    connected: added.length - failed,
    failed,
    seconds: (performance.now() - started) / 1000,
    ...(firstError ? { firstError } : {}),
  };
}

/**
 * Starts counting step `id`: messages marked `id` (sent in its measured window, `windowStart` …
 * `windowEnd`, ms since the epoch) are counted and timed; those marked `warm` (its warm-up) only
 * go through the order check. Answers the live devices per room.
 */
export function streamBegin(a: { warm: number; id: number; windowStart: number; windowEnd: number }) {
  step = { ...fresh(), warm: a.warm, id: a.id, windowStart: a.windowStart, windowEnd: a.windowEnd };
  const live: Record<string, number> = {};
  for (const d of devices) if (d.live) count(live, d.roomId);
  return { live };
}

export interface StreamSendArgs {
  warm: number;
  id: number;
  /** When the warm-up starts (ms since the epoch); the measured window follows it. */
  startAt: number;
  warmupMs: number;
  windowMs: number;
  /** Messages per second from this process, over its sending devices in turn. */
  rate: number;
  /** Unanswered sends per device beyond which a send is skipped (counted). */
  maxInFlight: number;
}

export interface StreamSendResult {
  /** Messages sent in the measured window, in all and per room. */
  sent: number;
  sentByRoom: Record<string, number>;
  warmupSent: number;
  /** Sends not made: the device was down or had maxInFlight unanswered. */
  skipped: number;
  lastSentAt: number;
}

/**
 * Open-loop sending: each tick sends `rate × elapsed − sent` messages, each from the next sending
 * device (so messages spread over senders and rooms), never waiting for acks. A message belongs
 * to the measured window when its scheduled time (start + i ÷ rate) falls in it.
 */
export async function streamSend(a: StreamSendArgs): Promise<StreamSendResult> {
  const senders = devices.filter((d) => d.sends);
  const r: StreamSendResult = { sent: 0, sentByRoom: {}, warmupSent: 0, skipped: 0, lastSentAt: 0 };
  if (senders.length === 0 || a.rate <= 0) return r;
  await sleep(Math.max(0, a.startAt - now()));
  const measureFrom = a.startAt + a.warmupMs;
  const end = measureFrom + a.windowMs;
  let issued = 0;
  let turn = 0;
  while (now() < end) {
    // Message i is due at startAt + i ÷ rate: the first at once, none at `end`.
    const due = Math.floor((a.rate * (now() - a.startAt)) / 1000) + 1 - issued;
    for (let i = 0; i < due; i++) {
      const scheduled = a.startAt + (issued * 1000) / a.rate;
      if (scheduled >= end) break;
      issued++;
      const measured = scheduled >= measureFrom;
      const d = senders[turn++ % senders.length] as Device;
      if (!d.live || !d.ws || d.pending.size >= a.maxInFlight) {
        if (measured) r.skipped++;
        continue;
      }
      const stepId = measured ? a.id : a.warm;
      const rid = ++d.nextRequest;
      const n = measured ? r.sent : r.warmupSent;
      d.ws.send(
        encode(
          create(ClientFrameSchema, {
            requestId: String(rid),
            frame: {
              case: "send",
              value: {
                roomId: d.roomId,
                type: RoomEventType.TEXT,
                content: { case: "text", value: { body: body(stepId, n, BODY_BYTES) } },
                clientId: `${run}-${rid}`,
              },
            },
          }),
        ),
      );
      r.lastSentAt = now();
      d.pending.set(rid, { sentAt: r.lastSentAt, step: measured ? a.id : -1 });
      if (measured) {
        r.sent++;
        count(r.sentByRoom, d.roomId);
        if (step.id === a.id) step.measuredPending++;
      } else r.warmupSent++;
    }
    await sleep(1);
  }
  return r;
}

export interface StreamStats {
  received: number;
  stale: number;
  duplicates: number;
  gaps: number;
  missing: number;
  firstAt: number;
  lastAt: number;
  latency: HistogramData;
  /** Latency of the messages sent in each third of the measured window. */
  thirds: HistogramData[];
  acks: {
    ok: number;
    errors: Record<string, number>;
    otherErrors: Record<string, number>;
    outOfOrder: number;
    unknown: number;
    /** Measured sends not answered yet. */
    pending: number;
    latency: HistogramData;
  };
  live: number;
  closeCodes: Record<string, number>;
}

export function streamStats(): StreamStats {
  return {
    received: step.received,
    stale: step.stale,
    duplicates: step.duplicates,
    gaps: step.gaps,
    missing: step.missing,
    firstAt: step.firstAt,
    lastAt: step.lastAt,
    latency: step.hist.toJSON(),
    thirds: step.thirds.map((h) => h.toJSON()),
    acks: {
      ok: step.ok,
      errors: { ...step.errors },
      otherErrors: { ...step.otherErrors },
      outOfOrder: step.outOfOrder,
      unknown: step.unknownAcks,
      pending: step.measuredPending,
      latency: step.ackLatency.toJSON(),
    },
    live: devices.filter((d) => d.live).length,
    closeCodes: { ...closeCodes },
  };
}

export async function streamClose() {
  if (pinger) clearInterval(pinger);
  pinger = undefined;
  for (const d of devices) d.ws?.terminate();
  devices = [];
  await sleep(100);
  return {};
}
