import { randomBytes } from "node:crypto";
import type { DevSigner } from "@service-chat/core";
import { CpuMeter, type CpuReport, type Tracked } from "./cpu.js";
import { createDatabase, deleteNatsStream, deleteRedisKeys, NATS, REDIS } from "./infra.js";
import { type Child, runningChildren, type Server, startServer } from "./proc.js";

export type Backend = "mem" | "nats" | "redis";

export interface Profile {
  name: "quick" | "full";
  /** Each measured send-path figure is the median of this many runs. */
  repeats: number;
  send: {
    pgbenchSeconds: number;
    pgbenchClients: number;
    warmupMs: number;
    closedMs: number;
    openMs: number;
    /** Concurrent single-event calls, one room each. */
    singleSenders: number;
    /** Concurrent 100-event calls, one room each. */
    batchSenders: number;
    connections: number;
    bodyBytes: number;
  };
  fanout: {
    roomSizes: number[];
    /**
     * Messages per second into a room of 1,000, in order; a room of N members gets the same offered
     * deliveries/s (rate × 1,000 ÷ N messages per second, at least 1).
     */
    rates: number[];
    stepMs: number;
    drainMs: number;
    receiverProcesses: number;
  };
  rooms: {
    /** Rooms, and users: room r holds users r … r+roomSize−1 (mod rooms), so each user is in roomSize rooms. */
    rooms: number;
    roomSize: number;
    /** Events per second over all rooms, in order; a ramp stops after the first step not kept up. */
    rates: number[];
    stepMs: number;
    drainMs: number;
    receiverProcesses: number;
    /** HTTP/2 connections of the sender (its calls go round robin over them, any user on any). */
    connections: number;
    /** Shares of the events by kind. */
    mix: { text: number; reaction: number; edit: number; reply: number };
    /** Typing signals sent on the devices' streams per event sent. */
    typingPerEvent: number;
  };
  idle: {
    levels: number[];
    holdMs: number;
    /** Sockets per device process, at most (each process on a source address of its own). */
    perProcess: number;
    /** Gateway-only processes holding the connections (each under its 20,000 open files); raw ws gets as many. */
    gateways: number;
    /** The gateways' HEARTBEAT_INTERVAL_SEC (--idle-heartbeat-sec; default the server's, 30 s). */
    heartbeatSec?: number;
    /**
     * Where each server process writes a heap snapshot at the reference and at every level
     * (--idle-heap-snapshots: .tmp/heap-snapshots); none when absent.
     */
    heapSnapshotDir?: string;
    /**
     * Then, with everyone connected, messages into a room of `members` of the idle devices while the
     * others stay idle: `rate` per second for `stepMs` (latency and delivery, no baseline).
     */
    room: { members: number; rate: number; stepMs: number; drainMs: number };
  };
  /** New sessions per second through one gateway process, against raw `ws` (bench/scenarios/connect.ts). */
  connect: { devices: number; processes: number; concurrency: number };
  storm: {
    devices: number;
    roomSize: number;
    whileDown: number;
    processes: number;
    /** Gateway-only processes beside the server's own gateway; devices are spread over all of them. */
    gateways: number;
  };
  backends: { list: Backend[]; sendMs: number; fanRates: number; stepMs: number };
  path: PathProfile;
}

/** The message path measured on one core (bench/scenarios/path.ts). */
export interface PathProfile {
  /** Each step: a warm-up at the step's rate, the measured window, then at most drainMs for stragglers. */
  warmupMs: number;
  stepMs: number;
  drainMs: number;
  /** Processes the devices are spread over (in series 1 each also sends for its own devices). */
  deviceProcesses: number;
  /** Messages per second of each series, in order; a ramp stops after the first rate not kept up. */
  rates: { rooms: number[]; room100: number[]; room1000: number[]; room1000Json: number[] };
  /** The series run (--path-series), in this order of theirs: rooms, room100, room1000, room1000Json. */
  series: (keyof PathProfile["rates"])[];
  /** --path-backends; `raw` is the raw baseline (bench/baselines/ws-rooms.ts), run on request only. */
  backends: ("embedded" | "postgres" | "raw")[];
}

