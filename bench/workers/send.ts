import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ChatService, RoomEventType, ServerFrameSchema } from "@service-chat/api";
import WebSocket from "ws";
import { Histogram, type HistogramData } from "../lib/hist.js";
import { body, countingId } from "../lib/payload.js";
import { signerFor } from "./signer.js";

type Chat = Client<typeof ChatService>;

/** ChatService clients speaking Connect binary over HTTP/2 (h2c), one HTTP/2 connection each. */
function clients(grpcUrl: string, connections: number): Chat[] {
  return Array.from({ length: connections }, () =>
    createClient(ChatService, createConnectTransport({ baseUrl: grpcUrl, httpVersion: "2", useBinaryFormat: true })),
  );
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface SendArgs {
  grpcUrl: string;
  keyFile: string;
  /** One loop (closed) or one share of the rate (open) per sender, each in its own room. */
  senders: { user: string; roomId: string }[];
  connections: number;
  /** closed: each sender waits for its answer before the next call; open: calls start at `rate` per second. */
  mode: "closed" | "open";
  /** Calls per second (open mode). */
  rate?: number;
  /** Open mode: calls beyond this many unanswered are not started (counted as skipped). */
  maxInFlight?: number;
  batch: number;
  warmupMs: number;
  durationMs: number;
  bodyBytes: number;
  /** The server's /metrics: read when the measured window opens and when it closes (see SendResult.serverMetrics). */
  metricsUrl?: string;
}

export interface SendResult {
  /** Events acknowledged (stored) during the measured window, and in all. */
  events: number;
  eventsTotal: number;
  calls: number;
  errors: number;
  refused: number;
  skipped: number;
  seconds: number;
  /** Client-measured SendEvent latency (request to response), measured window only. */
  latency: HistogramData;
  /**
   * The server's /metrics text when the measured window opened and when it closed, read from here
   * so the warm-up is left out of the server-side figures as it is of `latency`. Absent when no
   * metricsUrl was given or a read failed.
   */
  serverMetrics?: { start: string; end: string };
  firstError?: string;
}

/** The text of `url` once `at` (performance.now()) has come, without holding up the load. */
function readAt(url: string, at: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    setTimeout(
      () =>
        fetch(url)
          .then((r) => (r.ok ? r.text() : undefined))
          .then(resolve, () => resolve(undefined)),
      Math.max(0, at - performance.now()),
    );
  });
}

