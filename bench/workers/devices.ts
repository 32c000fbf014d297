import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ClientFrameSchema, type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import WebSocket from "ws";
import { Histogram, type HistogramData } from "../lib/hist.js";
import { findMark, now } from "../lib/payload.js";
import { signerFor } from "./signer.js";

/**
 * Devices on WebSocket, many per process: `chat` devices speak the device stream protocol
 * (binary frames, hello with the token, replay until `synced`), `raw` ones just connect to the
 * baseline server. They measure either end-to-end latency from the body's timestamp (`latency`)
 * or each room's seq order (`seq`, for the reconnect storm), or nothing (`none`, idle).
 */

type Track = "latency" | "seq" | "none";

interface Device {
  user: string;
  token: string;
  /** The server this device connects to (ConnectArgs.urls round robin, else ConnectArgs.url). */
  url: string;
  localAddress?: string;
  ws?: WebSocket;
  state: "connecting" | "live" | "down" | "closed";
  rooms: string[];
  positions: Map<string, number>;
  /** When each room's position last moved: the time it was reached, once the expected seq is known. */
  advancedAt: Map<string, number>;
  seen?: Uint8Array;
  attempts: number;
  /** When the socket's upgrade completed (`open`), on the latest attempt. */
  openedAt?: number;
  syncedAt?: number;
  caughtUpAt?: number;
}

interface Config {
  url: string;
  kind: "chat" | "raw";
  track: Track;
}

let config: Config | undefined;
let devices: Device[] = [];
let pinger: NodeJS.Timeout | undefined;
const closeCodes: Record<string, number> = {};

/** Each device pings every PING_EVERY_MS; the devices are spread over PING_SLOTS moments of that period. */
const PING_EVERY_MS = 25_000;
const PING_SLOTS = 100;
const PING = Buffer.from(
  toBinary(ClientFrameSchema, create(ClientFrameSchema, { frame: { case: "ping", value: {} } })),
);

const step = {
  id: -1,
  received: 0,
  dups: 0,
  stale: 0,
  bytes: 0,
  firstAt: 0,
  lastAt: 0,
  /** Typing frames received since stepBegin (no mark: a late one of the step before counts here). */
  typing: 0,
  hist: new Histogram(),
};