export const PROFILES: Record<"quick" | "full", Profile> = {
  quick: {
    name: "quick",
    repeats: 1,
    send: {
      pgbenchSeconds: 5,
      pgbenchClients: 16,
      warmupMs: 1000,
      closedMs: 4000,
      openMs: 3000,
      singleSenders: 64,
      batchSenders: 8,
      connections: 4,
      bodyBytes: 100,
    },
    fanout: {
      roomSizes: [1000],
      rates: [5, 10, 20, 40, 80, 160, 320, 640],
      stepMs: 3000,
      drainMs: 4000,
      receiverProcesses: 2,
    },
    rooms: {
      rooms: 2000,
      roomSize: 10,
      rates: [100, 200, 400, 800, 1600],
      stepMs: 3000,
      drainMs: 4000,
      receiverProcesses: 2,
      connections: 4,
      mix: { text: 0.8, reaction: 0.1, edit: 0.05, reply: 0.05 },
      typingPerEvent: 0.2,
    },
    idle: {
      levels: [2000],
      holdMs: 5000,
      perProcess: 1000,
      gateways: 2,
      room: { members: 1000, rate: 5, stepMs: 3000, drainMs: 8000 },
    },
    connect: { devices: 2000, processes: 2, concurrency: 100 },
    storm: { devices: 1000, roomSize: 20, whileDown: 6, processes: 2, gateways: 2 },
    backends: { list: ["mem", "redis"], sendMs: 3000, fanRates: 2, stepMs: 2500 },
    path: {
      warmupMs: 3000,
      stepMs: 8000,
      drainMs: 8000,
      deviceProcesses: 2,
      rates: {
        rooms: [250, 500, 1000, 2000, 3000, 4000],
        room100: [25, 50, 100, 200, 400, 1000, 1500],
        room1000: [10, 20, 40, 80, 120, 160],
        room1000Json: [10, 20, 40, 80, 120, 160],
      },
      series: ["rooms", "room100", "room1000", "room1000Json"],
      backends: ["embedded", "postgres"],
    },
  },
  full: {
    name: "full",
    repeats: 3,
    send: {
      pgbenchSeconds: 20,
      pgbenchClients: 16,
      warmupMs: 2000,
      closedMs: 15000,
      openMs: 10000,
      singleSenders: 64,
      batchSenders: 8,
      connections: 4,
      bodyBytes: 100,
    },
    fanout: {
      roomSizes: [1000, 5000],
      rates: [5, 10, 20, 40, 80, 160, 320, 640],
      stepMs: 8000,
      drainMs: 15000,
      receiverProcesses: 2,
    },
    rooms: {
      rooms: 2000,
      roomSize: 10,
      rates: [100, 200, 400, 800, 1600, 3200],
      stepMs: 8000,
      drainMs: 15000,
      receiverProcesses: 2,
      connections: 4,
      mix: { text: 0.8, reaction: 0.1, edit: 0.05, reply: 0.05 },
      typingPerEvent: 0.2,
    },
    idle: {
      levels: [10000, 50000, 100000],
      holdMs: 35000,
      // 7 device processes for 100,000 (each under its 20,000 open files and 28k ports of its
      // address) rather than 17: on 2 cores every process more is memory and CPU taken from the run.
      perProcess: 16000,
      gateways: 6,
      room: { members: 1000, rate: 10, stepMs: 8000, drainMs: 15000 },
    },
    connect: { devices: 10000, processes: 2, concurrency: 200 },
    storm: { devices: 10000, roomSize: 20, whileDown: 6, processes: 2, gateways: 2 },
    backends: { list: ["mem", "nats", "redis"], sendMs: 8000, fanRates: 2, stepMs: 6000 },
    path: {
      warmupMs: 4000,
      stepMs: 10000,
      drainMs: 15000,
      deviceProcesses: 2,
      rates: {
        rooms: [250, 500, 1000, 1500, 2000, 3000, 4000, 6000],
        room100: [25, 50, 100, 200, 400, 700, 1000, 1500],
        room1000: [10, 20, 40, 80, 120, 160],
        room1000Json: [10, 20, 40, 80, 120, 160],
      },
      series: ["rooms", "room100", "room1000", "room1000Json"],
      backends: ["embedded", "postgres"],
    },
  },
};

