import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Ctx, freshDb, launch, type PathProfile, queueName, type ServerSpec } from "../lib/context.js";
import { LOAD_CPU, type Pinned, pinRunning, pinSelf, restoreAll, SERVER_CPU } from "../lib/pin.js";
import { type Child, type Server, sleep, spawnNode, startGenerator } from "../lib/proc.js";
import { chatAsMany, createRoom, mapPool } from "../lib/setup.js";
import { KEEP_UP, type PathStep, runStep } from "./path-step.js";

/**
 * Scenario "path": the per-message path measured on one core (performance.md, "The message path,
 * measured on one core"). Every server process — Service Chat, and PostgreSQL, NATS and Redis
 * when the series uses them — runs on CPU 0; the devices and the orchestrator on CPU 1. Devices
 * are WebSocket device streams that send `send` frames on their own stream, open loop, and
 * receive every event of their room. Each series ramps its rate until one does not keep up
 * (path-step.ts), on a fresh server: the embedded default (PGlite + mem:// queue + in-memory
 * registry, one process) and PostgreSQL (a fresh database, NATS JetStream, Redis registry, one
 * process with every role); on request (`--path-backends=raw`), the raw baseline: the same frames
 * over `ws` alone (bench/baselines/ws-rooms.ts), pinned the same way.
 */

export type SeriesKey = keyof PathProfile["rates"];
export type PathBackend = PathProfile["backends"][number];

interface SeriesSpec {
  key: SeriesKey;
  title: string;
  rooms: number;
  members: number;
  /** Every member sends (series 1), or one device of the room. */
  everyoneSends: boolean;
  json: boolean;
}

export const SERIES: SeriesSpec[] = [
  {
    key: "rooms",
    title: "200 rooms × 10, every member sends",
    rooms: 200,
    members: 10,
    everyoneSends: true,
    json: false,
  },
  {
    key: "room100",
    title: "one device sending into a room of 100",
    rooms: 1,
    members: 100,
    everyoneSends: false,
    json: false,
  },
  {
    key: "room1000",
    title: "one device sending into a room of 1,000",
    rooms: 1,
    members: 1000,
    everyoneSends: false,
    json: false,
  },
  {
    key: "room1000Json",
    title: "one device sending into a room of 1,000, `json` subprotocol",
    rooms: 1,
    members: 1000,
    everyoneSends: false,
    json: true,
  },
];

/** Server settings of this scenario beside the run's: the per-connection frame limit is raised for senders of up to thousands of frames/s. */
export const PATH_SERVER_ENV = { MAX_EVENTS_PER_SECOND: "100000" };

export interface PathSeries {
  key: SeriesKey;
  title: string;
  backend: PathBackend;
  json: boolean;
  rooms: number;
  members: number;
  devices: number;
  senders: number;
  setupSeconds: { server: number; rooms: number; connect: number };
  connectFailed: number;
  /** RSS of the embedded default: when ready, and after the series. */
  rss?: { ready: number; after: number };
  steps: PathStep[];
  /** The highest rate kept up (0: none), and whether every rate of the ramp was (then it is a lower bound). */
  maxKeptUpRate: number;
  allKeptUp: boolean;
  error?: string;
}

export interface PathRun {
  keepUp: typeof KEEP_UP;
  settings: PathProfile;
  serverEnv: Record<string, string>;
  /** Running servers pinned to CPU 0 for the PostgreSQL series. */
  pinned: Pinned[];
  series: PathSeries[];
}

interface Device {
  user: string;
  roomId: string;
  sends: boolean;
}

/** The rooms of a series and their members' devices (room r of series 1: users r-m0 … r-m9, created by r-m0). */
async function createRooms(ctx: Ctx, server: Server | undefined, spec: SeriesSpec, tag: string): Promise<Device[]> {
  if (!server) {
    // The raw baseline has no rooms to create: a device's user name says its room (ws-rooms.ts).
    return Array.from({ length: spec.rooms }, (_, r) =>
      Array.from({ length: spec.members }, (_, k) => ({
        user: `${tag}-r${r}-m${k}`,
        roomId: `${tag}-r${r}`,
        sends: spec.everyoneSends || k === 0,
      })),
    ).flat();
  }
  const { chat, as } = chatAsMany(server.grpcUrl, ctx.signer);
  const rooms = await mapPool(
    Array.from({ length: spec.rooms }, (_, r) => r),
    16,
    async (r) => {
      const users = Array.from({ length: spec.members }, (_, k) => `${tag}-r${r}-m${k}`);
      const roomId = await createRoom(chat, `${tag} ${r}`, users.slice(1), await as(users[0] as string));
      return users.map((user, k) => ({ user, roomId, sends: spec.everyoneSends || k === 0 }));
    },
  );
  return rooms.flat();
}

