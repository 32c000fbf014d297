import type { Ctx } from "../lib/context.js";
import { type CpuReport, cpuBusy, perCpuTicks, round } from "../lib/cpu.js";
import { Histogram, type Percentiles } from "../lib/hist.js";
import { now } from "../lib/payload.js";
import { type Child, sleep } from "../lib/proc.js";
import type { StreamSendResult, StreamStats } from "../workers/stream.js";
import { nextStepId } from "./fanout.js";

/**
 * One rate of a message-path series: warm-up, measured window, drain, and whether it kept up.
 *
 * A rate keeps up when, after the drain:
 * - at least 99.9 % of the deliveries due arrived (due: each message sent in the window × the
 *   live devices of its room; a send refused or never answered is due all the same);
 * - deliveries/s is at least 95 % of the offered deliveries/s (rate × devices per room);
 * - latency did not trend upward across the window: the p50 of the messages sent in its last
 *   third is at most TREND_FACTOR × the p50 of those sent in its first third, or below
 *   TREND_FLOOR_MS (a few ms of jitter doubling is not a trend).
 */
export const KEEP_UP = { delivered: 0.999, rate: 0.95, trendFactor: 2, trendFloorMs: 20 } as const;

/** The devices using this much of CPU 1 between them: the step may say more about them than about the server. */
export const CLIENT_BOUND_CORE = 0.8;

export interface PathStep {
  rate: number;
  /** Rate × the mean live devices per room. */
  offeredDeliveriesPerSecond: number;
  sent: number;
  warmupSent: number;
  skipped: number;
  expected: number;
  received: number;
  deliveryRatio: number;
  /**
   * Deliveries ÷ the time they took to arrive: from the first to the last delivery of the window's
   * messages plus one send interval, and never less than the window (a backlog released in a burst
   * does not count above the offered rate).
   */
  deliveriesPerSecond: number;
  latency: Percentiles;
  /** p50 of the messages sent in each third of the window. */
  thirdsP50: number[];
  /** Last delivery − last send (ms). */
  tailMs: number;
  acks: {
    ok: number;
    errors: Record<string, number>;
    /** Error frames answering no send (their request ids unknown). */
    otherErrors: Record<string, number>;
    outOfOrder: number;
    unknown: number;
    unanswered: number;
    latency: Percentiles;
  };
  order: { duplicates: number; gaps: number; missing: number };
  /** Marked deliveries of other steps (the warm-up's) seen meanwhile. */
  stale: number;
  drainSeconds: number;
  /** Close codes the devices saw so far (cumulative over the series). */
  closeCodes: Record<string, number>;
  cpu: CpuReport;
  /**
   * Cores over the measured window: the server process, PostgreSQL (the series' backends and the
   * shared processes), NATS + Redis, the load (devices and orchestrator), and what else ran on CPU 0.
   */
  cores: {
    server: number;
    database: number;
    queue: number;
    load: number;
    otherOnServerCpu: number;
    otherOnLoadCpu: number;
  };
  /** How busy each CPU was over the window (CPU 0: the servers; CPU 1: the load). */
  cpuBusy: number[];
  /** The devices used CLIENT_BOUND_CORE of CPU 1 or more. */
  clientBound: boolean;
  keptUp: boolean;
  /** Why not, when it did not. */
  failed: string[];
}

/** The rule above; reasons it failed, empty when it kept up. */
export function keepUpFailures(s: PathStep): string[] {
  const out: string[] = [];
  if (!(s.deliveryRatio >= KEEP_UP.delivered)) out.push("delivered < 99.9 %");
  if (!(s.deliveriesPerSecond >= KEEP_UP.rate * s.offeredDeliveriesPerSecond)) out.push("deliveries/s < 95 % offered");
  const [first, , last] = s.thirdsP50;
  if (first !== undefined && last !== undefined && last > KEEP_UP.trendFactor * first && last > KEEP_UP.trendFloorMs) {
    out.push("latency trending up");
  }
  return out;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const merge = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  return into;
};

/**
 * Waits for the step's stragglers: until every delivery due arrived and every send was answered,
 * or nothing moved for 3 s, or `drainMs` passed. Answers each process's figures.
 */
async function drain(procs: Child[], expected: number, drainMs: number): Promise<StreamStats[]> {
  const deadline = performance.now() + drainMs;
  let last = -1;
  let movedAt = performance.now();
  for (;;) {
    const stats = await Promise.all(procs.map((p) => p.call<StreamStats>("stream.stats", {}, 30_000)));
    const received = sum(stats.map((s) => s.received));
    const pending = sum(stats.map((s) => s.acks.pending));
    if ((received >= expected && pending <= 0) || performance.now() > deadline) return stats;
    const progress = received + sum(stats.map((s) => s.acks.ok + sum(Object.values(s.acks.errors))));
    if (progress !== last) {
      last = progress;
      movedAt = performance.now();
    } else if (performance.now() - movedAt > 3000) return stats;
    await sleep(100);
  }
}

const sleepUntil = (at: number) => sleep(Math.max(0, at - now()));

export interface StepPlan {
  rate: number;
  /** Processes holding devices (all report deliveries). */
  procs: Child[];
  /** The share of the rate each process sends (0: it only receives). */
  shares: number[];
  /** Labels of the server processes, for the CPU split. */
  serverLabels: string[];
  /** Whether PostgreSQL, NATS and Redis are pinned to CPU 0 too. */
  pinnedInfra: boolean;
}

