import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { migrate, openDatabase } from "@service-chat/core";
import { type Ctx, freshDb, withCpu } from "../lib/context.js";
import type { CpuReport } from "../lib/cpu.js";
import { Histogram, median, type Percentiles } from "../lib/hist.js";
import { Child, metric, ROOT, type Server, sleep, spawnNode, startGenerator } from "../lib/proc.js";
import { type BucketPercentiles, histogramDelta, percentilesMs, readHistogram } from "../lib/prometheus.js";
import { chatAs, createRoom, mapPool } from "../lib/setup.js";
import type { SendResult } from "../workers/send.js";

const MIGRATIONS = join(ROOT, "apps/default/src/db/migrations");

export interface PgbenchResult {
  script: string;
  rowsPerTransaction: number;
  tps: number;
  rowsPerSecond: number;
  latencyAvgMs: number;
  clients: number;
  seconds: number;
  cpu: CpuReport;
}

/** Text of the same size and shape as a benchmark message body. */
const BODY = `B|0|123456|1712345678901.123|${"x".repeat(70)}`;

const eventValues = (room: string) =>
  `('pgb-' || nextval('pgb_seq'), ${room}, currval('pgb_seq'), 'pgb-user', '', 'text', ` +
  `'{"body":"${BODY}"}', 'c-' || currval('pgb_seq'), now(), now(), to_tsvector('simple', '${BODY}'))`;

const EVENT_COLUMNS =
  "(id, room_id, seq, sender_id, sender_contact_id, type, content, client_id, sent_at, server_ts, search)";

/** pgbench scripts: the INSERT of one message as Service Chat writes it (same table, columns, indexes). */
export function scripts(dir: string) {
  const room = `'pgb-' || :client_id`;
  const one = join(dir, "insert-1.sql");
  writeFileSync(one, `INSERT INTO room_events ${EVENT_COLUMNS} VALUES ${eventValues(room)};\n`);
  const hundred = join(dir, "insert-100.sql");
  writeFileSync(
    hundred,
    `INSERT INTO room_events ${EVENT_COLUMNS} VALUES ${Array.from({ length: 100 }, () => eventValues(room)).join(", ")};\n`,
  );
  // One text event sent in a transaction of its own, as SendEvent did before group commit: lock the
  // room and read the sender's role, look up the client id, then one statement storing the event,
  // its outbox row, the room's seq and the sender's read marker. The ceiling of a transaction per
  // call, which group commit (apps/default/src/events/committer.ts) is there to beat.
  const tx = join(dir, "send-transaction.sql");
  const txRoom = `'pgbt-' || :client_id`;
  const returning =
    "id, room_id, seq, sender_id, sender_contact_id, type, content, parent_id, client_id, edited, redacted, sent_at, server_ts";
  writeFileSync(
    tx,
    [
      "BEGIN;",
      `SELECT r.last_seq + 1 AS next, s.role AS member_role FROM rooms AS r LEFT JOIN room_subscriptions AS s ON s.room_id = r.id AND s.profile_id = 'pgb-user' AND s.state = 'active' WHERE r.id = ${txRoom} AND r.deleted_at IS NULL FOR UPDATE OF r \\gset`,
      `SELECT ${returning} FROM room_events WHERE room_id = ${txRoom} AND sender_id = 'pgb-user' AND client_id IN ('c-x' || :next);`,
      `WITH e AS (INSERT INTO room_events ${EVENT_COLUMNS} VALUES ('pgbt-' || :client_id || '-' || :next, ${txRoom}, :next, 'pgb-user', '', 'text', '{"body":"${BODY}"}', 'c-x' || :next, now(), now(), to_tsvector('simple', '${BODY}')) RETURNING ${returning}), ` +
        "o AS (INSERT INTO outbox (event_id, room_id, seq) SELECT e.id, e.room_id, e.seq FROM e ORDER BY e.seq), " +
        `r AS (UPDATE rooms SET last_seq = :next, members_seq = members_seq WHERE id = ${txRoom}), ` +
        `s AS (UPDATE room_subscriptions SET read_seq = :next WHERE room_id = ${txRoom} AND profile_id = 'pgb-user' AND read_seq < :next) ` +
        "SELECT * FROM e ORDER BY seq;",
      "END;",
      "",
    ].join("\n"),
  );
  return { one, hundred, tx };
}

