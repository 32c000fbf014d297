import { randomBytes } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect } from "@nats-io/transport-node";
import { type AckEvent, ChatService, type RoomEvent, RoomEventType, RoomType } from "@service-chat/api";
import { deleteAmqpNames } from "@service-chat/core/queue/amqp";
import {
  type DeviceTransport,
  type FreshDatabase,
  freshDatabase,
  type GatewayAddress,
  type Issuer,
  ResumingDevice,
  SendFailed,
  type ServiceProcess,
  startIssuer,
  startService,
  until,
} from "@service-chat/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const NATS = "nats://127.0.0.1:4222";
const REDIS = "redis://127.0.0.1:6379";
const AMQP = "amqp://127.0.0.1:5672";
const AUDIENCE = "service-chat-cluster";

const ROOMS = 20;
const USERS = 50;
const MEMBERS = 5;
const MESSAGES = 5_000;
const GATEWAY_KILL_AT = 2_000;
const DEFAULT_KILL_AT = 3_500;
/** Messages started per second, and at most this many unanswered at once (the machine has 2 cores). */
const RATE = 125;
const MAX_IN_FLIGHT = 24;
/** How long one message may keep failing (kills included) before the test gives up on it. */
const SEND_DEADLINE_MS = 90_000;
/** How long, once everything is sent, devices may take to show it all. */
const DELIVERY_WAIT_MS = 120_000;

/** Time between sends (the rate) and between retries (the backoff): load shaping, not waiting for something. */
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A small deterministic PRNG (mulberry32), so every run sends the same messages the same way. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sums a counter of a process's /metrics (Prometheus text format). */
async function counter(p: ServiceProcess, name: string): Promise<number> {
  const text = await (await fetch(`${p.httpUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`).exec(line);
    if (m) total += Number(m[1]);
  }
  return total;
}

/** Seqs that are not exactly 1..last in increasing order: what is missing, repeated or out of order. */
function sequenceProblems(seqs: number[], last: number): string | undefined {
  const missing: number[] = [];
  const present = new Set(seqs);
  for (let s = 1; s <= last; s++) if (!present.has(s)) missing.push(s);
  const disorder = seqs.findIndex((s, i) => s !== i + 1);
  if (missing.length === 0 && seqs.length === last && disorder === -1) return undefined;
  const sample = (xs: number[]) => `${xs.slice(0, 10).join(",")}${xs.length > 10 ? ` (+${xs.length - 10})` : ""}`;
  return [
    missing.length > 0 ? `missing seqs ${sample(missing)}` : "",
    seqs.length !== present.size ? `${seqs.length - present.size} repeated` : "",
    disorder >= 0 ? `out of order from position ${disorder}: ${seqs.slice(disorder, disorder + 5).join(",")}` : "",
    seqs.length > last ? `beyond last_seq ${last}` : "",
  ]
    .filter(Boolean)
    .join("; ");
}

const transports: DeviceTransport[] = ["ws-binary", "grpc", "ws-json", "grpc"];

