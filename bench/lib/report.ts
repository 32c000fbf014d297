import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BackendRun } from "../scenarios/backends.js";
import type { ConnectRun } from "../scenarios/connect.js";
import { type FanRun, type FanStep, keptUp } from "../scenarios/fanout.js";
import type { IdleRun } from "../scenarios/idle.js";
import type { PathRun } from "../scenarios/path.js";
import type { RoomsRun, RoomsStep } from "../scenarios/rooms.js";
import type { PgbenchResult, SendStep } from "../scenarios/send.js";
import type { StormResult } from "../scenarios/storm.js";
import type { CpuReport } from "./cpu.js";
import { kb, ms, pct, ratio, table, times, verdict } from "./format.js";
import { classifyPath, pathSection, pathSummaryRows } from "./report-path.js";
import { fmt, lineChart, type Series } from "./svg.js";

type Pg = PgbenchResult & { median: number; runs: number[] };

export interface Results {
  environment?: Record<string, unknown> & { cpuModel: string; cores: number };
  profile?: { name: string };
  /** --name: the result files are <date>-<profile>-<label>. */
  label?: string;
  serverSettings?: Record<string, string>;
  startedAt?: string;
  seconds?: number;
  error?: string;
  /** Added by hand to a kept result file: what the environment fields cannot say. */
  note?: string;
  pgbench?: { oneRow: Pg; hundredRows: Pg; transaction: Pg };
  send?: { single: SendStep; noop?: SendStep; halfLoad?: SendStep; batched: SendStep };
  fanout?: { ours: FanRun; baseline?: FanRun }[];
  /** Absent from results of runs before the scenario existed. */
  rooms?: RoomsRun;
  storm?: StormResult;
  idle?: { ours: IdleRun; baseline: IdleRun };
  /** Absent from results of runs before the scenario existed. */
  connect?: { ours: ConnectRun; baseline: ConnectRun };
  backends?: BackendRun[];
  /** Absent from results of runs before the scenario existed. */
  path?: PathRun;
}

/** The server processes and PostgreSQL's share of a step, and whether the generator was the limit. */
function cpuCells(c: CpuReport | undefined): string[] {
  if (!c) return ["–", "–", "–", "–"];
  const sum = (pred: (k: string) => boolean) =>
    Object.entries(c.cores)
      .filter(([k]) => pred(k))
      .reduce((a, [, v]) => a + v, 0);
  const server = sum(
    (k) =>
      k.startsWith("service-chat") ||
      k.startsWith("gateway") ||
      k.startsWith("default service") ||
      k.startsWith("raw ws") ||
      k.startsWith("connect no-op"),
  );
  const infra = sum((k) => k.startsWith("postgres") || k === "nats-server" || k === "redis-server");
  return [
    server.toFixed(2),
    infra.toFixed(2),
    `${c.busiestGenerator.toFixed(2)}${c.clientBound ? " **client-bound**" : ""}`,
    c.otherCores.toFixed(2),
  ];
}

const CPU_HEAD = ["server CPU", "PG/NATS/Redis CPU", "busiest generator", "other CPU"];

/** The step at half the highest rate sustained (the step below it in a doubling ramp). */
export function halfRateStep(run: FanRun | undefined): FanStep | undefined {
  if (!run) return undefined;
  const best = run.maxSustainedRate;
  const sustained = run.steps.filter((s) => s.sustained);
  if (!best || sustained.length === 0) return run.steps[0];
  return sustained.find((s) => s.rate === best / 2) ?? sustained[0];
}

function fanCharts(dir: string, base: string, f: { ours: FanRun; baseline?: FanRun }): string[] {
  const size = f.ours.roomSize;
  const lat: Series[] = [];
  const thr: Series[] = [];
  for (const run of [f.ours, f.baseline]) {
    if (!run) continue;
    const raw = run.target === "raw ws";
    for (const p of ["p50", "p95", "p99"] as const) {
      lat.push({
        name: `${raw ? "raw ws" : "Service Chat"} ${p}`,
        points: run.steps.map((s) => [s.offeredDeliveriesPerSecond, s.latency[p]]),
        dashed: raw,
      });
    }
    thr.push({
      name: raw ? "raw ws" : "Service Chat",
      points: run.steps.map((s) => [s.offeredDeliveriesPerSecond, s.deliveriesPerSecond]),
      dashed: raw,
    });
  }
  const all = [...f.ours.steps, ...(f.baseline?.steps ?? [])].map((s) => s.offeredDeliveriesPerSecond);
  thr.push({ name: "offered", points: [...new Set(all)].sort((a, b) => a - b).map((x) => [x, x]), dashed: true });
  const names = [`${base}-fanout-${size}-latency.svg`, `${base}-fanout-${size}-throughput.svg`];
  writeFileSync(
    join(dir, names[0] as string),
    lineChart(lat, {
      title: `End-to-end latency, room of ${size} (ms, log scale)`,
      xLabel: "offered deliveries/s (messages/s × members)",
      yLabel: "latency (ms)",
      logY: true,
      logX: true,
    }),
  );
  writeFileSync(
    join(dir, names[1] as string),
    lineChart(thr, {
      title: `Deliveries/s, room of ${size}`,
      xLabel: "offered deliveries/s (messages/s × members)",
      yLabel: "deliveries/s achieved",
      logX: true,
    }),
  );
  return names;
}

