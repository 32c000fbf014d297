import { sourceAddresses } from "../lib/addresses.js";
import { type Ctx, launch, type ServerSpec, withCpu } from "../lib/context.js";
import { type CpuReport, listenOverflows } from "../lib/cpu.js";
import { Histogram, type Percentiles } from "../lib/hist.js";
import { type Child, type Server, sleep, startGenerator } from "../lib/proc.js";
import { addCounts, chatAs, createRoom, mapPool, sendTexts } from "../lib/setup.js";

/** Every device reconnects at a random moment of this window: within ±250 ms of its middle. */
export const RECONNECT_WINDOW_MS = 500;

interface CaughtUp {
  devices: number;
  caughtUp: number;
  allCaughtUpMs: number;
  lastSyncedMs: number;
  catchUp: import("../lib/hist.js").HistogramData;
  /** From the reconnect signal until each device's upgrade completed, and until its `synced`. */
  opened: import("../lib/hist.js").HistogramData;
  synced: import("../lib/hist.js").HistogramData;
  missing: number;
  gaps: number;
  dups: number;
  events: number;
  failedAttempts: number;
  attempts: number;
  closeCodes: Record<string, number>;
}

export interface StormResult {
  devices: number;
  /** Gateway-only processes beside the server's own gateway (absent in older results: none). */
  gateways?: number;
  /** Devices reconnect at a random moment of this window (absent in older results: the SDK's first backoff). */
  reconnectWindowMs?: number;
  rooms: number;
  roomSize: number;
  connectSeconds: number;
  connectFailed: number;
  sentWhileDown: number;
  sentDuringReconnect: number;
  /**
   * From the reconnect signal until every device had shown every event it missed while down (NaN:
   * not all by the deadline). Older results: until it had also shown the one sent while they came back.
   */
  allCaughtUpSeconds: number;
  /** Until every device had also shown the events sent while they came back (absent in older results). */
  withLiveSeconds?: number;
  /** From the reconnect signal until every device had its `synced` (NaN: not all by the deadline). */
  allSyncedSeconds: number;
  deadlineSeconds: number;
  perDeviceCatchUpMs: Percentiles;
  /** From the reconnect signal until each device's upgrade completed (absent in older results). */
  perDeviceOpenMs?: Percentiles;
  /** From the reconnect signal until each device's `synced` (absent in older results). */
  perDeviceSyncedMs?: Percentiles;
  caughtUp: number;
  /** Seqs a device skipped: shown a later event without an earlier one (0 is the only acceptable figure). */
  lost: number;
  /** Events not yet shown at the deadline by devices still reconnecting. */
  notYetShown: number;
  /** Connections the kernel dropped because the server's accept queue was full (machine-wide counter). */
  listenOverflows: number;
  /** Events shown twice (the gateway dedupes: 0 expected). */
  duplicates: number;
  replayedEvents: number;
  reconnectAttempts: number;
  failedAttempts: number;
  closeCodes: Record<string, number>;
  cpu: CpuReport;
}

/**
 * Scenario 5: N devices in rooms of 20 (each in two rooms), all connected; every socket dies at
 * once; messages are sent while they are down and while they come back (12 per device); each device
 * reconnects within ±250 ms of the others and resumes from its positions. Measures the time until all caught up,
 * and counts what was lost or shown twice.
 */