const storm = {
  startedAt: 0,
  expected: undefined as Map<string, number> | undefined,
  gaps: 0,
  dups: 0,
  failedAttempts: 0,
  events: 0,
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** When the device showed the newest event it has in any of its rooms. */
function lastAdvance(d: Device): number | undefined {
  let last: number | undefined;
  for (const room of d.rooms) {
    const t = d.advancedAt.get(room);
    if (t !== undefined && (last === undefined || t > last)) last = t;
  }
  return last;
}

function caughtUp(d: Device): boolean {
  const expected = storm.expected;
  if (!expected) return false;
  for (const room of d.rooms) {
    const want = expected.get(room);
    if (want !== undefined && (d.positions.get(room) ?? 0) < want) return false;
  }
  return true;
}

function onFrame(d: Device, data: Buffer): void {
  const c = config as Config;
  if (c.track === "latency") {
    const mark = findMark(data);
    if (mark) {
      if (mark.step !== step.id) {
        step.stale++;
        return;
      }
      const at = now();
      if (d.seen) {
        if (d.seen[mark.n]) {
          step.dups++;
          return;
        }
        d.seen[mark.n] = 1;
      }
      step.received++;
      step.bytes += data.length;
      if (step.firstAt === 0) step.firstAt = at;
      step.lastAt = at;
      // Counting marks (reactions, edits) have no timestamp: counted, not timed.
      if (Number.isFinite(mark.sentAt)) step.hist.record(at - mark.sentAt);
      return;
    }
  }
  if (c.kind !== "chat") return;
  let frame: ServerFrame;
  try {
    frame = fromBinary(ServerFrameSchema, data);
  } catch {
    return;
  }
  const f = frame.frame;
  if (f.case === "synced") {
    d.state = "live";
    d.syncedAt = now();
    d.ws?.emit("bench-live");
  } else if (f.case === "event" && c.track === "seq") {
    storm.events++;
    const seq = Number(f.value.seq);
    const pos = d.positions.get(f.value.roomId);
    if (pos !== undefined && seq <= pos) storm.dups++;
    else {
      if (pos !== undefined && seq > pos + 1) storm.gaps += seq - pos - 1;
      d.positions.set(f.value.roomId, seq);
      d.advancedAt.set(f.value.roomId, now());
      if (!d.caughtUpAt && storm.expected && caughtUp(d)) d.caughtUpAt = now();
    }
  } else if (f.case === "resync") {
    d.positions.set(f.value.roomId, Number(f.value.fromSeq) - 1);
  } else if (f.case === "typing") {
    step.typing++;
  }
}

/**
 * Opens one device's socket; resolves once it is live (chat: `synced`; raw: open). Like the SDK,
 * a device waits as long as the kernel keeps trying to connect (about two minutes of SYN retries).
 */
function open(d: Device, timeoutMs = 130_000): Promise<void> {
  const c = config as Config;
  d.attempts++;
  d.state = "connecting";
  const ws = new WebSocket(d.url, {
    perMessageDeflate: false,
    ...(d.localAddress ? { localAddress: d.localAddress } : {}),
  });
  d.ws = ws;
  ws.binaryType = "nodebuffer";
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("not live in time"));
    }, timeoutMs);
    const live = () => {
      clearTimeout(timer);
      resolve();
    };
    ws.once("bench-live", live);
    ws.on("message", (data: Buffer) => onFrame(d, data));
    ws.once("open", () => {
      d.openedAt = now();
      if (c.kind === "raw") {
        d.state = "live";
        ws.emit("bench-live");
        return;
      }
      const cursors = [...d.positions].map(([roomId, seq]) => ({ roomId, seq: BigInt(seq) }));
      ws.send(
        toBinary(
          ClientFrameSchema,
          create(ClientFrameSchema, { frame: { case: "hello", value: { token: d.token, deviceId: "d", cursors } } }),
        ),
      );
    });
    ws.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.once("close", (code) => {
      closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      clearTimeout(timer);
      if (d.ws === ws && d.state !== "down") d.state = "closed";
      reject(new Error(`closed with ${code} before live`));
    });
  });
}

/** Runs `fn` over items with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

export interface ConnectArgs {
  url: string;
  /** Servers to spread the devices over, round robin (instead of `url`). */
  urls?: string[];
  kind: "chat" | "raw";
  track: Track;
  keyFile: string;
  users: string[];
  /** Source addresses to spread sockets over (lib/addresses.ts), round robin. */
  localAddresses?: string[];
  concurrency: number;
  /** Rooms and their members: the seq tracking of the storm, the rooms a device types in. */
  rooms?: { id: string; members: string[] }[];
}

