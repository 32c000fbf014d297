import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type AckEvent, ChatService, RoomEventType, RoomType } from "@service-chat/api";
import type { FaultProxy, ServiceProcess } from "@service-chat/testing";
// The resuming client of the cluster test: reconnects with backoff, resumes from its cursors, dedupes.
import { type DeviceTransport, type GatewayAddress, ResumingDevice } from "@service-chat/testing";
import type pg from "pg";
import type { OwnServer } from "./infra.js";

export const FAULTS = ["default", "gateway", "nats", "redis", "postgres", "fanout-stop"] as const;
export type Fault = (typeof FAULTS)[number];

export interface Cluster {
  defaults: ServiceProcess[];
  gateways: ServiceProcess[];
  nats: OwnServer | undefined;
  redis: OwnServer;
  proxy: FaultProxy;
  /** Starts a killed process again on its ports; answers the new process. */
  restart(p: ServiceProcess): Promise<ServiceProcess>;
}

export interface PhaseResult {
  backend: string;
  fault: Fault;
  sent: number;
  acked: number;
  expected: number;
  delivered: number;
  missing: number;
  duplicated: number;
  outOfOrder: number;
  seqGaps: number;
  /** Once the fault is undone: from sending a message until every member shows it; undefined if they never did. */
  recoveryMs: number | undefined;
  /** Sends the sender gave up on, by the last answer each got (none is the bar). */
  gaveUp: Record<string, number>;
}

const USERS = 20;
const ROOMS = 8;
const MEMBERS = 5;
const SEND_DEADLINE_MS = 90_000;
const DELIVERY_WAIT_MS = 90_000;
/** How long a fault lasts before it is undone. */
const DOWN_MS = 3_000;

interface Room {
  id: string;
  members: string[];
}