export async function storm(ctx: Ctx, server: Server, spec: ServerSpec): Promise<StormResult> {
  const { devices: n, roomSize, whileDown, processes, gateways: extra } = ctx.profile.storm;
  const tag = `${ctx.runId}-storm`;
  const owner = `${tag}-owner`;
  const users = Array.from({ length: n }, (_, i) => `${tag}-u${i}`);
  const chat = chatAs(server.grpcUrl, ctx.signer, owner);
  // Rooms overlap by half: room r holds users r*10 … r*10+19, so each user is in two rooms.
  const stride = roomSize / 2;
  const roomCount = Math.ceil(n / stride);
  ctx.log(`storm: creating ${roomCount} rooms for ${n} devices`);
  const rooms = await mapPool(
    Array.from({ length: roomCount }, (_, r) => r),
    8,
    async (r) => {
      const members = Array.from({ length: roomSize }, (_, k) => users[(r * stride + k) % n] as string);
      return { id: await createRoom(chat, `${tag} ${r}`, members), members };
    },
  );

  // Gateway-only processes beside the server's own gateway (each its own accept queue and event
  // loop), forwarding ChatService calls to the server as a deployment does.
  const gateways: Server[] = [];
  for (let g = 0; g < extra; g++) {
    gateways.push(
      await launch(ctx, {
        ...spec,
        name: `storm gateway ${g + 1}`,
        dbUri: undefined,
        services: "gateway",
        chatServiceUri: server.grpcUrl,
      }),
    );
  }
  const wsUrls = gateways.length > 0 ? gateways.map((g) => g.wsUrl) : [server.wsUrl];
  const gens: Child[] = await Promise.all(
    Array.from({ length: processes }, (_, i) => startGenerator(`storm devices ${i + 1}`)),
  );
  try {
    const share = Math.ceil(n / processes);
    const started = performance.now();
    ctx.log(`storm: connecting ${n} devices`);
    const connects = await Promise.all(
      gens.map((g, i) =>
        g.call<{ connected: number; failed: number; firstError?: string }>("devices.connect", {
          url: wsUrls[i % wsUrls.length],
          kind: "chat",
          track: "seq",
          keyFile: ctx.keyFile,
          users: users.slice(i * share, (i + 1) * share),
          concurrency: 100,
          rooms,
          // Past 15,000 devices, one source address lacks the ports; each socket is opened twice
          // (the connect, the reconnect after the cut), and the first ones wait in TIME_WAIT.
          ...(n > 15_000 ? { localAddresses: sourceAddresses(share * 2) } : {}),
        }),
      ),
    );
    const connectSeconds = (performance.now() - started) / 1000;
    const connectFailed = connects.reduce((a, c) => a + c.failed, 0);

    // One message per room while all are connected, so every device knows where it stands.
    const expected: Record<string, number> = {};
    const sendRound = async (count: number, label: string) =>
      mapPool(rooms, 16, async (room) => {
        expected[room.id] = await sendTexts(chat, room.id, count, `${tag}-${label}-${room.id}`);
      });
    await sendRound(1, "before");
    const before = await Promise.all(
      gens.map((g) => g.call<CaughtUp>("storm.waitCaughtUp", { expected, timeoutMs: 30_000 })),
    );
    const notReady = before.reduce((a, b) => a + (b.devices - b.caughtUp), 0);
    if (notReady > 0) ctx.log(`storm: ${notReady} devices had not caught up before the drop`);

    ctx.log(`storm: dropping all ${n} connections; ${whileDown} messages per room while they are down`);
    const deadlineMs = 120_000;
    const overflowsBefore = listenOverflows();
    let missedResult: CaughtUp[] = [];
    const { result, cpu } = await withCpu(ctx, async () => {
      await Promise.all(gens.map((g) => g.call("storm.drop")));
      await sendRound(whileDown, "down");
      // What each device missed: its catch-up is timed to the last of these.
      const missed = { ...expected };
      await Promise.all(gens.map((g) => g.call("storm.reconnect", { windowMs: RECONNECT_WINDOW_MS })));
      const caughtUpOnMissed = Promise.all(
        gens.map((g) => g.call<CaughtUp>("storm.waitCaughtUp", { expected: missed, timeoutMs: deadlineMs })),
      );
      // One more per room while they come back: live delivery racing the replay.
      await sleep(100);
      await sendRound(1, "during");
      missedResult = await caughtUpOnMissed;
      const waits = await Promise.all(
        gens.map((g) => g.call<CaughtUp>("storm.waitCaughtUp", { expected, timeoutMs: deadlineMs, again: true })),
      );
      return waits;
    });
    const hist = Histogram.of(missedResult.map((w) => w.catchUp));
    const closeCodes = addCounts(result.map((w) => w.closeCodes));
    const out: StormResult = {
      devices: n,
      gateways: extra,
      reconnectWindowMs: RECONNECT_WINDOW_MS,
      rooms: roomCount,
      roomSize,
      connectSeconds,
      connectFailed,
      sentWhileDown: roomCount * whileDown,
      sentDuringReconnect: roomCount,
      allCaughtUpSeconds: missedResult.some((w) => w.allCaughtUpMs < 0)
        ? Number.NaN
        : Math.max(...missedResult.map((w) => w.allCaughtUpMs)) / 1000,
      withLiveSeconds: result.some((w) => w.allCaughtUpMs < 0)
        ? Number.NaN
        : Math.max(...result.map((w) => w.allCaughtUpMs)) / 1000,
      allSyncedSeconds: result.some((w) => w.lastSyncedMs < 0)
        ? Number.NaN
        : Math.max(...result.map((w) => w.lastSyncedMs)) / 1000,
      deadlineSeconds: deadlineMs / 1000,
      perDeviceCatchUpMs: hist.summary(),
      perDeviceOpenMs: Histogram.of(result.map((w) => w.opened)).summary(),
      perDeviceSyncedMs: Histogram.of(result.map((w) => w.synced)).summary(),
      caughtUp: result.reduce((a, w) => a + w.caughtUp, 0),
      lost: result.reduce((a, w) => a + w.gaps, 0),
      notYetShown: result.reduce((a, w) => a + w.missing, 0),
      listenOverflows: listenOverflows() - overflowsBefore,
      duplicates: result.reduce((a, w) => a + w.dups, 0),
      replayedEvents: result.reduce((a, w) => a + w.events, 0),
      reconnectAttempts: result.reduce((a, w) => a + w.attempts, 0),
      failedAttempts: result.reduce((a, w) => a + w.failedAttempts, 0),
      closeCodes,
      cpu,
    };
    ctx.log(
      `storm: ${out.caughtUp}/${n} caught up, all in ${out.allCaughtUpSeconds.toFixed(2)} s; lost ${out.lost}, ` +
        `duplicates ${out.duplicates}, not yet shown ${out.notYetShown}, accept queue overflows ${out.listenOverflows}`,
    );
    await Promise.all(gens.map((g) => g.call("devices.close")));
    return out;
  } finally {
    await Promise.allSettled(gateways.map((g) => g.proc.stop()));
    await Promise.allSettled(gens.map((g) => g.stop()));
  }
}