// Several processes share one database: the PostgreSQL server (PGlite is one process's own).
describe("a cluster of 2 Default Services and 2 gateways", () => {
  let issuer: Issuer;
  beforeAll(async () => {
    issuer = await startIssuer(AUDIENCE);
  });
  afterAll(async () => {
    await issuer?.close();
  });

  describe.each([
    ["NATS", NATS],
    ["Redis", REDIS],
    ["RabbitMQ", AMQP],
  ])("with the %s queue", (backend, queueUri) => {
    const name = `cluster_${process.pid}_${randomBytes(4).toString("hex")}`;
    let db: FreshDatabase;
    const procs: ServiceProcess[] = [];
    const devices: ResumingDevice[] = [];
    let defaults: [ServiceProcess, ServiceProcess];
    let gateways: [ServiceProcess, ServiceProcess];

    beforeAll(async () => {
      db = await freshDatabase("postgres");
      const common = {
        QUEUE_USER_EVENT_DELIVERY_URI: queueUri,
        QUEUE_USER_EVENT_DELIVERY_NAME: name,
        QUEUE_REDELIVERY_MS: "2000",
        CACHE_URI: REDIS,
        OAUTH2_ISSUER: issuer.url,
        OAUTH2_JWT_VERIFY_AUDIENCE: AUDIENCE,
        HEARTBEAT_INTERVAL_SEC: "1",
        CONNECTION_TIMEOUT_SEC: "5",
        SHUTDOWN_GRACE_SEC: "1",
        LOG_LEVEL: "warn",
      };
      const service = { ...common, SERVICES: "api,relay,fanout", DB_URI: db.uri, DB_POOL_SIZE: "8" };
      // #1 first, so it holds the relay lock (and, on Redis, the fan-out leases) when it is killed.
      const first = await startService("default-1", service);
      procs.push(first);
      const second = await startService("default-2", service);
      procs.push(second);
      defaults = [first, second];
      const gateway = (id: string, upstream: ServiceProcess) =>
        startService(`gateway-${id}`, {
          ...common,
          SERVICES: "gateway",
          CHAT_SERVICE_URI: upstream.grpcUrl,
          GATEWAY_ID: `gw-${id}-${name}`,
        }).then((p) => {
          procs.push(p);
          return p;
        });
      gateways = await Promise.all([gateway("a", first), gateway("b", second)]);
    });

    afterAll(async () => {
      await Promise.allSettled(devices.map((d) => d.stop()));
      await Promise.allSettled(procs.map((p) => p.stop()));
      await db?.drop();
      const redis = new Redis(REDIS);
      try {
        let cursor = "0";
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", `${name}:*`, "COUNT", 1000);
          if (keys.length > 0) await redis.del(...keys);
          cursor = next;
        } while (cursor !== "0");
      } finally {
        await redis.quit();
      }
      if (queueUri === AMQP) await deleteAmqpNames(AMQP, name, 8, ["fanout"]); // QUEUE_PARTITIONS' default
      if (queueUri === NATS) {
        const nc = await natsConnect({ servers: NATS });
        try {
          await (await jetstreamManager(nc)).streams.delete(name).catch(() => false);
        } finally {
          await nc.close();
        }
      }
    });

    it(`delivers ${MESSAGES} messages to every device in order, once, across a gateway kill and a Default Service kill`, async () => {
      const started = Date.now();
      const [gwA, gwB] = gateways;
      const [def1, def2] = defaults;
      const addresses: GatewayAddress[] = gateways.map((g) => ({
        name: g.name,
        httpUrl: g.httpUrl,
        grpcUrl: g.grpcUrl,
      }));
      const users = Array.from({ length: USERS }, (_, i) => `user-${i}`);
      const tokens = new Map<string, Promise<string>>();
      const token = (sub: string, device?: string) => {
        const key = `${sub}/${device ?? ""}`;
        let t = tokens.get(key);
        if (!t) {
          t = issuer.sign({ sub, ...(device ? { device_id: device } : {}) });
          tokens.set(key, t);
        }
        return t;
      };
      const chat = addresses.map((g) =>
        createClient(ChatService, createConnectTransport({ baseUrl: g.httpUrl, httpVersion: "1.1" })),
      );
      const as = async (user: string) => ({ headers: { authorization: `Bearer ${await token(user)}` } });

      // 20 rooms of 5 members each, created through a gateway (which forwards to its Default Service).
      const rooms: { id: string; members: string[] }[] = [];
      for (let r = 0; r < ROOMS; r++) {
        const members = Array.from({ length: MEMBERS }, (_, k) => users[(r * 7 + k * 11) % USERS] as string);
        const [owner, ...others] = members as [string, ...string[]];
        const { room } = await chat[r % 2]!.createRoom(
          { name: `room ${r}`, type: RoomType.GROUP, members: others.map((profileId) => ({ profileId })) },
          await as(owner),
        );
        rooms.push({ id: room!.id, members });
      }
      const roomsOf = new Map(users.map((u) => [u, rooms.filter((r) => r.members.includes(u)).map((r) => r.id)]));

      // One device per user: even users on gateway A, odd on B; half WebSocket (binary or JSON), half HTTP/2.
      const deviceOf = new Map<string, ResumingDevice>();
      users.forEach((user, i) => {
        const home = i % 2;
        const device = new ResumingDevice({
          profileId: user,
          deviceId: `device-${i}`,
          transport: transports[Math.floor(i / 2) % transports.length] as DeviceTransport,
          token: () => token(user, `device-${i}`),
          gateways: [addresses[home]!, addresses[1 - home]!],
        });
        devices.push(device);
        deviceOf.set(user, device);
      });
      await Promise.all(devices.map((d) => d.start()));
      expect(devices.filter((d) => d.gateway === gwA.name)).toHaveLength(USERS / 2);

      const lastSeqs = async () => {
        const out = new Map<string, number>();
        for (const r of rooms) {
          const { room } = await chat[1]!.getRoom({ roomId: r.id }, await as(r.members[0]!));
          out.set(r.id, Number(room!.lastSeq));
        }
        return out;
      };
      /** Device, room and the seqs still missing, for every device that has not shown everything yet. */
      const lagging = (last: Map<string, number>) =>
        devices.flatMap((d) =>
          (roomsOf.get(d.profileId) ?? []).flatMap((roomId) => {
            const shown = new Set(d.seqs(roomId));
            const missing: number[] = [];
            for (let s = 1; s <= (last.get(roomId) ?? 0); s++) if (!shown.has(s)) missing.push(s);
            return missing.length > 0 ? [{ device: d, roomId, missing }] : [];
          }),
        );
      // The hello replay shows each device its rooms' creation.
      const initial = await lastSeqs();
      await until("every device to show its rooms' creation", () => lagging(initial).length === 0);

      // The messages: a deterministic room, sender (a member) and path for each.
      const random = prng(20_240_601);
      const plan = Array.from({ length: MESSAGES }, (_, i) => {
        const room = rooms[Math.floor(random() * ROOMS)]!;
        const sender = room.members[Math.floor(random() * MEMBERS)]!;
        return { i, room, sender, viaStream: random() < 0.5 };
      });
      const acks = new Array<AckEvent | undefined>(MESSAGES);
      const retries = { stream: 0, sendEvent: 0 };
      const failures: string[] = [];

      const sendOnce = async (m: (typeof plan)[number], attempt: number): Promise<AckEvent> => {
        const event = {
          roomId: m.room.id,
          type: RoomEventType.TEXT,
          clientId: `c${m.i}`,
          content: { case: "text" as const, value: { body: `m${m.i}` } },
        };
        if (m.viaStream) return (deviceOf.get(m.sender) as ResumingDevice).send(event);
        // SendEvent through the gateway the sender's device is on (else either), the other one on a retry.
        const on = addresses.findIndex((a) => a.name === deviceOf.get(m.sender)?.gateway);
        const g = ((on >= 0 ? on : m.i) + attempt) % 2;
        const { ack } = await chat[g]!.sendEvent({ event: [event] }, { ...(await as(m.sender)), timeoutMs: 10_000 });
        const a = ack[0] as AckEvent;
        if (a.error) throw new SendFailed(`refused: ${a.error.code} ${a.error.message}`, a.error.code);
        return a;
      };
      const retryable = (err: unknown) =>
        err instanceof SendFailed
          ? err.code === undefined || ["unavailable", "internal", "deadline_exceeded", "aborted"].includes(err.code)
          : err instanceof ConnectError &&
            [Code.Unavailable, Code.Internal, Code.DeadlineExceeded, Code.Aborted, Code.Unknown].includes(err.code);
      const deliver = async (m: (typeof plan)[number]) => {
        const deadline = Date.now() + SEND_DEADLINE_MS;
        for (let attempt = 0; ; attempt++) {
          try {
            acks[m.i] = await sendOnce(m, attempt);
            return;
          } catch (err) {
            if (!retryable(err) || Date.now() > deadline) {
              failures.push(`message ${m.i} (${m.viaStream ? "stream" : "SendEvent"}): ${(err as Error).message}`);
              return;
            }
            retries[m.viaStream ? "stream" : "sendEvent"]++;
            await pause(Math.min(1_000, 50 * 2 ** attempt) * (0.5 + Math.random()));
          }
        }
      };

      /**
       * How long after `since` the condition held: a measurement for the log, not a verdict (a
       * loaded machine takes longer). Rejects, when awaited, if it never held.
       */
      const timeUntil = (since: number, what: string, cond: () => boolean) => {
        const ms = until(what, cond, { intervalMs: 20 }).then(() => Date.now() - since);
        ms.catch(() => {}); // awaited at the end
        return ms;
      };
      /** Whether every member's device has shown the first message acknowledged from `from` on. */
      const firstShownFrom = (from: number) => {
        const m = plan.slice(from).find((p) => acks[p.i]);
        const ack = m && acks[m.i];
        return (
          !!m &&
          !!ack &&
          m.room.members.every((u) => (deviceOf.get(u)?.positions.get(ack.roomId) ?? 0) >= Number(ack.seq))
        );
      };
      let gatewayKilledAt = 0;
      let relayBefore = { def1: 0, def2: 0 };
      let fanoutBefore = { def1: 0, def2: 0 };
      let movedToB: Promise<number> | undefined;
      let flowingAfterDefaultKill: Promise<number> | undefined;
      const homedOnA = devices.filter((d) => d.gateway === gwA.name);
      const inFlight = new Set<Promise<void>>();
      const sendStarted = Date.now();
      for (const m of plan) {
        if (m.i === GATEWAY_KILL_AT) {
          gwA.kill();
          gatewayKilledAt = Date.now();
          movedToB = timeUntil(gatewayKilledAt, "every device of gateway A to reconnect to gateway B", () =>
            homedOnA.every((d) => d.gateway === gwB.name),
          );
        }
        if (m.i === DEFAULT_KILL_AT) {
          relayBefore = {
            def1: await counter(def1, "chat_outbox_published_events_total"),
            def2: await counter(def2, "chat_outbox_published_events_total"),
          };
          fanoutBefore = {
            def1: await counter(def1, "chat_fanout_events_total"),
            def2: await counter(def2, "chat_fanout_events_total"),
          };
          def1.kill();
          flowingAfterDefaultKill = timeUntil(
            Date.now(),
            "the first message sent after the kill of Default Service #1 to be shown",
            () => firstShownFrom(DEFAULT_KILL_AT),
          );
        }
        const due = sendStarted + (m.i * 1000) / RATE;
        if (due > Date.now()) await pause(due - Date.now());
        while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
        const p = deliver(m).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await Promise.all(inFlight);
      const sendSeconds = (Date.now() - sendStarted) / 1000;
      expect(failures, failures.slice(0, 10).join("\n")).toEqual([]);

      // Every device shows every event of each of its rooms (bounded wait).
      const last = await lastSeqs();
      const settled = await until("every device to show everything", () => lagging(last).length === 0, {
        timeoutMs: DELIVERY_WAIT_MS,
        intervalMs: 200,
      }).catch(() => false);
      if (!settled) {
        const behind = lagging(last);
        const { device, roomId, missing } = behind[0]!;
        throw new Error(
          `after ${DELIVERY_WAIT_MS / 1000} s, ${behind.length} (device, room) pairs still miss events; e.g. ` +
            `${device.profileId}/${device.deviceId} (${device.transport}, on ${device.gateway ?? "no gateway"}, ` +
            `${device.reconnects} reconnects, last close ${JSON.stringify(device.lastClose)}` +
            `${device.ended ? `, ended ${JSON.stringify(device.ended)}` : ""}) in room ${roomId} ` +
            `(last_seq ${last.get(roomId)}) misses seqs ${missing.slice(0, 20).join(",")}` +
            `${missing.length > 20 ? ` (+${missing.length - 20})` : ""}; position ${device.positions.get(roomId)}`,
        );
      }

      // For every device and room: exactly 1..last_seq, each once, in increasing order.
      const problems: string[] = [];
      for (const d of devices) {
        for (const roomId of roomsOf.get(d.profileId) ?? []) {
          const problem = sequenceProblems(d.seqs(roomId), last.get(roomId) ?? 0);
          if (problem) problems.push(`${d.profileId}/${d.deviceId} (${d.transport}) in ${roomId}: ${problem}`);
        }
      }
      expect(problems, problems.slice(0, 10).join("\n")).toEqual([]);
      expect(devices.filter((d) => d.duplicates > 0).map((d) => `${d.profileId}: ${d.duplicates} shown again`)).toEqual(
        [],
      );
      expect(devices.filter((d) => d.ended).map((d) => `${d.profileId}: ${JSON.stringify(d.ended)}`)).toEqual([]);

      // The store: each room's history is its seqs 1..last_seq; every intended message is stored exactly once.
      const bodies = new Map<string, number>();
      for (const r of rooms) {
        const events: RoomEvent[] = [];
        let cursor = "";
        do {
          const page = await chat[1]!.getHistory({ roomId: r.id, cursor, limit: 100 }, await as(r.members[0]!));
          events.push(...page.events);
          cursor = page.nextCursor;
        } while (cursor);
        const seqs = events.map((e) => Number(e.seq)).sort((a, b) => a - b);
        expect(seqs).toEqual(Array.from({ length: last.get(r.id) ?? 0 }, (_, k) => k + 1));
        for (const e of events) {
          if (e.content.case === "text") bodies.set(e.content.value.body, (bodies.get(e.content.value.body) ?? 0) + 1);
        }
      }
      expect(bodies.size).toBe(MESSAGES);
      expect([...bodies.values()].every((n) => n === 1)).toBe(true);
      for (const m of plan) expect(bodies.get(`m${m.i}`), `message ${m.i}`).toBe(1);
      // Retried sends were answered with the original ack: one seq per message.
      const stored = new Set(acks.map((a) => `${a?.roomId}/${a?.seq}`));
      expect(stored.size).toBe(MESSAGES);
      const systemEvents = [...last.values()].reduce((a, b) => a + b, 0) - MESSAGES;
      expect(systemEvents).toBe([...initial.values()].reduce((a, b) => a + b, 0));

      // What the test claims to exercise did happen.
      const movedMs = await movedToB;
      const flowingMs = await flowingAfterDefaultKill;
      const reconnects = devices.reduce((n, d) => n + d.reconnects, 0);
      expect(reconnects).toBeGreaterThanOrEqual(homedOnA.length);
      expect(homedOnA.every((d) => d.connections.some((c) => c.gateway === gwB.name && c.at >= gatewayKilledAt))).toBe(
        true,
      );
      // #1 was the relay until it died; #2 took the relay and the fan-out over.
      expect(relayBefore.def1).toBeGreaterThan(0);
      expect(fanoutBefore.def1).toBeGreaterThan(0);
      const relayAfter = await counter(def2, "chat_outbox_published_events_total");
      const fanoutAfter = await counter(def2, "chat_fanout_events_total");
      expect(relayAfter).toBeGreaterThan(relayBefore.def2);
      expect(fanoutAfter).toBeGreaterThan(fanoutBefore.def2);
      for (const p of [gwB, def2]) expect(p.child.exitCode, `${p.name} exited:\n${p.output()}`).toBeNull();

      const byGateway = devices.filter((d) => d.gateway === gwB.name).length;
      console.log(
        `cluster on ${backend}: ${MESSAGES} messages in ${sendSeconds.toFixed(1)} s of sending, ` +
          `${((Date.now() - started) / 1000).toFixed(1)} s in all; ${reconnects} reconnects ` +
          `(${homedOnA.length} devices moved from gateway A, ${byGateway} on B at the end), ` +
          `${devices.reduce((n, d) => n + d.failedAttempts, 0)} failed connection attempts, ` +
          `send retries ${retries.stream} on device streams and ${retries.sendEvent} of SendEvent; ` +
          `gateway A's devices back on B ${movedMs} ms after its kill; the first message after #1's kill shown ` +
          `${flowingMs} ms after it; ` +
          `relay published ${relayBefore.def1} on #1 then ${relayAfter - relayBefore.def2} on #2, ` +
          `fan-out ${fanoutBefore.def1} on #1 and ${fanoutAfter} on #2`,
      );
    }, 360_000);
  });
});
