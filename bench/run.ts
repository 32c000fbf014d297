/**
 * The benchmark suite: `npm run bench` (quick profile) or `npm run bench -- --full`.
 * Options: --only=send,fanout,rooms,storm,idle,connect,backends,path  --path-series=rooms,room100,…
 * --path-backends=raw,embedded,postgres (some of the path scenario)  --path-rates=1000,2000 (these
 * rates only)  --idle-heartbeat-sec=N (the idle gateways' heartbeat, to see heartbeat CPU in a short
 * hold)  --idle-heap-snapshots (heap snapshots of the idle scenario's servers in
 * .tmp/heap-snapshots, for bench/heapsnapshot-diff.ts)  --idle-levels=N,M (the idle scenario's
 * connection counts instead of the profile's)  --cpu-prof (servers write .cpuprofile files to
 * .tmp/bench-profiles)  --out=DIR (default bench/results)  --name=LABEL (result files named
 * <date>-<profile>-LABEL)  --report=FILE.json (rewrite the report of an earlier run).
 *
 * Every server and generator is a process of its own; everything the run starts (processes,
 * databases, NATS streams, Redis keys) is removed at the end, also after a failure or Ctrl-C.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDevSigner } from "@service-chat/core";
import { type Ctx, freshDb, launch, newCtx, PROFILES, queueName, serverEnv } from "./lib/context.js";
import { environment, sweepStale } from "./lib/infra.js";
import { killAllNow, ROOT, stopAll } from "./lib/proc.js";
import { writeReport } from "./lib/report.js";
import { backends } from "./scenarios/backends.js";
import { connectRate } from "./scenarios/connect.js";
import { fanOut } from "./scenarios/fanout.js";
import { idle } from "./scenarios/idle.js";
import { messagePath } from "./scenarios/path.js";
import { manyRooms } from "./scenarios/rooms.js";
import { pgbenchBaselines, sendPath } from "./scenarios/send.js";
import { storm } from "./scenarios/storm.js";

const argv = process.argv.slice(2);
const opt = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const chosen = PROFILES[argv.includes("--full") ? "full" : "quick"];
// --path-series=rooms,room100,room1000,room1000Json and --path-backends=embedded,postgres pick
// some of the message-path scenario's series.
const heartbeat = opt("idle-heartbeat-sec");
const profile = {
  ...chosen,
  idle: {
    ...chosen.idle,
    ...(heartbeat ? { heartbeatSec: Number(heartbeat) } : {}),
    ...(opt("idle-levels") ? { levels: (opt("idle-levels") as string).split(",").map(Number) } : {}),
    ...(argv.includes("--idle-heap-snapshots") ? { heapSnapshotDir: join(ROOT, ".tmp/heap-snapshots") } : {}),
  },
  path: {
    ...chosen.path,
    series: (opt("path-series")?.split(",") as typeof chosen.path.series | undefined) ?? chosen.path.series,
    backends: (opt("path-backends")?.split(",") as typeof chosen.path.backends | undefined) ?? chosen.path.backends,
    rates: pathRates(opt("path-rates")) ?? chosen.path.rates,
  },
};
/** --path-rates=1000,2000: these rates, in this order, for every series run (a before/after check of a few steps). */
function pathRates(list: string | undefined): typeof chosen.path.rates | undefined {
  if (!list) return undefined;
  const rates = list.split(",").map(Number);
  if (rates.some((r) => !Number.isFinite(r) || r <= 0)) {
    throw new Error(`--path-rates: expected positive numbers separated by commas, got ${list}`);
  }
  return { rooms: rates, room100: rates, room1000: rates, room1000Json: rates };
}
const ALL = ["send", "fanout", "rooms", "storm", "idle", "connect", "backends", "path"];
const only = new Set(opt("only")?.split(",") ?? ALL);
const outDir = opt("out") ?? join(ROOT, "bench/results");

// --report=FILE.json: write the Markdown report and charts of an earlier run again, and stop.
const again = opt("report");
if (again) {
  const earlier = JSON.parse(readFileSync(again, "utf8")) as Record<string, unknown>;
  const name = (earlier.profile as { name?: string } | undefined)?.name ?? profile.name;
  console.log(writeReport(outDir, name, earlier, earlier.label as string | undefined).join("\n"));
  process.exit(0);
}

const t0 = performance.now();
const log = (m: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);

const tmp = mkdtempSync(join(tmpdir(), "service-chat-bench-"));
const keyFile = join(tmp, "dev-signer.jwk");
const ctx: Ctx = newCtx(profile, keyFile, await createDevSigner(keyFile), log);
if (argv.includes("--cpu-prof")) {
  ctx.cpuProfileDir = join(ROOT, ".tmp/bench-profiles");
  mkdirSync(ctx.cpuProfileDir, { recursive: true });
}

let cleaning: Promise<void> | undefined;
/** Stops and removes everything the run started; every caller waits for the same, single pass. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAll();
    for (const step of ctx.cleanup.reverse()) {
      await step().catch((err: Error) => console.error(`cleanup: ${err.message}`));
    }
    rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping and cleaning up`);
    // The run itself then fails, writes what it measured and exits; this is the backstop.
    void cleanup().finally(() => setTimeout(() => process.exit(130), 5000).unref());
  });
}
process.once("exit", killAllNow);

const results: Record<string, unknown> = {};
let failure: unknown;
try {
  log(`profile ${profile.name}; run ${ctx.runId}`);
  for (const what of await sweepStale()) log(`removed ${what}, left by a run that was killed`);
  const env = await environment();
  log(`${env.cpuModel}, ${env.cores} cores, Node ${env.node}, load ${env.loadAverageAtStart}`);
  results.environment = env;
  results.profile = profile;
  if (opt("name")) results.label = opt("name");
  results.startedAt = new Date().toISOString();

  if (only.has("send")) results.pgbench = await pgbenchBaselines(ctx, tmp);

  if (only.has("send") || only.has("fanout") || only.has("rooms") || only.has("storm")) {
    const db = await freshDb(ctx, "main");
    const spec = { name: "service-chat", dbUri: db.uri, backend: "nats" as const, queue: queueName(ctx, "nats") };
    results.serverSettings = serverEnv(ctx, spec);
    const server = await launch(ctx, spec);
    try {
      if (only.has("send")) results.send = await sendPath(ctx, server);
      if (only.has("fanout")) {
        const fan = [];
        for (const size of profile.fanout.roomSizes) fan.push(await fanOut(ctx, server, size));
        results.fanout = fan;
      }
      if (only.has("storm")) results.storm = await storm(ctx, server, spec);
      // After the storm, so the storm's server holds no state from 2,000 more rooms and users.
      if (only.has("rooms")) results.rooms = await manyRooms(ctx, server);
    } finally {
      await server.proc.stop();
    }
  }
  if (only.has("idle")) results.idle = await idle(ctx);
  if (only.has("connect")) results.connect = await connectRate(ctx);
  if (only.has("backends")) results.backends = await backends(ctx, results);
  if (only.has("path")) results.path = await messagePath(ctx);
} catch (err) {
  failure = err;
  console.error(err);
} finally {
  log("cleaning up");
  await cleanup();
}

results.finishedAt = new Date().toISOString();
results.seconds = Math.round((performance.now() - t0) / 1000);
if (failure) results.error = failure instanceof Error ? failure.message : String(failure);
const files = writeReport(outDir, profile.name, results, opt("name"));
log(`wrote ${files.join(", ")}`);
process.exit(failure ? 1 : 0);
