import type { PathRun, PathSeries, SeriesKey } from "../scenarios/path.js";
import { keepUpFailures, type PathStep } from "../scenarios/path-step.js";
import { mib, ms, pct, table, times, verdict } from "./format.js";
import { fmt } from "./svg.js";

/** The report's section of the message-path scenario (bench/scenarios/path.ts) and its summary rows. */

const BACKEND = { embedded: "embedded default", postgres: "PostgreSQL", raw: "raw `ws` rooms (baseline)" } as const;

/** The targets of performance.md ("The message path, measured on one core"). */
function target(s: PathSeries): { text: string; rate?: number; p95?: number } {
  if (s.backend === "raw") return { text: "baseline: what the frames and sockets alone allow" };
  const t: Record<SeriesKey, { text: string; rate?: number; p95?: number }> = {
    rooms:
      s.backend === "postgres"
        ? { text: "≥ 3,000 msgs/s, p95 ≤ 10 ms", rate: 3000, p95: 10 }
        : { text: "≥ 2,000 msgs/s", rate: 2000 },
    room100: { text: "≥ 1,000 msgs/s", rate: 1000 },
    room1000: { text: "≥ 80 msgs/s, p95 ≤ 30 ms", rate: 80, p95: 30 },
    room1000Json: { text: "≥ 0.8× binary" },
  };
  return t[s.key];
}

const best = (s: PathSeries): PathStep | undefined => s.steps.find((x) => x.keptUp && x.rate === s.maxKeptUpRate);

const highest = (s: PathSeries): string =>
  s.maxKeptUpRate === 0
    ? "none kept up"
    : `${fmt(s.maxKeptUpRate)} msgs/s${s.allKeptUp ? " (every rate tried: a lower bound)" : ""}`;

const latencyAt = (x: PathStep | undefined) =>
  x ? `p50 / p95 / p99 ${ms(x.latency.p50)} / ${ms(x.latency.p95)} / ${ms(x.latency.p99)} ms` : "–";

/** Applies the current rule to every step, so a report rewritten later agrees with itself. */
export function classifyPath(run: PathRun): void {
  for (const s of run.series) {
    for (const x of s.steps) {
      x.failed = keepUpFailures(x);
      x.keptUp = x.failed.length === 0;
    }
    const kept = s.steps.filter((x) => x.keptUp);
    s.maxKeptUpRate = Math.max(0, ...kept.map((x) => x.rate));
    s.allKeptUp = s.steps.length > 0 && kept.length === s.steps.length;
  }
}

export function pathSummaryRows(run: PathRun): string[][] {
  return run.series.map((s) => {
    const t = target(s);
    const at = best(s);
    let met: boolean | undefined;
    let ratio = "–";
    if (s.key === "room1000Json") {
      const binary = run.series.find((b) => b.backend === s.backend && b.key === "room1000");
      const r = binary?.maxKeptUpRate ? s.maxKeptUpRate / binary.maxKeptUpRate : Number.NaN;
      ratio = `${times(r)} binary`;
      met = Number.isFinite(r) ? r >= 0.8 : undefined;
    } else if (t.rate !== undefined) {
      met = s.steps.some((x) => x.keptUp && x.rate >= (t.rate as number) && (!t.p95 || x.latency.p95 <= t.p95));
    }
    // The embedded default's send path should stay within 2× of the PostgreSQL path: compare the
    // highest rates kept up in the same series.
    const pg = s.backend === "embedded" && run.series.find((b) => b.backend === "postgres" && b.key === s.key);
    if (pg && pg.maxKeptUpRate > 0 && s.key !== "room1000Json") {
      ratio = `${times(s.maxKeptUpRate / pg.maxKeptUpRate)} PostgreSQL (target ≥ 0.5×)`;
    }
    const raw = s.backend !== "raw" && run.series.find((b) => b.backend === "raw" && b.key === s.key);
    if (raw && raw.maxKeptUpRate > 0) {
      const p95 = (x: PathSeries) => best(x)?.latency.p95;
      const floor = `raw \`ws\` kept up ${fmt(raw.maxKeptUpRate)} msgs/s (p95 ${ms(p95(raw))} ms there)`;
      ratio = ratio === "–" ? floor : `${ratio}; ${floor}`;
    }
    return [
      `message path, one core, ${BACKEND[s.backend]}: ${s.title}`,
      `${highest(s)}${at ? `; ${latencyAt(at)}` : ""}`,
      "–",
      ratio,
      t.text,
      s.error ? `**failed**: ${s.error}` : verdict(met),
    ];
  });
}