async function pgbench(ctx: Ctx, dbUri: string, script: string, rows: number, label: string): Promise<PgbenchResult> {
  const { pgbenchSeconds: seconds, pgbenchClients: clients } = ctx.profile.send;
  const url = new URL(dbUri);
  const args = [
    "-n",
    "-c",
    String(clients),
    "-j",
    "2",
    "-T",
    String(seconds),
    "-f",
    script,
    "-h",
    url.hostname,
    "-p",
    url.port || "5432",
    "-U",
    decodeURIComponent(url.username || "postgres"),
    url.pathname.slice(1),
  ];
  const { result: out, cpu } = await withCpu(ctx, async () => {
    const p = new Child(`pgbench ${label}`, "tool", spawn("pgbench", args, { stdio: ["ignore", "pipe", "pipe"] }));
    const code = await p.exited;
    if (code !== 0) throw new Error(`pgbench failed (${code}):\n${p.output()}`);
    return p.output();
  });
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1]);
  const latency = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1]);
  if (!Number.isFinite(tps)) throw new Error(`could not read pgbench's output:\n${out}`);
  return {
    script: label,
    rowsPerTransaction: rows,
    tps,
    rowsPerSecond: tps * rows,
    latencyAvgMs: latency,
    clients,
    seconds,
    cpu,
  };
}

/** The pgbench baselines, in a migrated database of their own (no server listens to it). */
export async function pgbenchBaselines(ctx: Ctx, tmpDir: string) {
  const db = await freshDb(ctx, "pgbench");
  const database = await openDatabase(db.uri, { poolSize: 2 });
  try {
    await migrate(database.db as never, MIGRATIONS);
  } finally {
    await database.close();
  }
  const pg = (await import("pg")).default;
  const c = new pg.Client({ connectionString: db.uri });
  await c.connect();
  try {
    await c.query("create sequence pgb_seq");
    const n = ctx.profile.send.pgbenchClients;
    for (let i = 0; i < n; i++) {
      for (const room of [`pgb-${i}`, `pgbt-${i}`]) {
        await c.query(
          `insert into rooms (id, type, name, creator_id) values ('${room}', 'group', 'pgbench', 'pgb-user')`,
        );
        await c.query(
          `insert into room_subscriptions (room_id, profile_id, role) values ('${room}', 'pgb-user', 'owner')`,
        );
      }
    }
  } finally {
    await c.end();
  }
  const s = scripts(tmpDir);
  const runs = {
    oneRow: [] as PgbenchResult[],
    hundredRows: [] as PgbenchResult[],
    transaction: [] as PgbenchResult[],
  };
  for (let r = 0; r < ctx.profile.repeats; r++) {
    ctx.log(`pgbench: 1-row INSERT per transaction (${r + 1}/${ctx.profile.repeats})`);
    runs.oneRow.push(await pgbench(ctx, db.uri, s.one, 1, "1-row INSERT"));
    ctx.log(`pgbench: 100-row multi-VALUES INSERT (${r + 1}/${ctx.profile.repeats})`);
    runs.hundredRows.push(await pgbench(ctx, db.uri, s.hundred, 100, "100-row INSERT"));
    ctx.log(`pgbench: one send per transaction (${r + 1}/${ctx.profile.repeats})`);
    runs.transaction.push(await pgbench(ctx, db.uri, s.tx, 1, "SendEvent transaction"));
  }
  const pick = (xs: PgbenchResult[]) => {
    const m = median(xs.map((x) => x.rowsPerSecond));
    return { ...(xs.find((x) => x.rowsPerSecond === m) ?? xs[0]), median: m, runs: xs.map((x) => x.rowsPerSecond) };
  };
  return { oneRow: pick(runs.oneRow), hundredRows: pick(runs.hundredRows), transaction: pick(runs.transaction) };
}

