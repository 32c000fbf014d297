import { type Ctx, withCpu } from "../lib/context.js";
import { Histogram } from "../lib/hist.js";
import { now } from "../lib/payload.js";
import { type Child, type Server, sleep, startGenerator } from "../lib/proc.js";
import { chatAsMany, createRoom, mapPool } from "../lib/setup.js";
import type { StepStats } from "../workers/devices.js";
import type { RoomsKind, RoomsMix, RoomsSendResult } from "../workers/send.js";
import { connectAll, drain, type FanRun, type FanStep, keptUp, nextStepId, summarise } from "./fanout.js";

export interface RoomsStep extends FanStep {
  /** Events sent and acknowledged by kind. */
  byKind: Record<RoomsKind, { sent: number; acked: number }>;
  /** Reactions, edits or replies sent as texts because their room had no text to point at yet. */
  fellBack: number;
  /** Events refused or failed (not counted as due). */
  failed: number;
  /** Typing signals sent on the stream, and typing frames due to (other members) and received by devices. */
  typing: { sent: number; expected: number; received: number };
}

export interface RoomsRun extends FanRun {
  rooms: number;
  users: number;
  mix: RoomsMix;
  typingPerEvent: number;
  /** Creating the rooms, and the one text per room sent before the ramp. */
  createSeconds: number;
  seed: { calls: number; acked: number; refused: number; seconds: number; firstError?: string };
  /** The highest deliveries/s of a step kept up (0 when none was). */
  maxSustainedDeliveriesPerSecond: number;
  steps: RoomsStep[];
}

interface Room {
  id: string;
  members: string[];
}

async function ramp(ctx: Ctx, receivers: Child[], sender: Child, rooms: Room[]): Promise<RoomsStep[]> {
  const p = ctx.profile.rooms;
  const steps: RoomsStep[] = [];
  for (const rate of p.rates) {
    const id = nextStepId();
    const maxMsgs = Math.ceil((rate * p.stepMs) / 1000) + 16;
    const begun = await Promise.all(
      receivers.map((r) =>
        r.call<{ devices: number; down?: string[] }>("devices.stepBegin", { id, maxMsgs, listDown: true }),
      ),
    );
    // Every member's device gets every event of its rooms (the sender's own included): what an
    // event can reach is its room's members with a live device.
    const down = new Set(begun.flatMap((b) => b.down ?? []));
    const liveMembers = rooms.map((r) => r.members.filter((u) => !down.has(u)).length);
    const meanLive = liveMembers.reduce((a, b) => a + b, 0) / rooms.length;
    const live = begun.reduce((n, b) => n + b.devices, 0);
    const typingRate = rate * p.typingPerEvent;
    ctx.log(
      `many rooms: ${rate} events/s → ${Math.round(rate * meanLive)} deliveries/s (+ ${typingRate} typing signals/s)`,
    );
    const startedAt = now();
    const { result, cpu } = await withCpu(ctx, async () => {
      const [sent, ...typed] = await Promise.all([
        sender.call<RoomsSendResult>("rooms.send", {
          step: id,
          rate,
          durationMs: p.stepMs,
          bodyBytes: ctx.profile.send.bodyBytes,
          mix: p.mix,
        }),
        ...receivers.map((r) =>
          r.call<{ sent: number; skipped: number }>("devices.typing", {
            rate: typingRate / receivers.length,
            durationMs: p.stepMs,
          }),
        ),
      ]);
      const expected = sent.ackedPerRoom.reduce((n, acked, i) => n + acked * (liveMembers[i] as number), 0);
      let stats: StepStats[] = await drain(receivers, expected, p.drainMs);
      // Typing goes to the room's other members; give the last signals the moment events had.
      const typingSent = typed.reduce((n, t) => n + t.sent, 0);
      const typingExpected = Math.round(typingSent * Math.max(0, meanLive - 1));
      const typingBy = performance.now() + 1000;
      while (stats.reduce((n, s) => n + s.typing, 0) < typingExpected && performance.now() < typingBy) {
        await sleep(50);
        stats = await Promise.all(receivers.map((r) => r.call<StepStats>("devices.stepStats")));
      }
      return { sent, stats, expected, typingSent, typingExpected };
    });
    const { sent, stats, expected } = result;
    const hist = Histogram.of(stats.map((s) => s.hist));
    const received = stats.reduce((n, s) => n + s.received, 0);
    const lastAt = Math.max(...stats.map((s) => s.lastAt));
    const bytes = stats.reduce((n, s) => n + s.bytes, 0);
    const s: RoomsStep = {
      rate,
      offeredDeliveriesPerSecond: rate * meanLive,
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
      byKind: sent.byKind,
      fellBack: sent.fellBack,
      failed: sent.failed,
      typing: {
        sent: result.typingSent,
        expected: result.typingExpected,
        received: stats.reduce((n, x) => n + x.typing, 0),
      },
    };
    s.sustained = keptUp(s);
    ctx.log(
      `  ${Math.round(s.deliveriesPerSecond)} deliveries/s, ${(s.deliveryRatio * 100).toFixed(2)} % delivered, ` +
        `p95 ${s.latency.p95.toFixed(1)} ms, tail ${Math.round(s.tailMs)} ms, ${s.failed} failed, ` +
        `${s.skipped} skipped: ${s.sustained ? "kept up" : "did not keep up"}`,
    );
    steps.push(s);
    if (!s.sustained) break;
    await sleep(300);
  }
  return steps;
}