export interface Ctx {
  profile: Profile;
  runId: string;
  keyFile: string;
  signer: DevSigner;
  cpuProfileDir?: string;
  log(msg: string): void;
  /** Databases, queue names and processes to remove at the end, whatever happens. */
  cleanup: (() => Promise<unknown>)[];
  dbNames: string[];
  /** Extra processes whose CPU counts (the orchestrator itself). */
  extraTracked: Tracked[];
  cpu: CpuMeter;
}

export function newCtx(profile: Profile, keyFile: string, signer: DevSigner, log: (m: string) => void): Ctx {
  const ctx: Ctx = {
    profile,
    runId: `bench_${process.pid}_${randomBytes(3).toString("hex")}`,
    keyFile,
    signer,
    log,
    cleanup: [],
    dbNames: [],
    extraTracked: [{ label: "bench orchestrator", pid: process.pid, generator: true }],
    cpu: undefined as unknown as CpuMeter,
  };
  ctx.cpu = new CpuMeter(
    () => [...ctx.extraTracked, ...runningChildren().map((c) => c.tracked())],
    () => ctx.dbNames,
  );
  return ctx;
}

let counter = 0;

/** A fresh database (dropped at the end of the run). */
export async function freshDb(ctx: Ctx, suffix: string) {
  const db = await createDatabase(`${ctx.runId}_${suffix}`);
  ctx.dbNames.push(db.name);
  ctx.cleanup.push(() => db.drop());
  return db;
}

/** A queue name of its own (NATS stream / Redis key prefix), removed at the end of the run. */
export function queueName(ctx: Ctx, backend: Backend): string {
  const name = `${ctx.runId}_q${++counter}`;
  if (backend === "nats") ctx.cleanup.push(() => deleteNatsStream(name));
  // The registry lives in Redis whatever the queue backend (CACHE_URI), under `<name>:registry`.
  ctx.cleanup.push(() => deleteRedisKeys(name));
  return name;
}

export const queueUri = (b: Backend) => (b === "mem" ? "mem://" : b === "nats" ? NATS : REDIS);

export interface ServerSpec {
  name: string;
  dbUri?: string;
  backend: Backend;
  queue: string;
  services?: string;
  chatServiceUri?: string;
  cache?: "mem" | "redis";
  env?: Record<string, string>;
  /** Pins the server to these CPUs (`taskset -c`), e.g. "0". */
  cpus?: string;
}

export const DB_POOL_SIZE = 16;

/** The settings every server of the run gets (recorded in the results). */
export function serverEnv(ctx: Ctx, s: ServerSpec): Record<string, string> {
  return {
    ...(s.dbUri ? { DB_URI: s.dbUri } : {}),
    DB_POOL_SIZE: String(DB_POOL_SIZE),
    QUEUE_USER_EVENT_DELIVERY_URI: queueUri(s.backend),
    QUEUE_USER_EVENT_DELIVERY_NAME: s.queue,
    CACHE_URI: s.cache === "mem" ? "mem://" : REDIS,
    DEV_SIGNER_KEY_FILE: ctx.keyFile,
    LOG_LEVEL: "warn",
    SHUTDOWN_GRACE_SEC: "2",
    // The benchmark measures capacity: its few callers send far beyond a person's per-caller limits.
    API_RATE_SEND_EVENTS_PER_SEC: "0",
    API_RATE_ROOMS_PER_MIN: "0",
    API_RATE_MEMBERSHIP_PER_MIN: "0",
    ...(s.services ? { SERVICES: s.services } : {}),
    ...(s.chatServiceUri ? { CHAT_SERVICE_URI: s.chatServiceUri } : {}),
    ...s.env,
  };
}

export function launch(ctx: Ctx, s: ServerSpec): Promise<Server> {
  const flags = ctx.cpuProfileDir ? ["--cpu-prof", "--cpu-prof-dir", ctx.cpuProfileDir] : [];
  return startServer(s.name, serverEnv(ctx, s), flags, s.cpus);
}

/** Measures CPU of every process around `fn`. */
export async function withCpu<T>(ctx: Ctx, fn: () => Promise<T>): Promise<{ result: T; cpu: CpuReport }> {
  ctx.cpu.begin();
  const result = await fn();
  return { result, cpu: ctx.cpu.end() };
}

export type { Child };
