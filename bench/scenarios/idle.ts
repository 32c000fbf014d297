import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { sourceAddresses } from "../lib/addresses.js";
import { type Ctx, freshDb, launch, queueName, withCpu } from "../lib/context.js";
import type { CpuReport } from "../lib/cpu.js";
import { Histogram, type Percentiles } from "../lib/hist.js";
import {
  type Child,
  heapSnapshot,
  type MemoryReading,
  memoryAfterGc,
  sleep,
  spawnNode,
  startGenerator,
} from "../lib/proc.js";
import { addCounts, chatAs, createRoom } from "../lib/setup.js";
import type { StepStats } from "../workers/devices.js";
import type { FanSendResult } from "../workers/send.js";
import { drain, nextStepId } from "./fanout.js";

/** How much RSS drifts between two readings of the same process after GC, on this kind of machine. */
const RSS_NOISE = 32 * 2 ** 20;

export interface IdleLevel {
  connections: number;
  connectSeconds: number;
  failed: number;
  memory: MemoryReading;
  /** (memory at this level − memory at the reference) / connections added since, bytes. */
  rssPerConnection: number;
  /**
   * False when RSS moved by less than what it moves by itself between two readings (freed pages
   * kept or returned by the allocator): with a few thousand connections only the heap figure holds.
   */
  rssMeasurable: boolean;
  heapPerConnection: number;
  /** CPU of the server process while holding the connections idle (heartbeats included in the full profile). */
  idleCpu: CpuReport;
}

/** Messages into a room of some of the idle devices while the others stay idle. */
export interface IdleRoomStep {
  members: number;
  /** Devices connected in all, the room's members among them. */
  connected: number;
  rate: number;
  sent: number;
  acked: number;
  /** Acknowledged messages × the room's members. */
  expected: number;
  received: number;
  duplicates: number;
  latency: Percentiles;
  /** Devices live in the device processes when the step began and when it ended (absent in older results). */
  liveAtStart?: number;
  liveAtEnd?: number;
  /** Close codes the device processes saw since they started, added up (absent in older results). */
  closeCodes?: Record<string, number>;
  firstError?: string;
  cpu: CpuReport;
}

export interface IdleRun {
  target: "service-chat gateway" | "raw ws";
  /** The gateways' heartbeat interval when not the default 30 s. */
  heartbeatSec?: number;
  /** Server processes holding the connections, devices spread evenly (absent in older results: one). */
  processes?: number;
  /** Connections held at the reference reading `empty`. */
  reference: number;
  /** A room of some of them gets messages while the rest idle (absent in older results; raw ws: in newer ones). */
  room?: IdleRoomStep;
  empty: MemoryReading;
  levels: IdleLevel[];
}

/** The memory of several processes after GC, added up. */
async function totalMemory(procs: Child[]): Promise<MemoryReading> {
  const readings = await Promise.all(procs.map((p) => memoryAfterGc(p)));
  const sum = (k: keyof MemoryReading) => readings.reduce((a, r) => a + r[k], 0);
  return {
    rss: sum("rss"),
    heapUsed: sum("heapUsed"),
    heapTotal: sum("heapTotal"),
    external: sum("external"),
    arrayBuffers: sum("arrayBuffers"),
  };
}

/** With --idle-heap-snapshots: a heap snapshot of each process, named for the target, the process and the level. */
async function snapshots(ctx: Ctx, procs: Child[], kind: string, level: number): Promise<void> {
  const dir = ctx.profile.idle.heapSnapshotDir;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  for (const [i, p] of procs.entries()) {
    const file = await heapSnapshot(p, join(dir, `${ctx.runId}-${kind}-${i + 1}-${level}.heapsnapshot`));
    ctx.log(`  heap snapshot ${file}`);
  }
}

/**
 * With every device connected: a room of the first `members` users, and messages into it at `rate`
 * for `stepMs` from another process, timed from send to each member's device (the others idle).
 * Service Chat: a room created with SendEvent's sender as its owner. Raw ws: each server writes the
 * frames to the first members/servers devices to have connected to it.
 */