/**
 * The device processes: series 1 spreads every room's members over `deviceProcesses` processes
 * (member k of room r on process (10r + k) mod n), each sending for its own devices in turn,
 * listed member by member across the rooms so that consecutive messages go to different rooms;
 * the other series put the sender alone in a process of its own and the receivers in the rest.
 */
function assign(spec: SeriesSpec, devices: Device[], n: number): Device[][] {
  if (spec.everyoneSends) {
    const out: Device[][] = Array.from({ length: n }, () => []);
    for (let k = 0; k < spec.members; k++) {
      for (let r = 0; r < spec.rooms; r++) {
        const i = r * spec.members + k;
        out[i % n]?.push(devices[i] as Device);
      }
    }
    return out;
  }
  const receivers = devices.filter((d) => !d.sends);
  const share = Math.ceil(receivers.length / n);
  return [
    devices.filter((d) => d.sends),
    ...Array.from({ length: n }, (_, i) => receivers.slice(i * share, (i + 1) * share)),
  ];
}

async function series(ctx: Ctx, spec: SeriesSpec, backend: PathBackend, scratch: string): Promise<PathSeries> {
  const p = ctx.profile.path;
  const index = SERIES.indexOf(spec) + 1;
  const tag = `${ctx.runId}-p${backend[0]}${index}`;
  const name = backend === "raw" ? `raw ws rooms ${index}` : `service-chat path ${backend} ${index}`;
  const out: PathSeries = {
    key: spec.key,
    title: spec.title,
    backend,
    json: spec.json,
    rooms: spec.rooms,
    members: spec.members,
    devices: spec.rooms * spec.members,
    senders: spec.everyoneSends ? spec.rooms * spec.members : 1,
    setupSeconds: { server: 0, rooms: 0, connect: 0 },
    connectFailed: 0,
    steps: [],
    maxKeptUpRate: 0,
    allKeptUp: false,
  };
  const serverSpec: ServerSpec | undefined =
    backend === "raw"
      ? undefined
      : backend === "embedded"
        ? {
            name,
            dbUri: `pglite://${join(scratch, `series-${index}`)}`,
            backend: "mem",
            cache: "mem",
            queue: queueName(ctx, "mem"),
            env: PATH_SERVER_ENV,
            cpus: SERVER_CPU.list,
          }
        : {
            name,
            dbUri: (await freshDb(ctx, `path_${index}`)).uri,
            backend: "nats",
            cache: "redis",
            queue: queueName(ctx, "nats"),
            env: PATH_SERVER_ENV,
            cpus: SERVER_CPU.list,
          };
  let t = performance.now();
  const lap = () => {
    const s = (performance.now() - t) / 1000;
    t = performance.now();
    return Math.round(s * 10) / 10;
  };
  const procs: Child[] = [];
  let server: Server | undefined;
  let raw: Child | undefined;
  try {
    ctx.log(`path ${backend}: ${spec.title}: starting the server`);
    let url: string;
    if (serverSpec) {
      server = await launch(ctx, serverSpec);
      url = server.wsUrl;
    } else {
      raw = spawnNode(name, "baseline", "bench/baselines/ws-rooms.ts", { cpus: SERVER_CPU.list });
      url = `ws://127.0.0.1:${Number((await raw.once((m) => typeof m.listening === "number", 120_000)).listening)}/`;
    }
    if (backend === "embedded" && server) out.rss = { ready: server.proc.rss() ?? Number.NaN, after: Number.NaN };
    out.setupSeconds.server = lap();
    const devices = await createRooms(ctx, server, spec, tag);
    out.setupSeconds.rooms = lap();
    const groups = assign(spec, devices, p.deviceProcesses);
    procs.push(
      ...(await Promise.all(groups.map((_, i) => startGenerator(`path devices ${index}.${i + 1}`, LOAD_CPU.list)))),
    );
    ctx.log(`path ${backend}: connecting ${devices.length} devices${spec.json ? " (json)" : ""}`);
    const connected = await Promise.all(
      procs.map((c, i) =>
        c.call<{ failed: number; firstError?: string }>(
          "stream.connect",
          { url, keyFile: ctx.keyFile, json: spec.json, devices: groups[i], concurrency: 100 },
          300_000,
        ),
      ),
    );
    out.setupSeconds.connect = lap();
    out.connectFailed = connected.reduce((n, c) => n + c.failed, 0);
    if (out.connectFailed) ctx.log(`  ${out.connectFailed} failed: ${connected.find((c) => c.firstError)?.firstError}`);
    const senders = groups.map((g) => g.filter((d) => d.sends).length);
    const total = senders.reduce((a, b) => a + b, 0);
    for (const rate of p.rates[spec.key]) {
      const s = await runStep(ctx, {
        rate,
        procs,
        shares: senders.map((n) => n / total),
        serverLabels: [name],
        pinnedInfra: backend === "postgres",
      });
      out.steps.push(s);
      ctx.log(
        `  ${rate} msgs/s: ${Math.round(s.deliveriesPerSecond)} of ${Math.round(s.offeredDeliveriesPerSecond)} ` +
          `deliveries/s, ${(s.deliveryRatio * 100).toFixed(2)} % delivered, p50/p95 ${s.latency.p50.toFixed(1)}/` +
          `${s.latency.p95.toFixed(1)} ms, server ${s.cores.server.toFixed(2)} db ${s.cores.database.toFixed(2)} ` +
          `CPU0 ${s.cpuBusy[0]} CPU1 ${s.cpuBusy[1]}: ${s.keptUp ? "kept up" : `did not keep up (${s.failed.join(", ")})`}`,
      );
      if (!s.keptUp) break;
      await sleep(500);
    }
    if (out.rss && server) out.rss.after = server.proc.rss() ?? Number.NaN;
  } catch (err) {
    out.error = err instanceof Error ? (err.message.split("\n")[0] as string) : String(err);
    ctx.log(`  series failed: ${out.error}`);
  } finally {
    await Promise.allSettled(procs.map((c) => c.call("stream.close", {}, 10_000)));
    await Promise.allSettled(procs.map((c) => c.stop()));
    await server?.proc.stop();
    if (raw && !raw.alive) ctx.log(`  the raw baseline exited:\n${raw.output()}`);
    await raw?.stop();
  }
  const kept = out.steps.filter((s) => s.keptUp);
  out.maxKeptUpRate = Math.max(0, ...kept.map((s) => s.rate));
  out.allKeptUp = out.steps.length > 0 && kept.length === out.steps.length;
  return out;
}