function roomsCharts(dir: string, base: string, run: RoomsRun): string[] {
  const names = [`${base}-rooms-latency.svg`, `${base}-rooms-throughput.svg`];
  const title = `${fmt(run.rooms)} rooms × ${run.roomSize}`;
  writeFileSync(
    join(dir, names[0] as string),
    lineChart(
      (["p50", "p95", "p99"] as const).map((p) => ({
        name: `Service Chat ${p}`,
        points: run.steps.map((s) => [s.rate, s.latency[p]] as [number, number]),
      })),
      {
        title: `End-to-end latency of texts and replies, ${title} (ms, log scale)`,
        xLabel: "events/s offered (over all rooms)",
        yLabel: "latency (ms)",
        logY: true,
        logX: true,
      },
    ),
  );
  writeFileSync(
    join(dir, names[1] as string),
    lineChart(
      [
        {
          name: "Service Chat",
          points: run.steps.map((s) => [s.offeredDeliveriesPerSecond, s.deliveriesPerSecond] as [number, number]),
        },
        {
          name: "offered",
          points: run.steps.map(
            (s) => [s.offeredDeliveriesPerSecond, s.offeredDeliveriesPerSecond] as [number, number],
          ),
          dashed: true,
        },
      ],
      {
        title: `Deliveries/s, ${title}, mixed traffic`,
        xLabel: `offered deliveries/s (events/s × ${run.roomSize} members)`,
        yLabel: "deliveries/s achieved",
        logX: true,
      },
    ),
  );
  return names;
}

function sendCharts(dir: string, base: string, r: Results): string | undefined {
  if (!r.send || !r.pgbench) return undefined;
  const name = `${base}-send-path.svg`;
  const bars: Series[] = [
    { name: "pgbench 1-row", points: [[1, r.pgbench.oneRow.median]] },
    { name: "SendEvent ×1", points: [[1, r.send.single.eventsPerSecond]] },
    { name: "pgbench 100-row", points: [[100, r.pgbench.hundredRows.median]] },
    { name: "SendEvent ×100", points: [[100, r.send.batched.eventsPerSecond]] },
  ];
  writeFileSync(
    join(dir, name),
    lineChart(
      [
        {
          name: "pgbench (rows/s)",
          points: bars.filter((b) => b.name.startsWith("pgbench")).map((b) => b.points[0] as [number, number]),
        },
        {
          name: "Service Chat (events/s)",
          points: bars.filter((b) => b.name.startsWith("Send")).map((b) => b.points[0] as [number, number]),
        },
      ],
      {
        title: "Send path: rows/s by rows per call",
        xLabel: "rows per transaction / events per call",
        yLabel: "rows/s",
        logX: true,
        logY: true,
      },
    ),
  );
  return name;
}

/** Counts by key as a cell ("4008: 3, 1006: 1"), or `none` when there are none. */
function counts(byKey: Record<string, number>, none: string): string {
  return (
    Object.entries(byKey)
      .map(([k, n]) => `${k}: ${n}`)
      .join(", ") || none
  );
}