async function roomStep(
  ctx: Ctx,
  gens: Child[],
  target: { kind: "chat"; chatUrl: string } | { kind: "raw"; urls: string[] },
  tag: string,
  connected: number,
): Promise<IdleRoomStep> {
  const { members, rate, stepMs, drainMs } = ctx.profile.idle.room;
  const owner = `${tag}-0`;
  let k = Math.min(members, connected);
  let send: { url: string; urls?: string[]; roomId: string };
  if (target.kind === "chat") {
    const roomId = await createRoom(
      chatAs(target.chatUrl, ctx.signer, owner),
      `${tag} room`,
      Array.from({ length: k - 1 }, (_, i) => `${tag}-${i + 1}`),
    );
    send = { url: target.chatUrl, roomId };
  } else {
    const share = Math.ceil(k / target.urls.length);
    k = share * target.urls.length;
    const urls = target.urls.map((u) => `${u}send?to=${share}`);
    send = { url: urls[0] as string, urls, roomId: `${tag}-room` };
  }
  const sender = await startGenerator("idle room sender");
  try {
    const id = nextStepId();
    const begun = await Promise.all(
      gens.map((g) =>
        g.call<{ devices: number }>("devices.stepBegin", { id, maxMsgs: Math.ceil((rate * stepMs) / 1000) + 16 }),
      ),
    );
    ctx.log(`idle: ${rate} msg/s into a room of ${k} of the ${connected} idle devices`);
    const { result, cpu } = await withCpu(ctx, async () => {
      const sent = await sender.call<FanSendResult>("fan.send", {
        kind: target.kind,
        ...send,
        user: owner,
        keyFile: ctx.keyFile,
        step: id,
        rate,
        durationMs: stepMs,
        bodyBytes: ctx.profile.send.bodyBytes,
      });
      const stats: StepStats[] = await drain(gens, sent.acked * k, drainMs);
      return { sent, stats };
    });
    const hist = Histogram.of(result.stats.map((st) => st.hist));
    const closeCodes = addCounts(result.stats.map((st) => st.closeCodes));
    return {
      members: k,
      connected,
      rate,
      sent: result.sent.sent,
      acked: result.sent.acked,
      expected: result.sent.acked * k,
      received: result.stats.reduce((n, st) => n + st.received, 0),
      duplicates: result.stats.reduce((n, st) => n + st.dups, 0),
      latency: hist.summary(),
      liveAtStart: begun.reduce((n, b) => n + b.devices, 0),
      liveAtEnd: result.stats.reduce((n, st) => n + st.live, 0),
      closeCodes,
      ...(result.sent.firstError ? { firstError: result.sent.firstError } : {}),
      cpu,
    };
  } finally {
    await sender.stop();
  }
}

async function measure(
  ctx: Ctx,
  target: IdleRun["target"],
  procs: Child[],
  urls: string[],
  kind: "chat" | "raw",
  tag: string,
  chatUrl?: string,
): Promise<IdleRun> {
  const { levels, holdMs, perProcess } = ctx.profile.idle;
  const top = Math.max(...levels);
  const processes = Math.max(2, Math.ceil(top / perProcess));
  const gens = await Promise.all(Array.from({ length: processes }, (_, i) => startGenerator(`idle devices ${i + 1}`)));
  try {
    // The reference point is a warm process already holding a few connections: what a process
    // needs at start (modules, JIT, allocator pages) is not per connection.
    const reference = Math.max(100, Math.round(levels[0] ? levels[0] / 10 : 100));
    const out: IdleRun = {
      target,
      ...(kind === "chat" && ctx.profile.idle.heartbeatSec ? { heartbeatSec: ctx.profile.idle.heartbeatSec } : {}),
      processes: procs.length,
      empty: undefined as unknown as MemoryReading,
      reference,
      levels: [] as IdleLevel[],
    };
    let have = 0;
    for (const level of [reference, ...levels]) {
      const add = level - have;
      const share = Math.ceil(add / processes);
      ctx.log(`idle ${target}: ${have} → ${level} connections`);
      const started = performance.now();
      const results = await Promise.all(
        gens.map((g, i) =>
          g.call<{ connected: number; failed: number; firstError?: string }>(
            "devices.connect",
            {
              url: urls[0],
              urls,
              kind,
              // Marked messages are timed (the room step); an idle device's frames cost nothing more.
              track: "latency",
              keyFile: ctx.keyFile,
              users: Array.from(
                { length: Math.max(0, Math.min(share, add - i * share)) },
                (_, k) => `${tag}-${have + i * share + k}`,
              ),
              concurrency: 64,
              // Each generator process uses source addresses of its own (lib/addresses.ts).
              localAddresses: sourceAddresses(share),
            },
            // On a busy machine connects go at ~100/s: a bound of 0.2 s per device of the share,
            // not the default 10 minutes, which 50,000 more devices can take.
            Math.max(600_000, share * 200),
          ),
        ),
      );
      const connectSeconds = (performance.now() - started) / 1000;
      const failed = results.reduce((n, r) => n + r.failed, 0);
      if (failed > 0) ctx.log(`  ${failed} failed: ${results.find((r) => r.firstError)?.firstError}`);
      have = level;
      await sleep(1000);
      if (level === reference) {
        out.empty = await totalMemory(procs);
        await snapshots(ctx, procs, kind, level);
        continue;
      }
      const { cpu } = await withCpu(ctx, () => sleep(holdMs));
      const memory = await totalMemory(procs);
      await snapshots(ctx, procs, kind, level);
      const added = level - failed - reference;
      out.levels.push({
        connections: level - failed,
        connectSeconds,
        failed,
        memory,
        rssPerConnection: (memory.rss - out.empty.rss) / added,
        rssMeasurable: Math.abs(memory.rss - out.empty.rss) >= RSS_NOISE,
        heapPerConnection: (memory.heapUsed - out.empty.heapUsed) / added,
        idleCpu: cpu,
      });
    }
    const last = out.levels.at(-1);
    if (last) {
      const room = chatUrl ? ({ kind: "chat", chatUrl } as const) : ({ kind: "raw", urls } as const);
      out.room = await roomStep(ctx, gens, room, tag, last.connections);
    }
    await Promise.all(gens.map((g) => g.call("devices.close")));
    return out;
  } finally {
    await Promise.allSettled(gens.map((g) => g.stop()));
  }
}