/** SendEvent load: closed loop (throughput) or open loop at a rate (latency at a given load). */
export async function sendLoad(a: SendArgs): Promise<SendResult> {
  const signer = await signerFor(a.keyFile);
  const chats = clients(a.grpcUrl, a.connections);
  const senders = await Promise.all(
    a.senders.map(async (s, i) => ({
      ...s,
      chat: chats[i % chats.length] as Chat,
      headers: { authorization: `Bearer ${await signer.sign({ sub: s.user })}` },
      n: 0,
    })),
  );
  const hist = new Histogram();
  const r: SendResult = {
    events: 0,
    eventsTotal: 0,
    calls: 0,
    errors: 0,
    refused: 0,
    skipped: 0,
    seconds: a.durationMs / 1000,
    latency: hist.toJSON(),
  };
  const t0 = performance.now();
  const measureFrom = t0 + a.warmupMs;
  const end = measureFrom + a.durationMs;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const snapshots = a.metricsUrl
    ? Promise.all([readAt(a.metricsUrl, measureFrom), readAt(a.metricsUrl, end)])
    : undefined;

  const call = async (s: (typeof senders)[number]) => {
    const events = Array.from({ length: a.batch }, () => ({
      roomId: s.roomId,
      type: RoomEventType.TEXT,
      content: { case: "text" as const, value: { body: body(0, s.n, a.bodyBytes) } },
      clientId: `${run}-${s.n++}`,
    }));
    const started = performance.now();
    try {
      const { ack } = await s.chat.sendEvent({ event: events }, { headers: s.headers, timeoutMs: 30_000 });
      const done = performance.now();
      const ok = ack.filter((x) => !x.error).length;
      if (ok < ack.length) {
        r.refused += ack.length - ok;
        r.firstError ??= ack.find((x) => x.error)?.error?.message;
      }
      r.eventsTotal += ok;
      if (started >= measureFrom && done <= end) {
        r.calls++;
        r.events += ok;
        hist.record(done - started);
      }
    } catch (err) {
      r.errors++;
      r.firstError ??= (err as Error).message;
    }
  };

  // Warm the HTTP/2 connections and token caches before the clock starts.
  await Promise.all(senders.slice(0, a.connections).map((s) => call(s)));

  if (a.mode === "closed") {
    await Promise.all(
      senders.map(async (s) => {
        while (performance.now() < end) await call(s);
      }),
    );
  } else {
    const rate = a.rate ?? 100;
    const maxInFlight = a.maxInFlight ?? 512;
    let started = 0;
    let inFlight = 0;
    let next = 0;
    const begin = performance.now();
    const pending = new Set<Promise<void>>();
    while (performance.now() < end) {
      const due = Math.floor((rate * (performance.now() - begin)) / 1000) - started;
      for (let i = 0; i < due; i++) {
        started++;
        if (inFlight >= maxInFlight) {
          if (performance.now() >= measureFrom) r.skipped++;
          continue;
        }
        const s = senders[next++ % senders.length] as (typeof senders)[number];
        inFlight++;
        const p = call(s).finally(() => {
          inFlight--;
          pending.delete(p);
        });
        pending.add(p);
      }
      await sleep(1);
    }
    await Promise.allSettled([...pending]);
  }
  r.latency = hist.toJSON();
  const [start, stop] = (await snapshots) ?? [];
  if (start !== undefined && stop !== undefined) r.serverMetrics = { start, end: stop };
  return r;
}

export interface FanSendArgs {
  kind: "chat" | "raw";
  /** chat: the h2c URL for SendEvent; raw: the baseline's ws URL to send on. */
  url: string;
  /** raw: several baseline servers to send each frame to (instead of `url`). */
  urls?: string[];
  keyFile: string;
  user: string;
  roomId: string;
  step: number;
  /** Messages per second. */
  rate: number;
  durationMs: number;
  bodyBytes: number;
  maxInFlight?: number;
}

export interface FanSendResult {
  sent: number;
  acked: number;
  failed: number;
  skipped: number;
  seconds: number;
  /** When the last message was sent (ms since the epoch, same clock as the bodies). */
  lastSentAt: number;
  firstError?: string;
  frameBytes?: number;
}

let fanChat: { key: string; chat: Chat; headers: Record<string, string> } | undefined;
let rawSocket: { key: string; sockets: WebSocket[] } | undefined;

/**
 * The sender of the fan-out scenario: one message per SendEvent call (chat) or one frame on
 * the baseline's socket (raw), at `rate` per second, open loop.
 */