/** The scenario: every series on each backend of the profile, pinned as above. */
export async function messagePath(ctx: Ctx): Promise<PathRun> {
  const p = ctx.profile.path;
  const scratch = mkdtempSync(join(tmpdir(), "service-chat-bench-path-"));
  const cleanup = async () => restoreAll();
  ctx.cleanup.push(cleanup);
  const run: PathRun = {
    keepUp: KEEP_UP,
    settings: p,
    serverEnv: { ...PATH_SERVER_ENV },
    pinned: [],
    series: [],
  };
  pinSelf(LOAD_CPU.mask);
  try {
    for (const backend of p.backends) {
      if (backend === "postgres") {
        run.pinned = pinRunning(["postgres", "nats-server", "redis-server"], SERVER_CPU.mask);
        ctx.log(`path: pinned to CPU 0: ${run.pinned.map((x) => `${x.name} (${x.processes})`).join(", ")}`);
      }
      try {
        for (const spec of SERIES.filter((x) => p.series.includes(x.key))) {
          run.series.push(await series(ctx, spec, backend, scratch));
        }
      } finally {
        restoreAll();
        pinSelf(LOAD_CPU.mask);
      }
    }
  } finally {
    restoreAll();
    rmSync(scratch, { recursive: true, force: true });
  }
  return run;
}