/**
 * Scenario 4: memory per idle connection. Gateway-only processes (SERVICES=gateway, registry on
 * Redis) in front of a Default Service process, the devices spread evenly over them, each process
 * under its 20,000 open files; their RSS and heap after GC, added up, with a few and with N idle
 * devices (authenticated, registered, replayed); then as many raw `ws` servers with N sockets.
 */
export async function idle(ctx: Ctx): Promise<{ ours: IdleRun; baseline: IdleRun }> {
  const { gateways: count, levels, heartbeatSec } = ctx.profile.idle;
  const perGateway = Math.ceil(Math.max(...levels) / count) + 1000;
  const db = await freshDb(ctx, "idle");
  const queue = queueName(ctx, "nats");
  const def = await launch(ctx, {
    name: "default service (idle)",
    dbUri: db.uri,
    backend: "nats",
    queue,
    services: "api,relay,fanout",
  });
  let ours: IdleRun;
  try {
    const gws = await Promise.all(
      Array.from({ length: count }, (_, g) =>
        launch(ctx, {
          name: `gateway (idle) ${g + 1}`,
          backend: "nats",
          queue,
          services: "gateway",
          chatServiceUri: def.grpcUrl,
          env: {
            MAX_CONNECTIONS: String(perGateway),
            ...(heartbeatSec ? { HEARTBEAT_INTERVAL_SEC: String(heartbeatSec) } : {}),
          },
        }),
      ),
    );
    try {
      ours = await measure(
        ctx,
        "service-chat gateway",
        gws.map((g) => g.proc),
        gws.map((g) => g.wsUrl),
        "chat",
        `${ctx.runId}-idle`,
        def.grpcUrl,
      );
    } finally {
      await Promise.allSettled(gws.map((g) => g.proc.stop()));
    }
  } finally {
    await def.proc.stop();
  }
  const bases = Array.from({ length: count }, (_, g) =>
    spawnNode(`raw ws idle ${g + 1}`, "baseline", "bench/baselines/ws-broadcast.ts", { probe: true }),
  );
  try {
    const ports = await Promise.all(
      bases.map(async (b) => Number((await b.once((m) => typeof m.listening === "number", 30_000)).listening)),
    );
    const baseline = await measure(
      ctx,
      "raw ws",
      bases,
      ports.map((p) => `ws://127.0.0.1:${p}/`),
      "raw",
      `${ctx.runId}-idle-raw`,
    );
    return { ours, baseline };
  } finally {
    await Promise.allSettled(bases.map((b) => b.stop()));
  }
}