export async function fanSend(a: FanSendArgs): Promise<FanSendResult> {
  const r: FanSendResult = { sent: 0, acked: 0, failed: 0, skipped: 0, seconds: 0, lastSentAt: 0 };
  let send: (n: number) => Promise<void> | undefined;
  if (a.kind === "chat") {
    if (fanChat?.key !== `${a.url} ${a.user}`) {
      const signer = await signerFor(a.keyFile);
      fanChat = {
        key: `${a.url} ${a.user}`,
        chat: clients(a.url, 1)[0] as Chat,
        headers: { authorization: `Bearer ${await signer.sign({ sub: a.user })}` },
      };
    }
    const { chat, headers } = fanChat;
    send = (n) =>
      chat
        .sendEvent(
          {
            event: [
              {
                roomId: a.roomId,
                type: RoomEventType.TEXT,
                content: { case: "text", value: { body: body(a.step, n, a.bodyBytes) } },
                clientId: `f${a.step}-${n}-${Date.now().toString(36)}`,
              },
            ],
          },
          { headers, timeoutMs: 30_000 },
        )
        .then(({ ack }) => {
          if (ack[0]?.error) {
            r.failed++;
            r.firstError ??= ack[0].error.message;
          } else r.acked++;
        })
        .catch((err: Error) => {
          r.failed++;
          r.firstError ??= err.message;
        });
  } else {
    const urls = a.urls ?? [a.url];
    if (rawSocket?.key !== urls.join(" ")) {
      for (const ws of rawSocket?.sockets ?? []) ws.close();
      const sockets = urls.map((url) => new WebSocket(url, { perMessageDeflate: false }));
      await Promise.all(
        sockets.map(
          (ws) =>
            new Promise<void>((resolve, reject) => {
              ws.once("open", () => resolve());
              ws.once("error", reject);
            }),
        ),
      );
      rawSocket = { key: urls.join(" "), sockets };
    }
    const { sockets } = rawSocket;
    // The same frame a member of the room gets from Service Chat, field for field.
    const template = {
      id: "01J9ZQ3M8E4X7K2B5N6P0R1S2T",
      roomId: a.roomId,
      source: { profileId: a.user },
      type: RoomEventType.TEXT,
      serverTs: timestampFromMs(Date.now()),
      sentAt: timestampFromMs(Date.now()),
      clientId: `f${a.step}-0-${Date.now().toString(36)}`,
    };
    send = (n) => {
      const frame = create(ServerFrameSchema, {
        frame: {
          case: "event",
          value: {
            ...template,
            seq: BigInt(n + 2),
            content: { case: "text", value: { body: body(a.step, n, a.bodyBytes) } },
          },
        },
      });
      const bytes = toBinary(ServerFrameSchema, frame);
      r.frameBytes = bytes.length;
      for (const ws of sockets) ws.send(bytes, { binary: true });
      r.acked++;
      return undefined;
    };
  }
  await paced(a, r, send);
  return r;
}

/**
 * Open-loop pacing: each tick starts `rate × elapsed − started` sends (numbered 0, 1, …), never
 * one per timer tick; beyond `maxInFlight` unanswered a send is not started and counts as skipped.
 * Waits for every answer, then sets `seconds`.
 */
async function paced(
  a: { rate: number; durationMs: number; maxInFlight?: number },
  r: FanSendResult,
  send: (n: number) => Promise<void> | undefined,
): Promise<void> {
  const maxInFlight = a.maxInFlight ?? 256;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const begin = performance.now();
  const end = begin + a.durationMs;
  while (performance.now() < end) {
    const due = Math.floor((a.rate * (performance.now() - begin)) / 1000) - (r.sent + r.skipped);
    for (let i = 0; i < due; i++) {
      if (inFlight >= maxInFlight) {
        r.skipped++;
        continue;
      }
      const p = send(r.sent++);
      r.lastSentAt = performance.timeOrigin + performance.now();
      if (p) {
        inFlight++;
        const q = p.finally(() => {
          inFlight--;
          pending.delete(q);
        });
        pending.add(q);
      }
    }
    await sleep(1);
  }
  await Promise.allSettled([...pending]);
  r.seconds = (performance.now() - begin) / 1000;
}

/* ---- The many-rooms scenario: many users, many rooms, mixed traffic. ---- */

/** Shares of the traffic by kind (they need not add up to 1: they are weights). */
export interface RoomsMix {
  text: number;
  reaction: number;
  edit: number;
  reply: number;
}
export type RoomsKind = keyof RoomsMix;
const KINDS: RoomsKind[] = ["text", "reaction", "edit", "reply"];
const EMOJI = ["👍", "❤️", "😂", "🎉", "👀", "🙏"];
/** Text messages remembered per room, as targets of reactions, edits and replies. */
const RECENT = 8;

interface RoomState {
  id: string;
  members: string[];
  recent: { id: string; sender: string }[];
}

let rooms:
  | { chats: Chat[]; headers: Map<string, { authorization: string }>; list: RoomState[]; run: string }
  | undefined;