function markdown(r: Results, charts: Record<string, string[]>, jsonName: string): string {
  const env = r.environment;
  const out: string[] = [];
  const date = (r.startedAt ?? new Date().toISOString()).slice(0, 10);
  const label = r.label ? ` (${r.label})` : "";
  out.push(`# Service Chat benchmark — ${date}, ${r.profile?.name ?? "?"} profile${label}`, "");
  if (env) {
    out.push(
      `Machine: **${env.cpuModel}**, ${env.cores} cores, ${env.memoryGiB} GiB; Node ${env.node}; ${String(env.postgres).split(" on ")[0]} ` +
        `(synchronous_commit=${env.synchronousCommit}, fsync=${(env.postgresSettings as Record<string, string>)?.fsync}); ` +
        `NATS ${env.nats}; Redis ${env.redis}. Code: commit ${env.gitCommit ?? "?"}` +
        `${env.uncommittedProductFiles ? ` with ${env.uncommittedProductFiles} uncommitted files in apps/ and packages/` : ""}. ` +
        `Load average at start: ${env.loadAverageAtStart}. ` +
        `Everything (servers, PostgreSQL, NATS, Redis, generators) shares the machine. Run time ${r.seconds ?? "?"} s. Raw figures: [${jsonName}](${jsonName}).`,
      "",
    );
  }
  if (r.error) out.push(`**The run failed:** ${r.error}`, "");
  if (r.note) out.push(`**Note:** ${r.note}`, "");
  out.push(
    "Ratios are ours ÷ a baseline measured in the same run. CPU columns are cores (CPU seconds ÷ wall seconds) " +
      "read from /proc: *server* is the Service Chat or baseline process(es), *PG/NATS/Redis* the PostgreSQL backends " +
      "of the run's databases plus PostgreSQL's shared processes, nats-server and redis-server; *busiest generator* is " +
      "the busiest load-generator process (**client-bound** above 0.8); *other* is machine CPU used by processes outside " +
      "the run (a busy machine makes every figure lower).",
    "",
  );

  // Summary against the targets of performance.md.
  const rows: string[][] = [];
  const pg = r.pgbench;
  const send = r.send;
  if (pg && send) {
    const rs = ratio(send.single.eventsPerSecond, pg.oneRow.median);
    rows.push([
      "send path, single events",
      `${fmt(send.single.eventsPerSecond)} msgs/s`,
      `pgbench 1-row ${fmt(pg.oneRow.median)} rows/s`,
      times(rs),
      "≥ 1.0×",
      verdict(rs >= 1),
    ]);
    const half = send.halfLoad;
    if (half?.serverLatency && Number.isFinite(half.serverLatency.p95)) {
      rows.push([
        "send p95 at half load, server-side",
        `${ms(half.serverLatency.p95)} ms server-side (client-measured ${ms(half.latency.p95)} ms) at ${fmt(half.offeredRate ?? 0)}/s`,
        "–",
        "–",
        "p95 ≤ 20 ms server-side",
        verdict(half.serverLatency.p95 <= 20),
      ]);
    } else if (half) {
      // Results of runs before the server exposed its timing: only the client's figure exists.
      rows.push([
        "send p95 at half load (client-measured; no server-side figure)",
        `${ms(half.latency.p95)} ms at ${fmt(half.offeredRate ?? 0)}/s`,
        "–",
        "–",
        "≤ 20 ms",
        verdict(half.latency.p95 <= 20),
      ]);
    }
    if (send.noop) {
      rows.push([
        "send path next to the RPC framework alone",
        `${fmt(send.single.eventsPerSecond)} msgs/s`,
        `no-op Connect handler ${fmt(send.noop.eventsPerSecond)} calls/s`,
        times(ratio(send.single.eventsPerSecond, send.noop.eventsPerSecond)),
        "– (none set)",
        "–",
      ]);
    }
    const rb = ratio(send.batched.eventsPerSecond, pg.hundredRows.median);
    rows.push([
      "database rows, batched",
      `${fmt(send.batched.eventsPerSecond)} rows/s`,
      `pgbench 100-row ${fmt(pg.hundredRows.median)} rows/s`,
      times(rb),
      "≥ 50k rows/s (stretch ≥ 0.5×)",
      verdict(send.batched.eventsPerSecond >= 50_000),
    ]);
  }
  for (const f of r.fanout ?? []) {
    const rf = ratio(f.ours.maxDeliveriesPerSecond, f.baseline?.maxDeliveriesPerSecond);
    rows.push([
      `fan-out, room of ${f.ours.roomSize}`,
      `${fmt(f.ours.maxDeliveriesPerSecond)} deliveries/s`,
      `raw ws ${fmt(f.baseline?.maxDeliveriesPerSecond ?? Number.NaN)}`,
      times(rf),
      "≥ 0.5× (stretch ≥ 0.8×)",
      verdict(Number.isFinite(rf) ? rf >= 0.5 : undefined),
    ]);
    const half = halfRateStep(f.ours);
    const bHalf = f.baseline?.steps.find((s) => s.rate === half?.rate);
    const large = f.ours.roomSize >= 5000;
    const none = f.ours.maxSustainedRate === 0;
    rows.push([
      `end-to-end latency, room of ${f.ours.roomSize}, ${none ? "lowest rate (none kept up)" : "half max rate"}`,
      half
        ? `p95 ${ms(half.latency.p95)} ms, p99 ${ms(half.latency.p99)} ms at ${fmt(half.offeredDeliveriesPerSecond)}/s`
        : "–",
      bHalf ? `raw ws p95 ${ms(bHalf.latency.p95)} ms` : "–",
      times(ratio(half?.latency.p95, bHalf?.latency.p95)),
      large ? "p95 ≤ 150 ms" : "p95 ≤ 50 ms, p99 ≤ 100 ms",
      verdict(
        half && !none
          ? large
            ? half.latency.p95 <= 150
            : half.latency.p95 <= 50 && half.latency.p99 <= 100
          : none
            ? false
            : undefined,
      ),
    ]);
  }
  if (r.rooms) {
    const m = r.rooms;
    const none = m.maxSustainedRate === 0;
    const half = halfRateStep(m) as RoomsStep | undefined;
    const where = none
      ? "lowest rate (none kept up)"
      : half && half.rate < m.maxSustainedRate
        ? "half that rate"
        : "the lowest rate (no step below)";
    rows.push([
      `many rooms (${fmt(m.rooms)} × ${m.roomSize}, mixed): highest kept up; latency at ${where}`,
      `${none ? "none kept up" : `${fmt(m.maxSustainedDeliveriesPerSecond)} deliveries/s (${m.maxSustainedRate} events/s)`}; ` +
        `p95 ${ms(half?.latency.p95)} ms, p99 ${ms(half?.latency.p99)} ms at ${half?.rate ?? "?"} events/s`,
      "–",
      "–",
      "– (none set)",
      "–",
    ]);
  }
  if (r.idle) {
    const o = r.idle.ours.levels.at(-1);
    const b = r.idle.baseline.levels.at(-1);
    const rssOk = o?.rssMeasurable !== false && b?.rssMeasurable !== false;
    const rr = rssOk ? ratio(o?.rssPerConnection, b?.rssPerConnection) : Number.NaN;
    const rh = ratio(o?.heapPerConnection, b?.heapPerConnection);
    const rss = (l: typeof o) =>
      l?.rssMeasurable === false ? "RSS below noise" : `${kb(l?.rssPerConnection ?? Number.NaN)} RSS`;
    rows.push([
      `memory per idle connection (${o?.connections ?? "?"})`,
      `${rss(o)}, ${kb(o?.heapPerConnection ?? Number.NaN)} heap`,
      `raw ws ${rss(b)}, ${kb(b?.heapPerConnection ?? Number.NaN)} heap`,
      `${times(rr)} RSS, ${times(rh)} heap`,
      "≤ 2× (stretch ≤ 1.2×)",
      verdict(Number.isFinite(rh) ? rh <= 2 && (!Number.isFinite(rr) || rr <= 2) : undefined),
    ]);
  }
  const room = r.idle?.ours.room;
  if (room) {
    const delivered = room.expected ? room.received / room.expected : Number.NaN;
    const raw = r.idle?.baseline.room;
    rows.push([
      `a room of ${fmt(room.members)} while the other ${fmt(room.connected - room.members)} idle (${room.rate} msg/s)`,
      `p95 ${ms(room.latency.p95)} ms, max ${ms(room.latency.max)} ms, ${pct(delivered)} delivered`,
      raw
        ? `raw ws p95 ${ms(raw.latency.p95)} ms, ${pct(raw.expected ? raw.received / raw.expected : Number.NaN)} delivered`
        : "–",
      raw ? times(ratio(room.latency.p95, raw.latency.p95)) : "–",
      "p95 ≤ 100 ms, all delivered",
      verdict(Number.isFinite(delivered) ? room.latency.p95 <= 100 && delivered >= 1 : undefined),
    ]);
  }
  if (r.connect) {
    const { ours: o, baseline: b } = r.connect;
    const rc = ratio(o.perSecond, b.perSecond);
    rows.push([
      `connect rate (${fmt(o.devices)} new sessions, one gateway process)`,
      `${fmt(Math.round(o.perSecond))}/s${o.failed ? `, ${o.failed} failed` : ""}`,
      `raw ws ${fmt(Math.round(b.perSecond))}/s`,
      times(rc),
      "≥ 2,000/s per process and ≥ 0.5× raw ws",
      verdict(Number.isFinite(rc) ? o.perSecond >= 2000 && rc >= 0.5 && o.failed === 0 : undefined),
    ]);
  }
  if (r.storm) {
    const s = r.storm;
    const all = Number.isFinite(s.allCaughtUpSeconds);
    rows.push([
      `reconnect storm (${s.devices} devices${s.gateways ? `, ${s.gateways} gateway processes` : ""})`,
      all
        ? `all caught up in ${s.allCaughtUpSeconds.toFixed(2)} s (per device p50 ${ms(s.perDeviceCatchUpMs.p50)} ms, ` +
          `max ${ms(s.perDeviceCatchUpMs.max)} ms), ${s.lost} lost, ${s.duplicates} shown twice`
        : `${s.caughtUp} of ${s.devices} caught up within ${s.deadlineSeconds} s, ${s.lost} lost`,
      "–",
      "–",
      "10,000 in ≤ 10 s (issue 17: ≤ 3 s), 0 lost, 0 shown twice",
      s.devices >= 10_000
        ? verdict(all && s.allCaughtUpSeconds <= 10 && s.lost === 0)
        : s.lost === 0 && all
          ? "0 lost (fewer devices than the target's)"
          : "**not met**",
    ]);
  }
  const ratios = [
    ...(r.fanout ?? []).flatMap((f) => f.ours.steps),
    ...(r.rooms?.steps ?? []),
    ...(r.backends ?? []).flatMap((b) => b.fanout.steps),
  ];
  if (ratios.length) {
    const worst = Math.min(...ratios.map((s) => s.deliveryRatio));
    rows.push(["delivery ratio (every step)", `lowest ${pct(worst)}`, "–", "–", "100 %", verdict(worst >= 1)]);
  }
  if (r.path) rows.push(...pathSummaryRows(r.path));
  out.push("## Summary", "", table(["area", "Service Chat", "baseline (same run)", "ratio", "target", ""], rows));

  if (pg || send) {
    out.push(
      "## 1. Send path",
      "",
      "SendEvent over Connect binary on HTTP/2 (h2c), " +
        `${send?.single.concurrency ?? "?"} calls in flight, each caller in a room of its own; an event counts once ` +
        "it is acknowledged (stored: event and outbox rows committed); *published* says the outbox relay then put " +
        "every one on the stream (and how long after the last answer). *Client-measured* latency is request latency " +
        "as the generator sees it (generator → server → generator on loopback, 2 % buckets). *Server-side* latency is " +
        "the server's own timing of SendEvent (handler start → response, calls answered ok), read from the " +
        "`chat_rpc_server_duration_seconds` buckets of its /metrics at the start and end of the same measured window, " +
        "percentiles interpolated within buckets about ×1.5 wide. pgbench: `-c 16 -j 2`, the same INSERT into " +
        "`room_events` (same columns, indexes and tsvector), in a migrated database of its own." +
        (send?.noop
          ? " The *no-op Connect handler* gets the same calls from the same generator: a connect-node server on h2c " +
            "whose SendEvent answers at once, storing nothing (what the RPC framework itself costs)."
          : ""),
      "",
    );
    const prow = (label: string, p: Pg, unit: string): string[] => [
      label,
      `${fmt(p.median)} ${unit}`,
      `avg ${ms(p.latencyAvgMs)}`,
      "–",
      "–",
      "–",
      ...cpuCells(p.cpu),
    ];
    const srow = (s: SendStep, base?: number): string[] => [
      s.label,
      `${fmt(s.eventsPerSecond)} events/s${s.batch > 1 ? ` (${fmt(s.callsPerSecond)} calls/s)` : ""}`,
      `${ms(s.latency.p50)} / ${ms(s.latency.p95)} / ${ms(s.latency.p99)} / ${ms(s.latency.max)}`,
      s.serverLatency ? `${ms(s.serverLatency.p50)} / ${ms(s.serverLatency.p95)} / ${ms(s.serverLatency.p99)}` : "–",
      base ? times(ratio(s.eventsPerSecond, base)) : "–",
      s.published === undefined ? "–" : s.published ? `yes (+${s.publishDrainSeconds.toFixed(2)} s)` : "**no**",
      ...cpuCells(s.cpu),
    ];
    const trows: string[][] = [];
    if (pg) {
      trows.push(prow("pgbench, 1-row INSERT per transaction", pg.oneRow, "rows/s"));
      trows.push(prow("pgbench, 100-row multi-VALUES INSERT", pg.hundredRows, "rows/s"));
      trows.push(prow("pgbench, one send per transaction (no group commit)", pg.transaction, "tx/s"));
    }
    if (send) {
      trows.push(srow(send.single, pg?.oneRow.median));
      if (send.noop) trows.push(srow(send.noop));
      if (send.halfLoad) trows.push(srow(send.halfLoad));
      trows.push(srow(send.batched, pg?.hundredRows.median));
    }
    out.push(
      table(
        [
          "",
          "rate",
          "client-measured latency ms p50 / p95 / p99 / max",
          "server-side ms p50 / p95 / p99 (from /metrics buckets)",
          "ratio",
          "published",
          ...CPU_HEAD,
        ],
        trows,
      ),
      pg
        ? `SendEvent ×1 ÷ pgbench committing one send per transaction (what a call costs PostgreSQL without group commit): ${times(ratio(send?.single.eventsPerSecond, pg.transaction.median))}; above 1× means batching concurrent calls beat a transaction per call.`
        : "",
      "",
    );
    if (send?.noop) {
      out.push(
        `SendEvent ×1 ÷ the no-op Connect handler (the same calls, answered at once): ${times(ratio(send.single.eventsPerSecond, send.noop.eventsPerSecond))}.`,
        "",
      );
    }
    if (send?.single.runs && send.single.runs.length > 1) {
      out.push(
        `Runs (median taken): SendEvent ×1 ${send.single.runs.map(fmt).join(", ")}; ×100 ${send.batched.runs?.map(fmt).join(", ")}.`,
        "",
      );
    }
    for (const c of charts.send ?? []) out.push(`![send path](${c})`, "");
  }

  for (const f of r.fanout ?? []) {
    out.push(
      `## 2. Fan-out, one room of ${f.ours.roomSize} members`,
      "",
      `Every member connected over WebSocket (binary frames, ${f.ours.roomSize} devices over generator processes); ` +
        "one sender at increasing open-loop rates (SendEvent per message for Service Chat; a frame on the broadcast " +
        "socket for raw `ws`); end-to-end latency from the timestamp in the body. A ramp stops after the first step " +
        "that did not keep up (delivered below 99.9 %, deliveries/s below 95 % of the offered rate, or the last " +
        "delivery more than 1 s after the last send). " +
        `Connecting took ${f.ours.connectSeconds.toFixed(1)} s (Service Chat: hello, token, registry, replay) and ` +
        `${f.baseline?.connectSeconds.toFixed(1) ?? "–"} s (raw ws).`,
      "",
    );
    const frows = [f.ours, f.baseline]
      .filter((x): x is FanRun => !!x)
      .flatMap((run) =>
        run.steps.map((s) => [
          run.target,
          String(s.rate),
          fmt(s.offeredDeliveriesPerSecond),
          fmt(s.deliveriesPerSecond),
          pct(s.deliveryRatio),
          `${ms(s.latency.p50)} / ${ms(s.latency.p95)} / ${ms(s.latency.p99)} / ${ms(s.latency.max)}`,
          ms(s.tailMs),
          s.sustained ? "yes" : "no",
          ...cpuCells(s.cpu),
        ]),
      );
    out.push(
      table(
        [
          "",
          "msgs/s",
          "offered deliveries/s",
          "deliveries/s",
          "delivered",
          "latency ms p50 / p95 / p99 / max",
          "tail ms",
          "kept up",
          ...CPU_HEAD,
        ],
        frows,
      ),
    );
    out.push(
      `Highest deliveries/s: Service Chat ${fmt(f.ours.maxDeliveriesPerSecond)}, raw ws ${fmt(f.baseline?.maxDeliveriesPerSecond ?? Number.NaN)} ` +
        `(ratio ${times(ratio(f.ours.maxDeliveriesPerSecond, f.baseline?.maxDeliveriesPerSecond))}); highest rate kept up: ` +
        `${f.ours.maxSustainedRate} msgs/s vs ${f.baseline?.maxSustainedRate ?? "–"}. Frame size ${f.ours.steps[0]?.frameBytes ?? "?"} B ` +
        `(raw ws: ${f.baseline?.steps[0]?.frameBytes ?? "?"} B).`,
      "",
    );
    for (const c of charts[`fan${f.ours.roomSize}`] ?? []) out.push(`![fan-out ${f.ours.roomSize}](${c})`, "");
  }

  if (r.rooms) out.push(...roomsSection(r.rooms, charts.rooms ?? []));

  if (r.idle) {
    out.push(
      "## 4. Idle connections",
      "",
      (r.idle.ours.processes && r.idle.ours.processes > 1
        ? `Service Chat: ${r.idle.ours.processes} gateway-only processes (SERVICES=gateway, registry on Redis) in front of a Default Service process, the devices spread evenly over them and over source addresses of the run's own (127.B.x.y, fresh for each batch of connects), memory added up over the processes (raw ws: as many servers); each device `
        : "Service Chat: a gateway-only process (SERVICES=gateway) in front of a Default Service process; each device ") +
        "sent hello with its token, was registered and subscribed, got its (empty) replay and `synced`, then stays " +
        "idle (a ping every 25 s, each device at its own moment of the 25 s, as clients that connected at different times do). Raw ws: the broadcast server holding plain sockets; its devices ping the same way, and it answers each ping with a pong frame. Memory is read from the server " +
        "process after full GCs (`--expose-gc`, asked over IPC): per connection = (reading − reading at the reference " +
        `of ${r.idle.ours.reference} connections) ÷ connections added; RSS is marked *below noise* when it moved by ` +
        "less than 32 MiB, which it can do by itself between two readings (then only the heap figure counts). CPU is " +
        "the server's while the connections sit idle" +
        (r.idle.ours.heartbeatSec
          ? ` (heartbeats every ${r.idle.ours.heartbeatSec} s instead of 30 s: ${Math.round(30 / r.idle.ours.heartbeatSec)}× the heartbeat work of as many connections at the default).`
          : "."),
      "",
    );
    const irows = [r.idle.ours, r.idle.baseline].flatMap((run) =>
      run.levels.map((l) => {
        const other = (run === r.idle?.ours ? r.idle.baseline : r.idle?.ours)?.levels.find(
          (x) => x.connections === l.connections,
        );
        const mine = run === r.idle?.ours;
        return [
          run.target,
          String(l.connections),
          `${(l.memory.rss / 2 ** 20).toFixed(0)} MiB`,
          `${(l.memory.heapUsed / 2 ** 20).toFixed(0)} MiB`,
          l.rssMeasurable === false ? `${kb(l.rssPerConnection)} (below noise)` : kb(l.rssPerConnection),
          kb(l.heapPerConnection),
          mine && other
            ? `${l.rssMeasurable !== false && other.rssMeasurable !== false ? times(ratio(l.rssPerConnection, other.rssPerConnection)) : "–"} / ${times(ratio(l.heapPerConnection, other.heapPerConnection))}`
            : "–",
          `${l.connectSeconds.toFixed(1)} s`,
          ...cpuCells(l.idleCpu),
        ];
      }),
    );
    out.push(
      table(
        [
          "",
          "connections",
          "RSS",
          "heap used",
          "RSS / conn",
          "heap / conn",
          "ratio RSS / heap",
          "connect time",
          ...CPU_HEAD,
        ],
        irows,
      ),
    );
  }

  if (room) {
    const rooms = [r.idle?.ours, r.idle?.baseline].filter((run) => run?.room) as IdleRun[];
    out.push(
      "",
      `Then, everyone still connected, ${room.rate} messages per second into a room of ${fmt(room.members)} of ` +
        `these devices (sent with SendEvent to the Default Service by another process; raw ws: written by another ` +
        `process to each server, which writes them to the first devices to have connected to it) while the other ` +
        `${fmt(room.connected - room.members)} stay idle; latency is from send to each member's device.`,
      "",
      table(
        [
          "",
          "members",
          "connected",
          "live at start / end",
          "close codes seen",
          "sent (acked)",
          "delivered",
          "shown twice",
          "p50 / p95 / p99 / max",
          ...CPU_HEAD,
        ],
        rooms.map((run) => {
          const s = run.room as NonNullable<IdleRun["room"]>;
          return [
            run.target,
            fmt(s.members),
            fmt(s.connected),
            s.liveAtStart === undefined ? "–" : `${fmt(s.liveAtStart)} / ${fmt(s.liveAtEnd ?? 0)}`,
            s.closeCodes === undefined ? "–" : counts(s.closeCodes, "none"),
            `${s.sent} (${s.acked})${s.firstError ? ` ${s.firstError}` : ""}`,
            `${fmt(s.received)} of ${fmt(s.expected)}`,
            String(s.duplicates),
            `${ms(s.latency.p50)} / ${ms(s.latency.p95)} / ${ms(s.latency.p99)} / ${ms(s.latency.max)} ms`,
            ...cpuCells(s.cpu),
          ];
        }),
      ),
      "",
    );
  }

  if (r.connect) {
    const { ours, baseline } = r.connect;
    out.push(
      "## 4b. Connect rate",
      "",
      `${fmt(ours.devices)} new devices, each a user of its own with no room, ${ours.inFlight} connecting at once from ` +
        "two device processes (each from fresh source addresses of the run's own, bench/lib/addresses.ts), to one gateway-only process (SERVICES=gateway, " +
        "registry on Redis, ChatService forwarded to a Default Service process). A session counts once `synced` " +
        "arrives: upgrade, hello, token check, registry write, (empty) replay through Sync, `synced`. Raw ws: the " +
        "broadcast server accepting as many plain sockets from the same processes, counted at `open`. Seconds: from " +
        "the first attempt to the last device live, in the slower device process (tokens are minted before).",
      "",
      table(
        ["", "devices live", "failed", "seconds", "sessions/s", "ratio", "close codes", ...CPU_HEAD],
        [ours, baseline].map((run) => [
          run.target,
          fmt(run.connected),
          `${run.failed}${run.firstError ? ` (${run.firstError})` : ""}`,
          run.seconds.toFixed(2),
          fmt(Math.round(run.perSecond)),
          run === ours ? times(ratio(ours.perSecond, baseline.perSecond)) : "–",
          counts(run.closeCodes, "–"),
          ...cpuCells(run.cpu),
        ]),
      ),
      "",
    );
  }

  if (r.storm) {
    const s = r.storm;
    out.push(
      "## 5. Reconnect storm",
      "",
      `${s.devices} devices (one user each) in ${s.rooms} rooms of ${s.roomSize} (each device in two), connected over ` +
        "WebSocket " +
        (s.gateways
          ? `evenly to ${s.gateways} gateway-only process${s.gateways > 1 ? "es" : ""} (SERVICES=gateway) ` +
            "in front of the server, forwarding ChatService calls to it as a deployment's gateways do. "
          : "to the server's gateway. ") +
        `Every socket is cut at once; ${s.sentWhileDown} messages are sent while ` +
        `they are down (${(2 * s.sentWhileDown) / s.rooms} missed per device) and ${s.sentDuringReconnect} more while they come back. ` +
        (s.reconnectWindowMs
          ? `Each device reconnects at a random moment of a ${s.reconnectWindowMs} ms window (±${s.reconnectWindowMs / 2} ms), then as the SDK does (doubling on failure) `
          : "Each device reconnects as the SDK does (after 250 ms × U(0.5, 1.5), doubling on failure) ") +
        "and resumes with hello cursors. *Lost* counts seqs a " +
        "device skipped; *accept queue overflows* is the kernel's ListenOverflows counter over the storm (SYNs " +
        "dropped because the server's accept queue was full: those clients retry after 1, 3, 7, 15 … s).",
      "",
      table(
        [
          "devices",
          "all caught up on what they missed",
          "… and on what came meanwhile",
          "all synced",
          "per device p50 / p95 / max",
          "upgrade done p50 / max",
          "synced p50 / max",
          "lost",
          "shown twice",
          "not yet shown at the deadline",
          "accept queue overflows",
          "events replayed + live",
          "attempts (failed)",
          ...CPU_HEAD,
        ],
        [
          [
            String(s.devices),
            Number.isFinite(s.allCaughtUpSeconds)
              ? `${s.allCaughtUpSeconds.toFixed(2)} s`
              : `${s.caughtUp} of ${s.devices} in ${s.deadlineSeconds} s`,
            s.withLiveSeconds === undefined
              ? "–"
              : Number.isFinite(s.withLiveSeconds)
                ? `${s.withLiveSeconds.toFixed(2)} s`
                : "not all",
            Number.isFinite(s.allSyncedSeconds) ? `${s.allSyncedSeconds.toFixed(2)} s` : "not all",
            `${ms(s.perDeviceCatchUpMs.p50)} / ${ms(s.perDeviceCatchUpMs.p95)} / ${ms(s.perDeviceCatchUpMs.max)} ms`,
            s.perDeviceOpenMs ? `${ms(s.perDeviceOpenMs.p50)} / ${ms(s.perDeviceOpenMs.max)} ms` : "–",
            s.perDeviceSyncedMs ? `${ms(s.perDeviceSyncedMs.p50)} / ${ms(s.perDeviceSyncedMs.max)} ms` : "–",
            String(s.lost),
            String(s.duplicates),
            String(s.notYetShown ?? 0),
            String(s.listenOverflows ?? "–"),
            fmt(s.replayedEvents),
            `${s.reconnectAttempts} (${s.failedAttempts})`,
            ...cpuCells(s.cpu),
          ],
        ],
      ),
    );
  }

  if (r.backends?.length) {
    out.push(
      "## 6. Queue backends",
      "",
      "Scenarios 1 and 2 shortened, one server per backend (fresh database each). With `mem://` the system is one " +
        "process and the connection registry is in memory; with `nats://` and `redis://` the registry is in Redis. " +
        "A row from *scenarios 1-2* reuses the main run's figures (same server settings, longer steps).",
      "",
    );
    const brows = r.backends.flatMap((b) => {
      const fan = b.fanout.steps;
      return [
        [
          `${b.backend}://`,
          b.source,
          `${fmt(b.single.eventsPerSecond)}/s, p95 ${ms(b.single.latency.p95)} ms`,
          `${fmt(b.batched.eventsPerSecond)}/s`,
          fan
            .map(
              (s) =>
                `${fmt(s.deliveriesPerSecond)}/s @${s.rate} (${pct(s.deliveryRatio)}, p95 ${ms(s.latency.p95)} ms)`,
            )
            .join("; ") || "–",
          ...cpuCells(fan.at(-1)?.cpu),
        ],
      ];
    });
    out.push(
      table(
        [
          "backend",
          "source",
          "SendEvent ×1",
          "SendEvent ×100",
          "fan-out 1,000: deliveries/s @msgs/s",
          ...CPU_HEAD.map((h) => `${h} (last fan-out step)`),
        ],
        brows,
      ),
    );
  }

  if (r.path) out.push(...pathSection(r.path));

  if (r.serverSettings) {
    out.push(
      "## Settings",
      "",
      "Server environment (plus HTTP_PORT/GRPC_PORT on free ports, BIND_HOST=127.0.0.1; the idle gateway adds " +
        "SERVICES=gateway and CHAT_SERVICE_URI):",
      "",
      "```",
      ...Object.entries(r.serverSettings)
        .filter(([k]) => k !== "DEV_SIGNER_KEY_FILE" && k !== "DB_URI")
        .map(([k, v]) => `${k}=${v}`),
      "```",
      "",
    );
  }
  return `${out.join("\n")}\n`;
}