/**
 * Scenario 3: many small rooms. `rooms` users, each in `roomSize` of the `rooms` rooms (room r
 * holds users r … r+roomSize−1, mod rooms), every user's device on WebSocket; one sender process
 * with every member's token sends mixed traffic (texts, reactions, edits, replies) over SendEvent
 * at increasing open-loop rates, each event to a random room from one of its members, while the
 * devices send typing signals on their streams.
 */
export async function manyRooms(ctx: Ctx, server: Server): Promise<RoomsRun> {
  const p = ctx.profile.rooms;
  const tag = `${ctx.runId}-rooms`;
  const users = Array.from({ length: p.rooms }, (_, i) => `${tag}-u${i}`);
  const { chat, as } = chatAsMany(server.grpcUrl, ctx.signer);
  ctx.log(`many rooms: creating ${p.rooms} rooms of ${p.roomSize} members`);
  const created = performance.now();
  // Room r is created by user r (its owner, a member) with the next roomSize−1 users.
  const rooms: Room[] = await mapPool(
    Array.from({ length: p.rooms }, (_, r) => r),
    16,
    async (r) => {
      const members = Array.from({ length: p.roomSize }, (_, k) => users[(r + k) % p.rooms] as string);
      const owner = members[0] as string;
      return { id: await createRoom(chat, `${tag} ${r}`, members.slice(1), await as(owner)), members };
    },
  );
  const createSeconds = (performance.now() - created) / 1000;

  const receivers = await Promise.all(
    Array.from({ length: p.receiverProcesses }, (_, i) => startGenerator(`rooms devices ${i + 1}`)),
  );
  const sender = await startGenerator("rooms sender");
  try {
    ctx.log(`many rooms: connecting ${users.length} devices (${p.roomSize} rooms each)`);
    const connect = await connectAll(ctx, receivers, { url: server.wsUrl, kind: "chat", users, rooms });
    await sender.call("rooms.setup", { url: server.grpcUrl, keyFile: ctx.keyFile, connections: p.connections, rooms });
    const seed = await sender.call<RoomsRun["seed"]>("rooms.seed", { concurrency: 16 });
    ctx.log(
      `many rooms: seeded ${seed.acked} rooms with a text in ${seed.seconds.toFixed(1)} s` +
        `${seed.refused ? ` (${seed.refused} refused: ${seed.firstError})` : ""}`,
    );
    await sleep(1000);
    const steps = await ramp(ctx, receivers, sender, rooms);
    await Promise.all(receivers.map((r) => r.call("devices.close")));
    const sustained = steps.filter((s) => s.sustained);
    return {
      ...summarise("service-chat", p.roomSize, steps, connect),
      steps,
      rooms: rooms.length,
      users: users.length,
      mix: p.mix,
      typingPerEvent: p.typingPerEvent,
      createSeconds,
      seed,
      maxSustainedDeliveriesPerSecond: Math.max(0, ...sustained.map((s) => s.deliveriesPerSecond)),
    };
  } finally {
    await Promise.allSettled([...receivers, sender].map((g) => g.stop()));
  }
}
