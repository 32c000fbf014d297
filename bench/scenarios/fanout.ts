import { type Ctx, withCpu } from "../lib/context.js";
import type { CpuReport } from "../lib/cpu.js";
import { Histogram, type Percentiles } from "../lib/hist.js";
import { now } from "../lib/payload.js";
import { type Child, type Server, sleep, spawnNode, startGenerator } from "../lib/proc.js";
import { chatAs, createRoom } from "../lib/setup.js";
import type { StepStats } from "../workers/devices.js";
import type { FanSendResult } from "../workers/send.js";

export interface FanStep {
  rate: number;
  offeredDeliveriesPerSecond: number;
  sent: number;
  acked: number;
  skipped: number;
  receivers: number;
  expected: number;
  received: number;
  deliveryRatio: number;
  duplicates: number;
  /** Deliveries per second from the step's start to its last delivery. */
  deliveriesPerSecond: number;
  /** How long after the last send the last delivery arrived (ms): grows when the server falls behind. */
  tailMs: number;
  latency: Percentiles;
  sustained: boolean;
  frameBytes: number;
  cpu: CpuReport;
  firstError?: string;
}

export interface FanRun {
  target: "service-chat" | "raw ws";
  roomSize: number;
  connectSeconds: number;
  connectFailed: number;
  steps: FanStep[];
  maxDeliveriesPerSecond: number;
  maxSustainedRate: number;
}

let stepId = 0;

/** Step ids are unique over the run, so a late delivery of an earlier step is never counted in a later one. */
export const nextStepId = (): number => ++stepId;

/** The profile's rates (for 1,000 members) scaled to a room's size: the same offered deliveries/s. */
export const ratesFor = (rates: number[], roomSize: number): number[] => [
  ...new Set(rates.map((r) => Math.max(1, Math.round((r * 1000) / roomSize)))),
];

/**
 * A step was kept up with when everything arrived, at (nearly) the offered rate, and the last
 * delivery came less than a second after the last send. A ramp stops after the first that was not.
 */
export const keptUp = (s: FanStep) =>
  s.deliveryRatio >= 0.999 && s.tailMs < 1000 && s.deliveriesPerSecond >= 0.95 * s.offeredDeliveriesPerSecond;

async function ramp(
  ctx: Ctx,
  target: FanRun["target"],
  receivers: Child[],
  sender: Child,
  send: { kind: "chat" | "raw"; url: string; user: string; roomId: string },
  roomSize: number,
  rates: number[],
  stepMs: number,
): Promise<FanStep[]> {
  const steps: FanStep[] = [];
  const { drainMs } = ctx.profile.fanout;
  for (const rate of rates) {
    const id = nextStepId();
    const maxMsgs = Math.ceil((rate * stepMs) / 1000) + 16;
    const live = (
      await Promise.all(receivers.map((r) => r.call<{ devices: number }>("devices.stepBegin", { id, maxMsgs })))
    )
      .map((x) => x.devices)
      .reduce((a, b) => a + b, 0);
    ctx.log(`fan-out ${target} (${roomSize} members): ${rate} msg/s → ${rate * live} deliveries/s`);
    const startedAt = now();
    const { result, cpu } = await withCpu(ctx, async () => {
      const sent = await sender.call<FanSendResult>("fan.send", {
        ...send,
        keyFile: ctx.keyFile,
        step: id,
        rate,
        durationMs: stepMs,
        bodyBytes: ctx.profile.send.bodyBytes,
      });
      const expected = sent.acked * live;
      const stats = await drain(receivers, expected, drainMs);
      return { sent, stats, expected };
    });
    const { sent, stats, expected } = result;
    const hist = Histogram.of(stats.map((s) => s.hist));
    const received = stats.reduce((n, s) => n + s.received, 0);
    const lastAt = Math.max(...stats.map((s) => s.lastAt));
    const bytes = stats.reduce((n, s) => n + s.bytes, 0);
    const s: FanStep = {
      rate,
      offeredDeliveriesPerSecond: rate * live,
      sent: sent.sent,
      acked: sent.acked,
      skipped: sent.skipped,
      receivers: live,
      expected,
      received,
      deliveryRatio: expected ? received / expected : Number.NaN,
      duplicates: stats.reduce((n, x) => n + x.dups, 0),
      deliveriesPerSecond: received && lastAt > startedAt ? received / ((lastAt - startedAt) / 1000) : 0,
      tailMs: lastAt > 0 ? lastAt - sent.lastSentAt : Number.NaN,
      latency: hist.summary(),
      sustained: false,
      frameBytes: received ? Math.round(bytes / received) : 0,
      cpu,
      ...(sent.firstError ? { firstError: sent.firstError } : {}),
    };
    s.sustained = keptUp(s);
    steps.push(s);
    if (!s.sustained) break;
    await sleep(300);
  }
  return steps;
}

/**
 * Waits for the stragglers of a step: until everything expected arrived, nothing more arrived for
 * a second, or `drainMs` passed. Answers each receiver process's figures.
 */