export interface SendStep {
  label: string;
  mode: "closed" | "open";
  batch: number;
  concurrency: number;
  offeredRate?: number;
  eventsPerSecond: number;
  callsPerSecond: number;
  /** Client-measured request latency of SendEvent (generator → server → generator), ms. */
  latency: Percentiles;
  /**
   * Server-side SendEvent latency (handler start → response, answered "ok"), ms, from the
   * server's chat_rpc_server_duration_seconds buckets over the same measured window; `errors` is
   * the calls it answered with another code. Absent from results of runs before the metric existed.
   */
  serverLatency?: BucketPercentiles & { errors: number };
  errors: number;
  refused: number;
  skipped: number;
  /** Seconds after the last answer until the relay had published every stored event. */
  publishDrainSeconds: number;
  /** Whether the relay published every stored event; absent for the no-op baseline (nothing is stored). */
  published?: boolean;
  cpu: CpuReport;
  firstError?: string;
  runs?: number[];
}

/** Sender users and one room each. */
export async function sendRooms(ctx: Ctx, server: Server, count: number, prefix: string) {
  return mapPool(
    Array.from({ length: count }, (_, i) => `${prefix}-${i}`),
    8,
    async (user) => {
      const roomId = await createRoom(chatAs(server.grpcUrl, ctx.signer, user), `${user} room`, []);
      return { user, roomId };
    },
  );
}

/** The server's own timing of SendEvent: what its histogram gained between two /metrics readings. */
export function serverLatency(m: { start: string; end: string } | undefined): SendStep["serverLatency"] {
  if (!m) return undefined;
  const read = (text: string, code?: string) =>
    readHistogram(text, "chat_rpc_server_duration_seconds", {
      rpc_service: "chat.v1.ChatService",
      rpc_method: "SendEvent",
      ...(code ? { rpc_code: code } : {}),
    });
  const ok = read(m.end, "ok");
  const all = read(m.end);
  if (!ok || !all) return undefined;
  try {
    const okDelta = histogramDelta(ok, read(m.start, "ok"));
    const allDelta = histogramDelta(all, read(m.start));
    return { ...percentilesMs(okDelta), errors: allDelta.count - okDelta.count };
  } catch {
    return undefined; // the two readings do not fit together: no figure rather than a wrong one
  }
}

/** Where a step's calls go: a Service Chat server (its relay is then waited for), or the no-op baseline. */
type Target = Server | { grpcUrl: string; httpUrl?: undefined };

async function step(
  ctx: Ctx,
  server: Target,
  gen: Child,
  label: string,
  args: {
    senders: { user: string; roomId: string }[];
    mode: "closed" | "open";
    batch: number;
    rate?: number;
    durationMs: number;
  },
): Promise<SendStep> {
  const p = ctx.profile.send;
  const httpUrl = server.httpUrl;
  const publishedBefore = httpUrl ? await metric(httpUrl, "chat_outbox_published_events_total") : 0;
  const { result, cpu } = await withCpu(ctx, () =>
    gen.call<SendResult>("send.run", {
      grpcUrl: server.grpcUrl,
      keyFile: ctx.keyFile,
      senders: args.senders,
      connections: p.connections,
      mode: args.mode,
      ...(args.rate ? { rate: args.rate } : {}),
      batch: args.batch,
      warmupMs: p.warmupMs,
      durationMs: args.durationMs,
      bodyBytes: p.bodyBytes,
      ...(httpUrl ? { metricsUrl: `${httpUrl}/metrics` } : {}),
    }),
  );
  const answeredAt = performance.now();
  let published = false;
  const want = publishedBefore + result.eventsTotal;
  while (httpUrl && performance.now() - answeredAt < 30_000) {
    if ((await metric(httpUrl, "chat_outbox_published_events_total")) >= want) {
      published = true;
      break;
    }
    await sleep(50);
  }
  const hist = Histogram.from(result.latency);
  return {
    label,
    mode: args.mode,
    batch: args.batch,
    concurrency: args.senders.length,
    ...(args.rate ? { offeredRate: args.rate * args.batch } : {}),
    eventsPerSecond: result.events / result.seconds,
    callsPerSecond: result.calls / result.seconds,
    latency: hist.summary(),
    ...(result.serverMetrics ? { serverLatency: serverLatency(result.serverMetrics) } : {}),
    errors: result.errors,
    refused: result.refused,
    skipped: result.skipped,
    publishDrainSeconds: httpUrl ? (performance.now() - answeredAt) / 1000 : 0,
    ...(httpUrl ? { published } : {}),
    cpu,
    ...(result.firstError ? { firstError: result.firstError } : {}),
  };
}

