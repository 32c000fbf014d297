import { type Ctx, freshDb, launch, queueName, withCpu } from "../lib/context.js";
import type { CpuReport } from "../lib/cpu.js";
import { type Child, type MemoryReading, memoryAfterGc, sleep, spawnNode, startGenerator } from "../lib/proc.js";

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

export interface IdleRun {
  target: "service-chat gateway" | "raw ws";
  /** Server processes holding the connections, devices spread evenly (absent in older results: one). */
  processes?: number;
  /** Connections held at the reference reading `empty`. */
  reference: number;
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

async function measure(
  ctx: Ctx,
  target: IdleRun["target"],
  procs: Child[],
  urls: string[],
  kind: "chat" | "raw",
  tag: string,
): Promise<IdleRun> {
  const { levels, holdMs, perProcess } = ctx.profile.idle;
  const top = Math.max(...levels);
  const processes = Math.max(2, Math.ceil(top / perProcess));
  const gens = await Promise.all(Array.from({ length: processes }, (_, i) => startGenerator(`idle devices ${i + 1}`)));
  try {
    // The reference point is a warm process already holding a few connections: what a process
    // needs at start (modules, JIT, allocator pages) is not per connection.
    const reference = Math.max(100, Math.round(levels[0] ? levels[0] / 10 : 100));
    const out = {
      target,
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
          g.call<{ connected: number; failed: number; firstError?: string }>("devices.connect", {
            url: urls[0],
            urls,
            kind,
            track: "none",
            keyFile: ctx.keyFile,
            users: Array.from(
              { length: Math.max(0, Math.min(share, add - i * share)) },
              (_, k) => `${tag}-${have + i * share + k}`,
            ),
            concurrency: 64,
            // Each generator process uses a source address of its own: 28k ports each.
            localAddresses: [`127.0.0.${i + 2}`],
          }),
        ),
      );
      const connectSeconds = (performance.now() - started) / 1000;
      const failed = results.reduce((n, r) => n + r.failed, 0);
      if (failed > 0) ctx.log(`  ${failed} failed: ${results.find((r) => r.firstError)?.firstError}`);
      have = level;
      await sleep(1000);
      if (level === reference) {
        out.empty = await totalMemory(procs);
        continue;
      }
      const { cpu } = await withCpu(ctx, () => sleep(holdMs));
      const memory = await totalMemory(procs);
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
  const { gateways: count, levels } = ctx.profile.idle;
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
          env: { MAX_CONNECTIONS: String(perGateway) },
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