export interface Traffic {
  rooms: Room[];
  deviceOf: Map<string, ResumingDevice>;
  chat: Client<typeof ChatService>[];
  as(user: string): Promise<{ headers: Record<string, string> }>;
  stop(): Promise<void>;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** A development token from whichever Default Service answers (they share the signer's key file). */
async function devToken(cluster: Cluster, sub: string, device?: string): Promise<string> {
  let last: unknown;
  for (const d of cluster.defaults) {
    try {
      const res = await fetch(`${d.httpUrl}/dev/token`, {
        method: "POST",
        body: JSON.stringify({ sub, ...(device ? { device_id: device } : {}) }),
      });
      if (res.ok) return ((await res.json()) as { token: string }).token;
      last = new Error(`dev token: ${res.status}`);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

/** Rooms created through the gateways, and one resuming device per user (half on each gateway). */
export async function setUpTraffic(cluster: Cluster): Promise<Traffic> {
  const tokens = new Map<string, Promise<string>>();
  const token = (sub: string, device?: string) => {
    const key = `${sub}/${device ?? ""}`;
    let t = tokens.get(key);
    if (!t) {
      t = devToken(cluster, sub, device);
      tokens.set(key, t);
      t.catch(() => tokens.delete(key)); // asked again next time, of another Default Service
    }
    return t;
  };
  const addresses: GatewayAddress[] = cluster.gateways.map((g) => ({
    name: g.name,
    httpUrl: g.httpUrl,
    grpcUrl: g.grpcUrl,
  }));
  const chat = addresses.map((g) =>
    createClient(ChatService, createConnectTransport({ baseUrl: g.httpUrl, httpVersion: "1.1" })),
  );
  const as = async (user: string) => ({ headers: { authorization: `Bearer ${await token(user)}` } });
  const users = Array.from({ length: USERS }, (_, i) => `user-${i}`);
  const rooms: Room[] = [];
  for (let r = 0; r < ROOMS; r++) {
    const members = Array.from({ length: MEMBERS }, (_, k) => users[(r * 3 + k * 4) % USERS] as string);
    const [owner, ...others] = [...new Set(members)] as [string, ...string[]];
    const { room } = await chat[r % 2]!.createRoom(
      { name: `chaos ${r}`, type: RoomType.GROUP, members: others.map((profileId) => ({ profileId })) },
      await as(owner),
    );
    rooms.push({ id: room!.id, members: [owner, ...others] });
  }
  const transports: DeviceTransport[] = ["ws-binary", "ws-json", "grpc"];
  const deviceOf = new Map<string, ResumingDevice>();
  users.forEach((user, i) => {
    const home = i % 2;
    deviceOf.set(
      user,
      new ResumingDevice({
        profileId: user,
        deviceId: `d${i}`,
        transport: transports[i % transports.length] as DeviceTransport,
        token: () => token(user, `d${i}`),
        gateways: [addresses[home]!, addresses[1 - home]!],
      }),
    );
  });
  await Promise.all([...deviceOf.values()].map((d) => d.start()));
  await Promise.all(users.map((u) => token(u))); // the sender's, while every process is up
  return {
    rooms,
    deviceOf,
    chat,
    as,
    async stop() {
      await Promise.all([...deviceOf.values()].map((d) => d.stop()));
    },
  };
}

/** Breaks something; answers how to undo it. */
async function inject(cluster: Cluster, fault: Fault): Promise<() => Promise<void>> {
  switch (fault) {
    case "default": {
      const victim = cluster.defaults[0]!;
      victim.kill();
      return async () => void (await cluster.restart(victim));
    }
    case "gateway": {
      const victim = cluster.gateways[0]!;
      victim.kill();
      return async () => void (await cluster.restart(victim));
    }
    case "nats": {
      const nats = cluster.nats!;
      nats.kill();
      return () => nats.restart();
    }
    case "redis":
      cluster.redis.kill();
      return () => cluster.redis.restart();
    case "postgres":
      await cluster.proxy.down();
      return () => cluster.proxy.up();
    case "fanout-stop": {
      const victim = cluster.defaults[1]!;
      victim.child.kill("SIGSTOP");
      return async () => void victim.child.kill("SIGCONT");
    }
  }
}

const RETRYABLE = [Code.Unavailable, Code.Internal, Code.DeadlineExceeded, Code.Aborted, Code.Unknown, Code.Canceled];

/** Sends `messages` at `rate` a second, breaks `fault` at 30% and undoes it after DOWN_MS, then counts. */
export async function runPhase(
  cluster: Cluster,
  traffic: Traffic,
  o: { backend: string; fault: Fault; messages: number; rate: number; admin: pg.Client },
): Promise<PhaseResult> {
  const random = prng(o.messages * 31 + FAULTS.indexOf(o.fault));
  const plan = Array.from({ length: o.messages }, (_, i) => {
    const room = traffic.rooms[Math.floor(random() * traffic.rooms.length)]!;
    return { i, room, sender: room.members[Math.floor(random() * room.members.length)]! };
  });
  const acks = new Array<{ ack: AckEvent; at: number } | undefined>(o.messages);
  const tag = `${o.backend}-${o.fault}`;
  /** Sends given up on, by the last answer they got. */
  const gaveUp = new Map<string, number>();
  const send = async (m: (typeof plan)[number]) => {
    let last = "deadline";
    const deadline = Date.now() + SEND_DEADLINE_MS;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      try {
        const { ack } = await traffic.chat[(m.i + attempt) % 2]!.sendEvent(
          {
            event: [
              {
                roomId: m.room.id,
                type: RoomEventType.TEXT,
                clientId: `${tag}-${m.i}`,
                content: { case: "text", value: { body: `${tag} ${m.i}` } },
              },
            ],
          },
          { ...(await traffic.as(m.sender)), timeoutMs: 5_000 },
        );
        const a = ack[0]!;
        if (!a.error) {
          acks[m.i] = { ack: a, at: Date.now() };
          return;
        }
        last = a.error.code;
        if (a.error.code !== "unavailable" && a.error.code !== "internal") break;
      } catch (err) {
        last = err instanceof ConnectError ? Code[err.code] : String(err);
        if (!(err instanceof ConnectError) || !RETRYABLE.includes(err.code)) break;
      }
      await pause(Math.min(2_000, 100 * 2 ** attempt) * (0.5 + Math.random()));
    }
    gaveUp.set(last, (gaveUp.get(last) ?? 0) + 1);
  };
  const shownEverywhere = (i: number) => {
    const a = acks[i];
    if (!a) return false;
    const m = plan[i]!;
    return m.room.members.every((u) => (traffic.deviceOf.get(u)?.seqs(m.room.id) ?? []).includes(Number(a.ack.seq)));
  };

  let undo: (() => Promise<void>) | undefined;
  let recovered = false;
  const sends: Promise<void>[] = [];
  const interval = 1000 / o.rate;
  const began = Date.now();
  for (const m of plan) {
    if (m.i === Math.floor(o.messages * 0.3)) {
      undo = await inject(cluster, o.fault);
      setTimeout(() => {
        void undo?.().then(() => {
          recovered = true;
        });
      }, DOWN_MS);
    }
    sends.push(send(m));
    const due = began + (m.i + 1) * interval;
    if (due > Date.now()) await pause(due - Date.now());
  }
  await Promise.all(sends);
  while (!recovered) await pause(50);

  // Recovery: a message sent once the fault is undone, from its send until every member shows it.
  const probe = { i: o.messages, room: traffic.rooms[0]!, sender: traffic.rooms[0]!.members[0]! };
  plan.push(probe);
  acks.push(undefined);
  const probeSent = Date.now();
  await send(probe);
  let recoveryMs: number | undefined;
  const waitUntil = Date.now() + DELIVERY_WAIT_MS;
  while (Date.now() < waitUntil) {
    if (recoveryMs === undefined && shownEverywhere(probe.i)) recoveryMs = Date.now() - probeSent;
    if (plan.every((m) => !acks[m.i] || shownEverywhere(m.i))) break;
    await pause(50);
  }
  if (recoveryMs === undefined && shownEverywhere(probe.i)) recoveryMs = Date.now() - probeSent;
  plan.pop();
  acks.pop();

  let expected = 0;
  let delivered = 0;
  const phaseSeqs = new Map<string, Set<number>>();
  for (const m of plan) {
    const a = acks[m.i];
    if (!a) continue;
    const seqs = phaseSeqs.get(m.room.id) ?? new Set<number>();
    seqs.add(Number(a.ack.seq));
    phaseSeqs.set(m.room.id, seqs);
    for (const u of m.room.members) {
      expected++;
      if ((traffic.deviceOf.get(u)?.seqs(m.room.id) ?? []).includes(Number(a.ack.seq))) delivered++;
    }
  }
  let duplicated = 0;
  let outOfOrder = 0;
  for (const device of traffic.deviceOf.values()) {
    for (const [roomId, seqs] of phaseSeqs) {
      const shown = device.seqs(roomId).filter((s) => seqs.has(s));
      duplicated += shown.length - new Set(shown).size;
      for (let k = 1; k < shown.length; k++) if ((shown[k] as number) < (shown[k - 1] as number)) outOfOrder++;
    }
  }
  const { rows } = await o.admin.query<{ gaps: string }>(
    "select coalesce(sum(r.last_seq - (select count(distinct e.seq) from room_events e where e.room_id = r.id)), 0) as gaps from rooms r",
  );
  return {
    backend: o.backend,
    fault: o.fault,
    sent: o.messages,
    acked: acks.filter(Boolean).length,
    expected,
    delivered,
    missing: expected - delivered,
    duplicated,
    outOfOrder,
    seqGaps: Number(rows[0]?.gaps ?? 0),
    recoveryMs,
    gaveUp: Object.fromEntries(gaveUp),
  };
}