const KIND_ORDER = ["text", "reaction", "edit", "reply"] as const;

function roomsSection(m: RoomsRun, charts: string[]): string[] {
  const out: string[] = [];
  const share = (x: number) => `${Math.round(x * 100)} %`;
  const weights = KIND_ORDER.reduce((a, k) => a + m.mix[k], 0) || 1;
  out.push(
    `## 3. Many rooms, ${fmt(m.rooms)} rooms × ${m.roomSize} members`,
    "",
    `${fmt(m.users)} users, each in ${m.roomSize} of the ${fmt(m.rooms)} rooms (room r holds users r … r+${m.roomSize - 1}, ` +
      `mod ${m.rooms}: the rooms overlap, so a device gets the traffic of ${m.roomSize} rooms), one device each on ` +
      "WebSocket (binary frames) spread over generator processes. One sender process holding every member's token " +
      "calls SendEvent once per event, at increasing open-loop rates, each event to a random room from one of its " +
      `members: texts ${share(m.mix.text / weights)}, reactions to one of the room's recent texts ` +
      `${share(m.mix.reaction / weights)}, edits of the author's own recent text ${share(m.mix.edit / weights)}, ` +
      `replies to a recent text ${share(m.mix.reply / weights)}. Meanwhile the devices send ` +
      `${m.typingPerEvent} typing signals per event on their streams (the server tells the room's other members). ` +
      "Every member's device, the sender's own included, gets every event of its rooms: an event is due to the " +
      `${m.roomSize} members, and *deliveries/s*, *delivered* and *kept up* count every kind (after dedupe, per ` +
      "device) by the fan-out scenario's rule. Latency is measured on texts and replies (timestamp in the body); " +
      "reactions and edits are counted, not timed. Typing frames are not events: they are counted in their own " +
      "column (sent → received of due, due = sent × the other members) and do not enter the figures before it. " +
      "A reaction, edit or reply in a room without a text to point at is sent as a text (*fell back*); one text per " +
      "room is sent before the ramp so that this is rare. There is no raw `ws` baseline for this scenario: the " +
      "broadcast server has no rooms, and here the cost is per event (a SendEvent, a transaction, a fan-out to 10) " +
      "rather than per delivery. " +
      `Creating the rooms took ${m.createSeconds.toFixed(1)} s, connecting the devices ${m.connectSeconds.toFixed(1)} s ` +
      `(${m.connectFailed} failed), the text per room ${m.seed.seconds.toFixed(1)} s (${m.seed.calls} calls` +
      `${m.seed.refused ? `, ${m.seed.refused} refused: ${m.seed.firstError}` : ""}).`,
    "",
  );
  const rows = m.steps.map((s) => [
    String(s.rate),
    fmt(s.offeredDeliveriesPerSecond),
    fmt(s.deliveriesPerSecond),
    pct(s.deliveryRatio),
    `${ms(s.latency.p50)} / ${ms(s.latency.p95)} / ${ms(s.latency.p99)} / ${ms(s.latency.max)}`,
    ms(s.tailMs),
    s.sustained ? "yes" : "no",
    `${KIND_ORDER.map((k) => s.byKind[k].sent).join(" / ")}${s.fellBack ? ` (${s.fellBack} fell back)` : ""}`,
    `${s.failed} / ${s.skipped}`,
    `${s.typing.sent} → ${pct(s.typing.expected ? s.typing.received / s.typing.expected : Number.NaN)}`,
    ...cpuCells(s.cpu),
  ]);
  out.push(
    table(
      [
        "events/s",
        "offered deliveries/s",
        "deliveries/s",
        "delivered",
        "latency ms p50 / p95 / p99 / max",
        "tail ms",
        "kept up",
        "sent: text / reaction / edit / reply",
        "failed / skipped",
        "typing sent → received",
        ...CPU_HEAD,
      ],
      rows,
    ),
  );
  const errors = m.steps.filter((s) => s.firstError).map((s) => `at ${s.rate} events/s: ${s.firstError}`);
  out.push(
    `Highest deliveries/s kept up: ${m.maxSustainedRate ? `${fmt(m.maxSustainedDeliveriesPerSecond)} (${m.maxSustainedRate} events/s)` : "none"}; ` +
      `highest deliveries/s of any step: ${fmt(m.maxDeliveriesPerSecond)}. Mean frame size ${m.steps[0]?.frameBytes ?? "?"} B.` +
      (errors.length ? ` First error ${errors.join("; ")}.` : ""),
    "",
  );
  for (const c of charts) out.push(`![many rooms](${c})`, "");
  return out;
}