/** Runs one step of a ramp. */
export async function runStep(ctx: Ctx, plan: StepPlan): Promise<PathStep> {
  const p = ctx.profile.path;
  const { pinnedInfra } = plan;
  const warm = nextStepId();
  const id = nextStepId();
  const startAt = now() + 500;
  const windowStart = startAt + p.warmupMs;
  const windowEnd = windowStart + p.stepMs;
  const begun = await Promise.all(
    plan.procs.map((c) =>
      c.call<{ live: Record<string, number> }>("stream.begin", { warm, id, windowStart, windowEnd }, 30_000),
    ),
  );
  const live = begun.reduce((acc, b) => merge(acc, b.live), {} as Record<string, number>);
  const rooms = Object.keys(live).length;
  const meanLive = rooms ? sum(Object.values(live)) / rooms : 0;
  const sending = Promise.all(
    plan.procs.map((c, i) => {
      const rate = plan.rate * (plan.shares[i] ?? 0);
      if (rate <= 0) return Promise.resolve(undefined);
      return c.call<StreamSendResult>(
        "stream.send",
        { warm, id, startAt, warmupMs: p.warmupMs, windowMs: p.stepMs, rate, maxInFlight: 10_000 },
        p.warmupMs + p.stepMs + 60_000,
      );
    }),
  );
  await sleepUntil(windowStart);
  ctx.cpu.begin();
  const ticks = perCpuTicks();
  await sleepUntil(windowEnd);
  const cpu = ctx.cpu.end();
  const busy = cpuBusy(ticks, perCpuTicks());
  const sent = (await sending).filter((x): x is StreamSendResult => !!x);
  const sentByRoom = sent.reduce((acc, s) => merge(acc, s.sentByRoom), {} as Record<string, number>);
  const expected = sum(Object.entries(sentByRoom).map(([room, n]) => n * (live[room] ?? 0)));
  const drained = performance.now();
  const stats = await drain(plan.procs, expected, p.drainMs);
  const drainSeconds = (performance.now() - drained) / 1000;

  const hist = new Histogram();
  const thirds = [new Histogram(), new Histogram(), new Histogram()];
  const ackLatency = new Histogram();
  for (const s of stats) {
    hist.merge(s.latency);
    for (const [i, t] of s.thirds.entries()) thirds[i]?.merge(t);
    ackLatency.merge(s.acks.latency);
  }
  const received = sum(stats.map((s) => s.received));
  const firstAt = Math.min(...stats.filter((s) => s.firstAt > 0).map((s) => s.firstAt));
  const lastAt = Math.max(0, ...stats.map((s) => s.lastAt));
  const lastSentAt = Math.max(0, ...sent.map((s) => s.lastSentAt));
  const spanMs = Math.max(p.stepMs, lastAt - firstAt + 1000 / plan.rate);
  const label = (pred: (k: string) => boolean) =>
    round(sum(Object.entries(cpu.cores).flatMap(([k, v]) => (pred(k) ? [v] : []))), 3);
  const load = label((k) => k === "bench orchestrator" || k.startsWith("path "));
  const server = label((k) => plan.serverLabels.includes(k));
  const database = label((k) => k.startsWith("postgres"));
  const queue = label((k) => k === "nats-server" || k === "redis-server");
  const step: PathStep = {
    rate: plan.rate,
    offeredDeliveriesPerSecond: plan.rate * meanLive,
    sent: sum(sent.map((s) => s.sent)),
    warmupSent: sum(sent.map((s) => s.warmupSent)),
    skipped: sum(sent.map((s) => s.skipped)),
    expected,
    received,
    deliveryRatio: expected ? received / expected : Number.NaN,
    deliveriesPerSecond: received > 0 && Number.isFinite(firstAt) ? received / (spanMs / 1000) : 0,
    latency: hist.summary(),
    thirdsP50: thirds.map((t) => t.percentile(50)),
    tailMs: lastAt > 0 && lastSentAt > 0 ? lastAt - lastSentAt : Number.NaN,
    acks: {
      ok: sum(stats.map((s) => s.acks.ok)),
      errors: stats.reduce((acc, s) => merge(acc, s.acks.errors), {} as Record<string, number>),
      otherErrors: stats.reduce((acc, s) => merge(acc, s.acks.otherErrors), {} as Record<string, number>),
      outOfOrder: sum(stats.map((s) => s.acks.outOfOrder)),
      unknown: sum(stats.map((s) => s.acks.unknown)),
      unanswered: sum(stats.map((s) => Math.max(0, s.acks.pending))),
      latency: ackLatency.summary(),
    },
    order: {
      duplicates: sum(stats.map((s) => s.duplicates)),
      gaps: sum(stats.map((s) => s.gaps)),
      missing: sum(stats.map((s) => s.missing)),
    },
    stale: sum(stats.map((s) => s.stale)),
    drainSeconds: round(drainSeconds, 2),
    closeCodes: stats.reduce((acc, s) => merge(acc, s.closeCodes), {} as Record<string, number>),
    cpu,
    cores: {
      server,
      database,
      queue,
      load,
      // Everything of ours on CPU 0 is pinned there: the rest of its busy time is someone else's.
      otherOnServerCpu: round(Math.max(0, (busy[0] ?? 0) - server - (pinnedInfra ? database + queue : 0)), 3),
      otherOnLoadCpu: round(Math.max(0, (busy[1] ?? 0) - load), 3),
    },
    cpuBusy: busy,
    clientBound: load >= CLIENT_BOUND_CORE,
    keptUp: false,
    failed: [],
  };
  step.failed = keepUpFailures(step);
  step.keptUp = step.failed.length === 0;
  return step;
}