/** Connects devices (added to those already here); resolves when each is live or failed. */
export async function connectDevices(a: ConnectArgs) {
  config = { url: a.url, kind: a.kind, track: a.track };
  const signer = await signerFor(a.keyFile);
  const roomsOf = new Map<string, string[]>();
  for (const r of a.rooms ?? []) for (const m of r.members) roomsOf.set(m, [...(roomsOf.get(m) ?? []), r.id]);
  const added: Device[] = [];
  for (let i = 0; i < a.users.length; i += 200) {
    const chunk = a.users.slice(i, i + 200);
    const tokens =
      a.kind === "chat"
        ? await Promise.all(chunk.map((u) => signer.sign({ sub: u, device_id: "d" })))
        : chunk.map(() => "");
    chunk.forEach((user, j) => {
      const localAddress = a.localAddresses?.[(i + j) % a.localAddresses.length];
      added.push({
        user,
        token: tokens[j] as string,
        url: a.urls?.[(i + j) % a.urls.length] ?? a.url,
        ...(localAddress ? { localAddress } : {}),
        state: "closed",
        rooms: roomsOf.get(user) ?? [],
        positions: new Map(),
        advancedAt: new Map(),
        attempts: 0,
      });
    });
  }
  devices.push(...added);
  const started = performance.now();
  let failed = 0;
  let firstError: string | undefined;
  await pool(added, a.concurrency, async (d) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await open(d);
        return;
      } catch (err) {
        firstError ??= (err as Error).message;
        await sleep(200 * (attempt + 1));
      }
    }
    failed++;
  });
  if (!pinger) {
    // Clients ping well within CONNECTION_TIMEOUT_SEC, as real ones do: every 25 s, each at its
    // own moment (a client's timer starts when it connects), so the process pings 1/100 of its
    // devices every 250 ms rather than all of them in one burst. The slots due are counted from
    // the clock, not from the timer's calls: a process too busy to run the timer on time (while
    // it connects thousands of devices) still pings each device every 25 s. Raw devices send the
    // same frame, which the baseline server answers with a pong: the same heartbeat work.
    const slotMs = PING_EVERY_MS / PING_SLOTS;
    let done = Math.floor(performance.now() / slotMs);
    pinger = setInterval(() => {
      const due = Math.floor(performance.now() / slotMs);
      for (let n = Math.max(done + 1, due - PING_SLOTS + 1); n <= due; n++) {
        for (let i = n % PING_SLOTS; i < devices.length; i += PING_SLOTS) {
          const d = devices[i] as Device;
          if (d.state === "live") d.ws?.send(PING);
        }
      }
      done = due;
    }, slotMs);
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
 * Starts counting deliveries of step `id` (messages numbered 0 … maxMsgs-1). With `listDown`,
 * also answers the users whose device is not live (to count what each room can deliver).
 */
export function stepBegin(a: { id: number; maxMsgs: number; listDown?: boolean }) {
  step.id = a.id;
  step.received = 0;
  step.dups = 0;
  step.stale = 0;
  step.bytes = 0;
  step.firstAt = 0;
  step.lastAt = 0;
  step.typing = 0;
  step.hist = new Histogram();
  for (const d of devices) d.seen = new Uint8Array(a.maxMsgs);
  return {
    devices: devices.filter((d) => d.state === "live").length,
    ...(a.listDown ? { down: devices.filter((d) => d.state !== "live").map((d) => d.user) } : {}),
  };
}

export interface StepStats {
  received: number;
  dups: number;
  stale: number;
  bytes: number;
  firstAt: number;
  lastAt: number;
  live: number;
  /** Typing frames received since stepBegin. */
  typing: number;
  hist: HistogramData;
  closeCodes: Record<string, number>;
}

export function stepStats(): StepStats {
  return {
    received: step.received,
    dups: step.dups,
    stale: step.stale,
    bytes: step.bytes,
    firstAt: step.firstAt,
    lastAt: step.lastAt,
    live: devices.filter((d) => d.state === "live").length,
    typing: step.typing,
    hist: step.hist.toJSON(),
    closeCodes: { ...closeCodes },
  };
}

export function deviceCount() {
  const states: Record<string, number> = {};
  for (const d of devices) states[d.state] = (states[d.state] ?? 0) + 1;
  return { total: devices.length, states, closeCodes: { ...closeCodes } };
}

export async function closeDevices() {
  if (pinger) clearInterval(pinger);
  pinger = undefined;
  const closing = devices.map(
    (d) =>
      new Promise<void>((resolve) => {
        const ws = d.ws;
        if (!ws || ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once("close", () => resolve());
        ws.terminate();
      }),
  );
  await Promise.race([Promise.all(closing), sleep(5_000)]);
  devices = [];
  for (const k of Object.keys(closeCodes)) delete closeCodes[k];
  return {};
}

/**
 * Typing signals on the stream, as a client sends them while its user types: `rate` per second
 * (open loop) for `durationMs`, each `typing{room, active}` from a random live device in one of
 * its rooms (connect with `rooms`). The server tells the room's other members.
 */
export async function sendTyping(a: { rate: number; durationMs: number }) {
  const typists = devices.filter((d) => d.state === "live" && d.rooms.length > 0);
  let sent = 0;
  let skipped = 0;
  if (typists.length === 0 || a.rate <= 0) return { sent, skipped };
  const begin = performance.now();
  const end = begin + a.durationMs;
  while (performance.now() < end) {
    const due = Math.floor((a.rate * (performance.now() - begin)) / 1000) - (sent + skipped);
    for (let i = 0; i < due; i++) {
      const d = typists[Math.floor(Math.random() * typists.length)] as Device;
      const roomId = d.rooms[Math.floor(Math.random() * d.rooms.length)] as string;
      if (d.state !== "live" || !d.ws) {
        skipped++;
        continue;
      }
      d.ws.send(
        toBinary(
          ClientFrameSchema,
          create(ClientFrameSchema, { frame: { case: "typing", value: { roomId, active: true } } }),
        ),
      );
      sent++;
    }
    // A coarser tick than the senders': typing is a small share of the load.
    await sleep(5);
  }
  return { sent, skipped };
}

/** The storm: every socket dies at once, as in a network cut (no close handshake). */
export function drop() {
  for (const d of devices) {
    d.state = "down";
    d.caughtUpAt = undefined;
    d.syncedAt = undefined;
    d.openedAt = undefined;
    d.ws?.terminate();
  }
  return { dropped: devices.length };
}

/**
 * Every device reconnects: its first attempt at a uniformly random moment of the next `windowMs`
 * (default 500: all within ±250 ms of 250 ms), then as the SDK does, with doubling backoff from
 * 250 ms × U(0.5, 1.5) on failure, and resumes with hello cursors = its positions.
 */
export function reconnect(a: { minBackoffMs?: number; windowMs?: number }) {
  const min = a.minBackoffMs ?? 250;
  const windowMs = a.windowMs ?? 2 * min;
  storm.startedAt = now();
  storm.expected = undefined;
  storm.gaps = 0;
  storm.dups = 0;
  storm.failedAttempts = 0;
  storm.events = 0;
  for (const d of devices) {
    d.attempts = 0;
    const attempt = (n: number) => {
      const delay = n === 0 ? windowMs * Math.random() : Math.min(30_000, min * 2 ** n) * (0.5 + Math.random());
      setTimeout(() => {
        open(d).catch(() => {
          storm.failedAttempts++;
          attempt(n + 1);
        });
      }, delay);
    };
    attempt(0);
  }
  return { startedAt: storm.startedAt };
}

/**
 * Waits until every device has every event up to `expected` (room → last seq) in each of its rooms.
 * `again`: a later target than the last call's — each device's time is taken afresh.
 */
export async function waitCaughtUp(a: { expected: Record<string, number>; timeoutMs: number; again?: boolean }) {
  storm.expected = new Map(Object.entries(a.expected));
  if (a.again) for (const d of devices) d.caughtUpAt = undefined;
  // The expected seqs are known only once every message was sent: a device that had them all
  // before counts from when it showed the last one, not from now.
  for (const d of devices) {
    if (!d.caughtUpAt && d.state === "live" && caughtUp(d)) {
      d.caughtUpAt = Math.max(lastAdvance(d) ?? 0, d.syncedAt ?? 0) || now();
    }
  }
  const deadline = performance.now() + a.timeoutMs;
  while (devices.some((d) => !d.caughtUpAt) && performance.now() < deadline) {
    await sleep(20);
    for (const d of devices) if (!d.caughtUpAt && caughtUp(d)) d.caughtUpAt = now();
  }
  let missing = 0;
  for (const d of devices) {
    for (const room of d.rooms) {
      const want = storm.expected.get(room) ?? 0;
      missing += Math.max(0, want - (d.positions.get(room) ?? 0));
    }
  }
  const since = (t: number | undefined) => (t === undefined ? Number.NaN : t - storm.startedAt);
  const caught = devices.map((d) => since(d.caughtUpAt)).filter(Number.isFinite);
  const synced = devices.map((d) => since(d.syncedAt)).filter(Number.isFinite);
  const hist = new Histogram();
  for (const t of caught) hist.record(t);
  const opened = new Histogram();
  const syncedHist = new Histogram();
  for (const d of devices) {
    const o = since(d.openedAt);
    if (Number.isFinite(o)) opened.record(o);
  }
  for (const t of synced) syncedHist.record(t);
  return {
    devices: devices.length,
    caughtUp: caught.length,
    // -1: not all (NaN does not survive the IPC channel's JSON).
    allCaughtUpMs: caught.length === devices.length ? Math.max(...caught) : -1,
    lastSyncedMs: synced.length === devices.length ? Math.max(...synced) : -1,
    catchUp: hist.toJSON(),
    opened: opened.toJSON(),
    synced: syncedHist.toJSON(),
    missing,
    gaps: storm.gaps,
    dups: storm.dups,
    events: storm.events,
    failedAttempts: storm.failedAttempts,
    attempts: devices.reduce((n, d) => n + d.attempts, 0),
    closeCodes: { ...closeCodes },
  };
}