export interface RoomsSetupArgs {
  url: string;
  keyFile: string;
  connections: number;
  rooms: { id: string; members: string[] }[];
}

/** Mints a token for every member of the rooms (same key file as the server) and opens the HTTP/2 connections. */
export async function roomsSetup(a: RoomsSetupArgs) {
  const started = performance.now();
  const signer = await signerFor(a.keyFile);
  const users = [...new Set(a.rooms.flatMap((r) => r.members))];
  const headers = new Map<string, { authorization: string }>();
  for (let i = 0; i < users.length; i += 200) {
    const chunk = users.slice(i, i + 200);
    const tokens = await Promise.all(chunk.map((sub) => signer.sign({ sub })));
    for (const [j, u] of chunk.entries()) headers.set(u, { authorization: `Bearer ${tokens[j]}` });
  }
  rooms = {
    chats: clients(a.url, a.connections),
    headers,
    list: a.rooms.map((r) => ({ ...r, recent: [] })),
    run: Date.now().toString(36),
  };
  return { users: users.length, seconds: (performance.now() - started) / 1000 };
}

const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;

function remember(room: RoomState, id: string, sender: string): void {
  room.recent.push({ id, sender });
  if (room.recent.length > RECENT) room.recent.shift();
}

/**
 * One text per room before the ramp, so reactions, edits and replies have targets from the first
 * step, and the members' tokens and HTTP/2 connections are warm. A member sends to all of its
 * rooms without a text yet in one call (for each room still without one, the member of it with
 * the most such rooms). The bodies carry no mark: receivers do not count them.
 */