export async function drain(receivers: Child[], expected: number, drainMs: number): Promise<StepStats[]> {
  const deadline = performance.now() + drainMs;
  let last = -1;
  let stillSince = performance.now();
  for (;;) {
    const stats = await Promise.all(receivers.map((r) => r.call<StepStats>("devices.stepStats")));
    const got = stats.reduce((n, s) => n + s.received, 0);
    if (got >= expected || performance.now() > deadline) return stats;
    if (got !== last) {
      last = got;
      stillSince = performance.now();
    } else if (performance.now() - stillSince > 1000) return stats;
    await sleep(50);
  }
}

export function summarise(
  target: FanRun["target"],
  roomSize: number,
  steps: FanStep[],
  connect: { seconds: number; failed: number },
): FanRun {
  return {
    target,
    roomSize,
    connectSeconds: connect.seconds,
    connectFailed: connect.failed,
    steps,
    maxDeliveriesPerSecond: Math.max(0, ...steps.map((s) => s.deliveriesPerSecond)),
    maxSustainedRate: Math.max(0, ...steps.filter((s) => s.sustained).map((s) => s.rate)),
  };
}

/** Connects `users` (one device each) spread evenly over the receiver processes. */
export async function connectAll(
  ctx: Ctx,
  receivers: Child[],
  args: { url: string; kind: "chat" | "raw"; users: string[]; rooms?: { id: string; members: string[] }[] },
): Promise<{ seconds: number; failed: number }> {
  const started = performance.now();
  const share = Math.ceil(args.users.length / receivers.length);
  const results = await Promise.all(
    receivers.map((r, i) =>
      r.call<{ connected: number; failed: number; firstError?: string }>("devices.connect", {
        url: args.url,
        kind: args.kind,
        track: "latency",
        keyFile: ctx.keyFile,
        users: args.users.slice(i * share, (i + 1) * share),
        concurrency: 100,
        ...(args.rooms ? { rooms: args.rooms } : {}),
      }),
    ),
  );
  const failed = results.reduce((n, r) => n + r.failed, 0);
  if (failed > 0) ctx.log(`  ${failed} devices failed to connect: ${results.find((r) => r.firstError)?.firstError}`);
  return { seconds: (performance.now() - started) / 1000, failed };
}

/** A room of `roomSize` members and its sender, on a server. */
export async function fanRoom(ctx: Ctx, server: Server, roomSize: number, tag: string) {
  const sender = `${tag}-sender`;
  const users = Array.from({ length: roomSize }, (_, i) => `${tag}-m${i}`);
  const roomId = await createRoom(chatAs(server.grpcUrl, ctx.signer, sender), `${tag} room`, users);
  return { sender, users, roomId };
}

/**
 * Scenario 2: one room of `roomSize` members on WebSocket (binary), a sender at increasing
 * open-loop rates; then the same clients, payload and rates on the raw `ws` broadcast server.
 */
export async function fanOut(
  ctx: Ctx,
  server: Server,
  roomSize: number,
  options: { rates?: number[]; stepMs?: number; baseline?: boolean; tag?: string } = {},
): Promise<{ ours: FanRun; baseline?: FanRun }> {
  const f = ctx.profile.fanout;
  const rates = options.rates ?? ratesFor(f.rates, roomSize);
  const stepMs = options.stepMs ?? f.stepMs;
  const tag = `${ctx.runId}-${options.tag ?? `fan${roomSize}`}`;
  const room = await fanRoom(ctx, server, roomSize, tag);
  const receivers = await Promise.all(
    Array.from({ length: f.receiverProcesses }, (_, i) => startGenerator(`receivers ${i + 1}`)),
  );
  const sender = await startGenerator("sender");
  try {
    ctx.log(`fan-out: connecting ${roomSize} devices to Service Chat`);
    const connect = await connectAll(ctx, receivers, { url: server.wsUrl, kind: "chat", users: room.users });
    const oursSteps = await ramp(
      ctx,
      "service-chat",
      receivers,
      sender,
      { kind: "chat", url: server.grpcUrl, user: room.sender, roomId: room.roomId },
      roomSize,
      rates,
      stepMs,
    );
    const ours = summarise("service-chat", roomSize, oursSteps, connect);
    await Promise.all(receivers.map((r) => r.call("devices.close")));
    if (options.baseline === false) return { ours };

    const base = spawnNode("raw ws broadcast", "baseline", "bench/baselines/ws-broadcast.ts", { probe: true });
    try {
      const port = Number((await base.once((m) => typeof m.listening === "number", 30_000)).listening);
      ctx.log(`fan-out: connecting ${roomSize} devices to the raw ws broadcast server`);
      const bconnect = await connectAll(ctx, receivers, {
        url: `ws://127.0.0.1:${port}/`,
        kind: "raw",
        users: room.users,
      });
      const baseSteps = await ramp(
        ctx,
        "raw ws",
        receivers,
        sender,
        { kind: "raw", url: `ws://127.0.0.1:${port}/send`, user: room.sender, roomId: room.roomId },
        roomSize,
        rates,
        stepMs,
      );
      await Promise.all(receivers.map((r) => r.call("devices.close")));
      return { ours, baseline: summarise("raw ws", roomSize, baseSteps, bconnect) };
    } finally {
      await base.stop();
    }
  } finally {
    await Promise.allSettled([...receivers, sender].map((g) => g.stop()));
  }
}
