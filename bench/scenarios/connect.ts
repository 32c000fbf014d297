import { sourceAddresses } from "../lib/addresses.js";
import { type Ctx, freshDb, launch, queueName, withCpu } from "../lib/context.js";
import type { CpuReport } from "../lib/cpu.js";
import { type Child, sleep, spawnNode, startGenerator } from "../lib/proc.js";
import { addCounts } from "../lib/setup.js";

export interface ConnectRun {
  target: "service-chat gateway" | "raw ws";
  devices: number;
  /** Connections being opened at once, over all device processes. */
  inFlight: number;
  connected: number;
  failed: number;
  firstError?: string;
  /** From the first connection attempt until the last device was live (the slowest device process). */
  seconds: number;
  /** Devices live ÷ seconds: new sessions per second through one process. */
  perSecond: number;
  /** Close codes seen (4010: refused as full). */
  closeCodes: Record<string, number>;
  cpu: CpuReport;
}

async function rate(
  ctx: Ctx,
  target: ConnectRun["target"],
  url: string,
  kind: "chat" | "raw",
  tag: string,
): Promise<ConnectRun> {
  const { devices: n, processes, concurrency } = ctx.profile.connect;
  const gens: Child[] = await Promise.all(
    Array.from({ length: processes }, (_, i) => startGenerator(`connect devices ${i + 1}`)),
  );
  try {
    const share = Math.ceil(n / processes);
    ctx.log(`connect ${target}: ${n} devices, ${concurrency * processes} at once`);
    const { result, cpu } = await withCpu(ctx, () =>
      Promise.all(
        gens.map((g, i) =>
          g.call<{ connected: number; failed: number; seconds: number; firstError?: string }>(
            "devices.connect",
            {
              url,
              kind,
              track: "none",
              keyFile: ctx.keyFile,
              users: Array.from(
                { length: Math.max(0, Math.min(share, n - i * share)) },
                (_, k) => `${tag}-${i * share + k}`,
              ),
              concurrency,
              localAddresses: sourceAddresses(share),
            },
            300_000,
          ),
        ),
      ),
    );
    const counts = await Promise.all(gens.map((g) => g.call<{ closeCodes: Record<string, number> }>("devices.count")));
    const closeCodes = addCounts(counts.map((c) => c.closeCodes));
    const connected = result.reduce((a, r) => a + r.connected, 0);
    const seconds = Math.max(...result.map((r) => r.seconds));
    const firstError = result.find((r) => r.firstError)?.firstError;
    const out: ConnectRun = {
      target,
      devices: n,
      inFlight: concurrency * processes,
      connected,
      failed: result.reduce((a, r) => a + r.failed, 0),
      ...(firstError ? { firstError } : {}),
      seconds,
      perSecond: connected / seconds,
      closeCodes,
      cpu,
    };
    ctx.log(`connect ${target}: ${connected} live in ${seconds.toFixed(2)} s, ${out.perSecond.toFixed(0)}/s`);
    await Promise.all(gens.map((g) => g.call("devices.close")));
    return out;
  } finally {
    await Promise.allSettled(gens.map((g) => g.stop()));
  }
}

/**
 * Connect rate: N new devices, each its own user with no room, open a WebSocket to one
 * gateway-only process (SERVICES=gateway, registry on Redis, ChatService forwarded to a Default
 * Service process), send hello with a token, and count once `synced` arrives — upgrade, hello,
 * token check, registry write, (empty) replay through Sync, `synced`. Against the raw `ws` server
 * accepting as many plain sockets, from the same device processes.
 */
export async function connectRate(ctx: Ctx): Promise<{ ours: ConnectRun; baseline: ConnectRun }> {
  const db = await freshDb(ctx, "connect");
  const queue = queueName(ctx, "nats");
  const def = await launch(ctx, {
    name: "default service (connect)",
    dbUri: db.uri,
    backend: "nats",
    queue,
    services: "api,relay,fanout",
  });
  let ours: ConnectRun;
  try {
    const gw = await launch(ctx, {
      name: "gateway (connect)",
      backend: "nats",
      queue,
      services: "gateway",
      chatServiceUri: def.grpcUrl,
      env: { MAX_CONNECTIONS: String(ctx.profile.connect.devices + 1000) },
    });
    try {
      await sleep(500);
      ours = await rate(ctx, "service-chat gateway", gw.wsUrl, "chat", `${ctx.runId}-connect`);
    } finally {
      await gw.proc.stop();
    }
  } finally {
    await def.proc.stop();
  }
  const base = spawnNode("raw ws connect", "baseline", "bench/baselines/ws-broadcast.ts", { probe: true });
  try {
    const port = Number((await base.once((m) => typeof m.listening === "number", 30_000)).listening);
    const baseline = await rate(ctx, "raw ws", `ws://127.0.0.1:${port}/`, "raw", `${ctx.runId}-connect-raw`);
    return { ours, baseline };
  } finally {
    await base.stop();
  }
}