export async function roomsSeed(a: { concurrency: number }) {
  const st = rooms;
  if (!st) throw new Error("rooms.setup first");
  const started = performance.now();
  const roomsOf = new Map<string, RoomState[]>();
  for (const room of st.list) for (const m of room.members) roomsOf.set(m, [...(roomsOf.get(m) ?? []), room]);
  const calls: { user: string; rooms: RoomState[] }[] = [];
  const covered = new Set<RoomState>();
  const todo = (user: string) => (roomsOf.get(user) ?? []).filter((r) => !covered.has(r));
  for (const room of st.list) {
    if (covered.has(room)) continue;
    let best = room.members[0] as string;
    for (const m of room.members) if (todo(m).length > todo(best).length) best = m;
    const mine = todo(best).slice(0, 100);
    for (const r of mine) covered.add(r);
    calls.push({ user: best, rooms: mine });
  }
  let acked = 0;
  let refused = 0;
  let firstError: string | undefined;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(a.concurrency, calls.length) }, async () => {
      while (next < calls.length) {
        const i = next++;
        const c = calls[i] as (typeof calls)[number];
        try {
          const { ack } = await (st.chats[i % st.chats.length] as Chat).sendEvent(
            {
              event: c.rooms.map((room) => ({
                roomId: room.id,
                type: RoomEventType.TEXT,
                content: { case: "text" as const, value: { body: `hello from ${c.user}` } },
                clientId: `seed-${st.run}-${room.id}`,
              })),
            },
            { headers: st.headers.get(c.user), timeoutMs: 60_000 },
          );
          ack.forEach((x, k) => {
            if (x.error) {
              refused++;
              firstError ??= x.error.message;
            } else {
              acked++;
              remember(c.rooms[k] as RoomState, x.eventId, c.user);
            }
          });
        } catch (err) {
          refused += c.rooms.length;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
  return {
    calls: calls.length,
    acked,
    refused,
    seconds: (performance.now() - started) / 1000,
    ...(firstError ? { firstError } : {}),
  };
}

export interface RoomsSendArgs {
  step: number;
  /** Events per second, over all rooms. */
  rate: number;
  durationMs: number;
  bodyBytes: number;
  mix: RoomsMix;
  maxInFlight?: number;
}

export interface RoomsSendResult extends FanSendResult {
  /** Events sent and acknowledged by kind. */
  byKind: Record<RoomsKind, { sent: number; acked: number }>;
  /** Reactions, edits or replies sent as plain texts because their room had no text yet to point at. */
  fellBack: number;
  /** Events acknowledged per room (in the order of rooms.setup), to count the deliveries due. */
  ackedPerRoom: number[];
}

/**
 * The sender of the many-rooms scenario: SendEvent per event, open loop at `rate`, each to a
 * random room from one of its members. Texts and replies carry the timed mark in their body;
 * reactions (to a recent text of the room) and edits (of the author's own recent text) carry a
 * counting mark in their client id.
 */
export async function roomsSend(a: RoomsSendArgs): Promise<RoomsSendResult> {
  const st = rooms;
  if (!st) throw new Error("rooms.setup first");
  const byKind = Object.fromEntries(KINDS.map((k) => [k, { sent: 0, acked: 0 }])) as RoomsSendResult["byKind"];
  const perRoom = new Int32Array(st.list.length);
  const r: RoomsSendResult = {
    sent: 0,
    acked: 0,
    failed: 0,
    skipped: 0,
    seconds: 0,
    lastSentAt: 0,
    byKind,
    fellBack: 0,
    ackedPerRoom: [],
  };
  const weights = KINDS.map((k) => Math.max(0, a.mix[k]));
  const total = weights.reduce((x, y) => x + y, 0);
  const choose = (): RoomsKind => {
    let u = Math.random() * total;
    for (const [i, k] of KINDS.entries()) {
      u -= weights[i] as number;
      if (u < 0) return k;
    }
    return "text";
  };
  const padded = (head: string) => (head.length >= a.bodyBytes ? head : head + "y".repeat(a.bodyBytes - head.length));

  const send = (n: number): Promise<void> => {
    const ri = Math.floor(Math.random() * st.list.length);
    const room = st.list[ri] as RoomState;
    let kind = choose();
    if (kind !== "text" && room.recent.length === 0) {
      kind = "text";
      r.fellBack++;
    }
    const target = kind === "text" ? undefined : pick(room.recent);
    // An edit is sent by the author of the text it changes; anything else by a random member.
    const sender = kind === "edit" ? (target?.sender as string) : pick(room.members);
    const event =
      kind === "reaction"
        ? {
            roomId: room.id,
            type: RoomEventType.REACTION,
            content: {
              case: "reaction" as const,
              value: { targetEventId: target?.id as string, key: pick(EMOJI), add: true },
            },
            clientId: countingId(a.step, n, st.run),
          }
        : kind === "edit"
          ? {
              roomId: room.id,
              type: RoomEventType.EDIT,
              content: {
                case: "edit" as const,
                value: { targetEventId: target?.id as string, text: { body: padded(`edited ${a.step}-${n} `) } },
              },
              clientId: countingId(a.step, n, st.run),
            }
          : {
              roomId: room.id,
              type: RoomEventType.TEXT,
              ...(target ? { parentId: target.id } : {}),
              content: { case: "text" as const, value: { body: body(a.step, n, a.bodyBytes) } },
              clientId: `r${a.step}-${n}-${st.run}`,
            };
    byKind[kind].sent++;
    return (st.chats[n % st.chats.length] as Chat)
      .sendEvent({ event: [event] }, { headers: st.headers.get(sender), timeoutMs: 30_000 })
      .then(({ ack }) => {
        const x = ack[0];
        if (!x || x.error) {
          r.failed++;
          r.firstError ??= x?.error?.message ?? "no ack";
          return;
        }
        r.acked++;
        byKind[kind].acked++;
        perRoom[ri] = (perRoom[ri] as number) + 1;
        if (kind === "text" || kind === "reply") remember(room, x.eventId, sender);
      })
      .catch((err: Error) => {
        r.failed++;
        r.firstError ??= err.message;
      });
  };
  await paced(a, r, send);
  r.ackedPerRoom = Array.from(perRoom);
  return r;
}