/** Applies the current "kept up" rule to every fan-out step, so a report rewritten later agrees with itself. */
function classify(r: Results): void {
  const runs = [
    ...(r.fanout ?? []).flatMap((f) => [f.ours, f.baseline]),
    r.rooms,
    ...(r.backends ?? []).map((b) => b.fanout),
  ].filter((x): x is FanRun => !!x);
  for (const run of runs) {
    for (const s of run.steps) s.sustained = keptUp(s);
    run.maxSustainedRate = Math.max(0, ...run.steps.filter((s) => s.sustained).map((s) => s.rate));
  }
  if (r.rooms) {
    const kept = r.rooms.steps.filter((s) => s.sustained);
    r.rooms.maxSustainedDeliveriesPerSecond = Math.max(0, ...kept.map((s) => s.deliveriesPerSecond));
  }
  if (r.path) classifyPath(r.path);
}

/** Writes `<date>-<profile>[-<label>].json`, the Markdown report beside it and its SVG charts. */
export function writeReport(dir: string, profile: string, results: Record<string, unknown>, label?: string): string[] {
  mkdirSync(dir, { recursive: true });
  const r = results as Results;
  classify(r);
  const date = (r.startedAt ?? new Date().toISOString()).slice(0, 10);
  const base = `${date}-${profile}${label ? `-${label}` : ""}`;
  const jsonName = `${base}.json`;
  writeFileSync(join(dir, jsonName), `${JSON.stringify(results, null, 2)}\n`);
  const charts: Record<string, string[]> = {};
  const send = sendCharts(dir, base, r);
  if (send) charts.send = [send];
  for (const f of r.fanout ?? []) charts[`fan${f.ours.roomSize}`] = fanCharts(dir, base, f);
  if (r.rooms?.steps.length) charts.rooms = roomsCharts(dir, base, r.rooms);
  const md = join(dir, `${base}.md`);
  writeFileSync(md, markdown(r, charts, jsonName));
  return [
    join(dir, jsonName),
    md,
    ...Object.values(charts)
      .flat()
      .map((c) => join(dir, c)),
  ];
}