const codes = (m: Record<string, number>) =>
  Object.entries(m)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ");

/** A step's row: the embedded default has its database in the server process and no NATS or Redis; the raw baseline has none. */
function row(x: PathStep, backend: PathSeries["backend"]): string[] {
  const errors = codes(x.acks.errors);
  const otherErrors = codes(x.acks.otherErrors);
  const busy = x.cpuBusy.map((c) => (Number.isFinite(c) ? c.toFixed(2) : "–")).join(" / ");
  const other = [x.cores.otherOnServerCpu, x.cores.otherOnLoadCpu];
  return [
    fmt(x.rate),
    fmt(x.offeredDeliveriesPerSecond),
    fmt(x.deliveriesPerSecond),
    pct(x.deliveryRatio),
    `${ms(x.latency.p50)} / ${ms(x.latency.p95)} / ${ms(x.latency.p99)} / ${ms(x.latency.max)}`,
    x.thirdsP50.map(ms).join(" → "),
    `${ms(x.acks.latency.p50)} / ${ms(x.acks.latency.p95)}`,
    `${fmt(x.acks.ok)} of ${fmt(x.sent)}${errors ? `; errors: ${errors}` : ""}${otherErrors ? `; other errors: ${otherErrors}` : ""}` +
      `${x.acks.unanswered ? `; ${fmt(x.acks.unanswered)} unanswered` : ""}${x.skipped ? `; ${fmt(x.skipped)} not sent` : ""}` +
      `${x.acks.outOfOrder ? `; **${x.acks.outOfOrder} out of order**` : ""}`,
    x.order.duplicates || x.order.gaps
      ? `**${x.order.duplicates} dup / ${x.order.gaps} gaps (${x.order.missing} seqs)**`
      : "0",
    x.cores.server.toFixed(2),
    // The embedded default has its database in the server process, and no NATS or Redis.
    backend === "embedded" ? "(in server)" : backend === "raw" ? "–" : x.cores.database.toFixed(2),
    backend === "postgres" ? x.cores.queue.toFixed(2) : "–",
    `${busy}${Math.max(...other) >= 0.05 ? ` (other: ${other.map((o) => o.toFixed(2)).join(" / ")})` : ""}` +
      `${x.clientBound ? " **client-bound**" : ""}`,
    x.keptUp ? "yes" : `no (${x.failed.join("; ")})`,
  ];
}

const HEAD = [
  "msgs/s",
  "offered deliveries/s",
  "deliveries/s",
  "delivered",
  "latency ms p50 / p95 / p99 / max",
  "p50 by third of the window",
  "ack ms p50 / p95",
  "acks",
  "order violations",
  "server CPU",
  "DB CPU",
  "NATS + Redis CPU",
  "CPU 0 / CPU 1 busy",
  "kept up",
];