const medianStep = (steps: SendStep[]): SendStep => {
  const m = median(steps.map((s) => s.eventsPerSecond));
  const chosen = steps.reduce((a, b) => (Math.abs(b.eventsPerSecond - m) < Math.abs(a.eventsPerSecond - m) ? b : a));
  return { ...chosen, runs: steps.map((s) => s.eventsPerSecond) };
};

/**
 * The single-event closed-loop step again, against a Connect server whose SendEvent answers at
 * once (bench/baselines/connect-noop.ts): what the RPC framework costs without Service Chat.
 */
async function noopStep(
  ctx: Ctx,
  gen: Child,
  senders: { user: string; roomId: string }[],
  durationMs: number,
): Promise<SendStep> {
  const noop = spawnNode("connect no-op", "baseline", "bench/baselines/connect-noop.ts", { probe: true });
  try {
    const port = Number((await noop.once((m) => typeof m.listening === "number", 30_000)).listening);
    ctx.log(`send: the same ${senders.length} concurrent calls to a no-op Connect handler`);
    return await step(
      ctx,
      { grpcUrl: `http://127.0.0.1:${port}` },
      gen,
      "no-op Connect handler, SendEvent ×1, closed loop",
      {
        senders,
        mode: "closed",
        batch: 1,
        durationMs,
      },
    );
  } finally {
    await noop.stop();
  }
}

/**
 * Scenario 1 against a running server: single-event SendEvent at saturation (closed loop, one
 * room per concurrent caller), the same against the no-op Connect baseline, then open loop at
 * half the first rate for latency, then 100-event calls.
 */
export async function sendPath(
  ctx: Ctx,
  server: Server,
  options: { short?: boolean; label?: string } = {},
): Promise<{ single: SendStep; noop?: SendStep; halfLoad?: SendStep; batched: SendStep }> {
  const p = ctx.profile.send;
  const closedMs = options.short ? ctx.profile.backends.sendMs : p.closedMs;
  const repeats = options.short ? 1 : ctx.profile.repeats;
  const tag = options.label ?? "send";
  const senders = await sendRooms(ctx, server, p.singleSenders, `${ctx.runId}-${tag}`);
  const gen = await startGenerator(`generator ${tag}`);
  try {
    const singles: SendStep[] = [];
    for (let r = 0; r < repeats; r++) {
      ctx.log(`${tag}: single-event SendEvent, ${senders.length} concurrent calls (${r + 1}/${repeats})`);
      singles.push(
        await step(ctx, server, gen, "SendEvent ×1, closed loop", {
          senders,
          mode: "closed",
          batch: 1,
          durationMs: closedMs,
        }),
      );
    }
    const single = medianStep(singles);
    const noop = options.short ? undefined : await noopStep(ctx, gen, senders, closedMs);
    const half = Math.max(10, Math.round(single.eventsPerSecond / 2));
    let halfLoad: SendStep | undefined;
    if (!options.short) {
      ctx.log(`${tag}: single-event SendEvent, open loop at ${half}/s (half load)`);
      halfLoad = await step(ctx, server, gen, "SendEvent ×1, open loop at half load", {
        senders,
        mode: "open",
        batch: 1,
        rate: half,
        durationMs: p.openMs,
      });
    }
    const batchSenders = senders.slice(0, p.batchSenders);
    const batches: SendStep[] = [];
    for (let r = 0; r < repeats; r++) {
      ctx.log(`${tag}: 100-event SendEvent, ${batchSenders.length} concurrent calls (${r + 1}/${repeats})`);
      batches.push(
        await step(ctx, server, gen, "SendEvent ×100, closed loop", {
          senders: batchSenders,
          mode: "closed",
          batch: 100,
          durationMs: closedMs,
        }),
      );
    }
    return { single, ...(noop ? { noop } : {}), ...(halfLoad ? { halfLoad } : {}), batched: medianStep(batches) };
  } finally {
    await gen.stop();
  }
}