export function pathSection(run: PathRun): string[] {
  const k = run.keepUp;
  const p = run.settings;
  const out: string[] = [
    "## 7. The message path on one core",
    "",
    "Measured CPU for CPU, as the comparison with another chat server is made: every server process runs on CPU 0 " +
      "(Service Chat started under `taskset -c 0`; for the PostgreSQL series the running PostgreSQL — postmaster and " +
      "children — nats-server and redis-server pinned with `taskset -a -p` and put back on every CPU afterwards), the " +
      "devices and the orchestrator on CPU 1. Devices are WebSocket device streams (binary frames, or the `json` " +
      "subprotocol where said), one per member of every room, spread over processes. Senders post `send` frames on " +
      "their own stream (a text with a 100-byte body and a client id), open loop — each tick sends rate × elapsed − " +
      "sent — without waiting for acks. Every device checks the order of its room (seq up by exactly 1, no " +
      "duplicates: *order violations*), every sender its acks (count, errors by code, one device's acks in the order " +
      "its frames went out). Latency is from the time the sender wrote in the body to the receiver's clock. Each rate: " +
      `${p.warmupMs / 1000} s of warm-up at that rate, ${p.stepMs / 1000} s measured, then up to ${p.drainMs / 1000} s ` +
      "for stragglers (it ends early once everything arrived and every send was answered, or nothing moved for 3 s). " +
      `A rate **keeps up** when at least ${pct(k.delivered)} of the deliveries due arrived (due: each message sent in ` +
      "the window × its room's live devices, the sender's own included; a send refused or never answered is still " +
      `due), deliveries/s is at least ${pct(k.rate)} of the offered rate, and latency does not trend upward: the p50 ` +
      `of messages sent in the window's last third is at most ${k.trendFactor}× that of its first third, or below ` +
      `${k.trendFloorMs} ms. *Deliveries/s* = deliveries ÷ the time they took to arrive (first to last delivery of the ` +
      "window's messages plus one send interval, and at least the window: a backlog released in a burst does not " +
      "count above the offered rate). A ramp stops at the first rate that does not keep up. CPU columns are cores over the measured " +
      "window: *server* the Service Chat process (PGlite included for the embedded default), *DB* the PostgreSQL " +
      "backends of the series' database and PostgreSQL's shared processes; *CPU 0 / CPU 1 busy* the two CPUs as a " +
      "whole, and the share of each used by processes outside the run (*other*, shown from 0.05: a busy machine, " +
      "the server got less than its core); devices using 0.8 of CPU 1 or more: **client-bound**, they may be the " +
      "limit. Each series runs on a fresh " +
      "server: the *embedded default* (`pglite://` in a scratch folder, `mem://` queue, in-memory registry, one " +
      "process) or *PostgreSQL* (a fresh database, NATS JetStream, Redis registry, one process with every role); " +
      "`--path-backends=raw` adds the raw baseline, *raw `ws` rooms* (bench/baselines/ws-rooms.ts: the same frames " +
      "over `ws` with nothing else — no token check, storage, queue or registry — pinned to CPU 0 as well). " +
      `Server settings beside the run's: ${Object.entries(run.serverEnv)
        .map(([key, v]) => `${key}=${v}`)
        .join(", ")} (the default of 100 frames/s per connection would refuse the single senders' rates).`,
    "",
  ];
  if (run.pinned.length) {
    const n = (x: number) => `${x} process${x === 1 ? "" : "es"}`;
    out.push(
      `Pinned to CPU 0 for the PostgreSQL series: ${run.pinned.map((x) => `${x.name} (${n(x.processes)})`).join(", ")}.`,
      "",
    );
  }
  const rss = run.series.filter((s) => s.rss);
  if (rss.length) {
    out.push(
      `Embedded default, RSS when ready → after the series: ${rss
        .map((s) => `${s.title}: ${mib(s.rss?.ready)} → ${mib(s.rss?.after)}`)
        .join("; ")}.`,
      "",
    );
  }
  for (const s of run.series) {
    const at = best(s);
    out.push(
      `### ${BACKEND[s.backend]}: ${s.title}`,
      "",
      `${fmt(s.rooms)} room${s.rooms > 1 ? "s" : ""} × ${fmt(s.members)} members, ${fmt(s.devices)} devices ` +
        `(${s.json ? "`json`" : "binary"}), ${fmt(s.senders)} sending. Setup: server ready in ${s.setupSeconds.server} s, ` +
        `rooms created in ${s.setupSeconds.rooms} s, devices connected in ${s.setupSeconds.connect} s` +
        `${s.connectFailed ? ` (**${s.connectFailed} failed**)` : ""}.${s.error ? ` **The series failed:** ${s.error}` : ""}`,
      "",
    );
    if (s.steps.length)
      out.push(
        table(
          HEAD,
          s.steps.map((x) => row(x, s.backend)),
        ),
      );
    out.push(
      `Highest rate kept up: ${highest(s)}` +
        (at
          ? `; there ${latencyAt(at)}, server CPU ${at.cores.server.toFixed(2)}` +
            `${s.backend === "postgres" ? `, DB CPU ${at.cores.database.toFixed(2)}` : ""}, ` +
            `CPU 0 ${at.cpuBusy[0]?.toFixed(2) ?? "–"} busy.`
          : "."),
      "",
    );
    const closed = codes(s.steps.at(-1)?.closeCodes ?? {});
    if (closed) out.push(`Device streams closed by the server during the series (close codes): ${closed}.`, "");
  }
  return out;
}
