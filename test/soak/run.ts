/**
 * The soak run (`npm run soak -- --minutes 30`; docs/fault-suite.md): one service process as
 * `npm start` runs it (embedded database in a temporary folder, or `--db postgres` for a fresh
 * database on the PostgreSQL server), devices that stay connected, answer heartbeats and now and
 * then reconnect and resume, and mixed traffic at a moderate rate (messages, reactions, edits,
 * history reads, searches). Every 10 s it samples the process's resident memory, heap, open file
 * descriptors and event-loop delay (its /metrics); at the end it prints each one's slope over
 * the run (after a warm-up fifth) and the calls' outcomes by code. Exit code 1 if any call was
 * answered `internal`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ChatService, Direction, RoomEventType, RoomType } from "@service-chat/api";
import { type DeviceTransport, edit, freshDatabase, ResumingDevice, react, startService } from "@service-chat/testing";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "30" },
    rate: { type: "string", default: "10" },
    devices: { type: "string", default: "20" },
    db: { type: "string", default: "pglite" },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const users = Array.from({ length: Number(values.devices) }, (_, i) => `soak-${i}`);
const SAMPLE_MS = 10_000;

const dir = await mkdtemp(join(tmpdir(), "chat-soak-"));
const database = values.db === "postgres" ? await freshDatabase("postgres") : undefined;
const service = await startService("soak", {
  DB_URI: database?.uri ?? `pglite://${join(dir, "data")}`,
  DEV_SIGNER_KEY_FILE: join(dir, "signer.jwk"),
  HEARTBEAT_INTERVAL_SEC: "5",
  LOG_LEVEL: "warn",
});
const token = async (sub: string, device?: string) => {
  const res = await fetch(`${service.httpUrl}/dev/token`, {
    method: "POST",
    body: JSON.stringify({ sub, ...(device ? { device_id: device } : {}) }),
  });
  return ((await res.json()) as { token: string }).token;
};
const tokens = new Map(await Promise.all(users.map(async (u) => [u, await token(u)] as const)));
const chat = createClient(ChatService, createConnectTransport({ baseUrl: service.httpUrl, httpVersion: "1.1" }));
const as = (u: string) => ({ headers: { authorization: `Bearer ${tokens.get(u)}` } });

// Rooms of five; each user in a few.
const rooms: { id: string; members: string[] }[] = [];
for (let r = 0; r < Math.max(2, users.length / 2); r++) {
  const members = [...new Set(Array.from({ length: 5 }, (_, k) => users[(r * 3 + k * 2) % users.length] as string))];
  const { room } = await chat.createRoom(
    { name: `soak ${r}`, type: RoomType.GROUP, members: members.slice(1).map((profileId) => ({ profileId })) },
    as(members[0] as string),
  );
  rooms.push({ id: room!.id, members });
}

const gateway = { name: "soak", httpUrl: service.httpUrl, grpcUrl: service.grpcUrl };
const transports: DeviceTransport[] = ["ws-binary", "ws-json", "grpc"];
const device = (u: string, i: number) =>
  new ResumingDevice({
    profileId: u,
    deviceId: `d${i}`,
    transport: transports[i % 3] as DeviceTransport,
    token: () => token(u, `d${i}`),
    gateways: [gateway],
  });
const devices = users.map((u, i) => device(u, i));
await Promise.all(devices.map((d) => d.start()));

const outcomes = new Map<string, number>();
const count = (code: string) => outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
const lastIds: string[] = [];
const act = async (n: number) => {
  const room = rooms[n % rooms.length]!;
  const who = room.members[n % room.members.length]!;
  const roll = n % 20;
  try {
    if (roll < 14 || lastIds.length === 0) {
      const { ack } = await chat.sendEvent(
        {
          event: [
            {
              roomId: room.id,
              type: RoomEventType.TEXT,
              clientId: `s${n}`,
              content: { case: "text", value: { body: `soak ${n}` } },
            },
          ],
        },
        as(who),
      );
      if (ack[0]?.eventId) lastIds.push(`${room.id}/${ack[0].eventId}/${who}`);
      if (lastIds.length > 100) lastIds.shift();
      count(ack[0]?.error?.code ?? "ok");
    } else if (roll < 17) {
      const [roomId, target, author] = (lastIds[n % lastIds.length] as string).split("/") as [string, string, string];
      const event = roll === 16 ? edit(roomId, target, `edited ${n}`) : react(roomId, target);
      const { ack } = await chat.sendEvent({ event: [event] }, as(author));
      count(ack[0]?.error?.code ?? "ok");
    } else if (roll < 19) {
      await chat.getHistory({ roomId: room.id, limit: 50, direction: Direction.BACKWARD }, as(who));
      count("ok");
    } else {
      await chat.searchEvents({ query: "soak" }, as(who));
      count("ok");
    }
  } catch (err) {
    count(err instanceof ConnectError ? Code[err.code] : String(err));
  }
};

/** A series' value: the first line of `name` whose labels include `labels` (e.g. 'state="used"'). */
const metric = (text: string, name: string, labels = "") =>
  Number(new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} (\\S+)$`, "m").exec(text)?.[1]);
const samples: { at: number; rss: number; heap: number; fds: number; p99: number; max: number }[] = [];
const began = Date.now();
const end = began + minutes * 60_000;
let n = 0;
let nextSample = began;
let nextReconnect = began + 30_000;
while (Date.now() < end) {
  if (Date.now() >= nextSample) {
    nextSample += SAMPLE_MS;
    const text = await (await fetch(`${service.httpUrl}/metrics`)).text();
    samples.push({
      at: (Date.now() - began) / 60_000,
      rss: metric(text, "process_resident_memory_bytes"),
      heap: metric(text, "nodejs_heap_bytes", 'state="used"'),
      fds: metric(text, "process_open_fds"),
      p99: metric(text, "nodejs_eventloop_delay_seconds", 'percentile="99"'),
      max: metric(text, "nodejs_eventloop_delay_seconds", 'percentile="100"'),
    });
  }
  if (Date.now() >= nextReconnect) {
    // A device goes away and comes back as a new connection that resumes from its cursors.
    nextReconnect += 30_000;
    const i = Math.floor((Date.now() - began) / 30_000) % devices.length;
    await devices[i]!.stop();
    devices[i] = device(users[i] as string, i);
    await devices[i]!.start();
  }
  void act(n++);
  await new Promise((r) => setTimeout(r, 1000 / rate));
}
await Promise.all(devices.map((d) => d.stop()));
await service.stop();
await database?.drop();
await rm(dir, { recursive: true, force: true });

/** Least-squares slope per minute of one series, after the first fifth (warm-up). */
const slope = (pick: (s: (typeof samples)[number]) => number) => {
  const pts = samples.slice(Math.floor(samples.length / 5)).filter((s) => Number.isFinite(pick(s)));
  if (pts.length < 2) return Number.NaN;
  const mx = pts.reduce((a, s) => a + s.at, 0) / pts.length;
  const my = pts.reduce((a, s) => a + pick(s), 0) / pts.length;
  const num = pts.reduce((a, s) => a + (s.at - mx) * (pick(s) - my), 0);
  const den = pts.reduce((a, s) => a + (s.at - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
};
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const first = samples[0];
const last = samples[samples.length - 1];
console.log(`soak: ${minutes} min, ${n} calls at ${rate}/s, ${users.length} devices, ${samples.length} samples\n`);
console.log("| measure | first | last | slope per minute |\n| --- | --- | --- | --- |");
console.log(`| resident memory MiB | ${mib(first?.rss ?? 0)} | ${mib(last?.rss ?? 0)} | ${mib(slope((s) => s.rss))} |`);
console.log(`| heap MiB | ${mib(first?.heap ?? 0)} | ${mib(last?.heap ?? 0)} | ${mib(slope((s) => s.heap))} |`);
console.log(`| open descriptors | ${first?.fds} | ${last?.fds} | ${slope((s) => s.fds).toFixed(2)} |`);
console.log(
  `| event loop p99 ms | ${((first?.p99 ?? 0) * 1000).toFixed(1)} | ${((last?.p99 ?? 0) * 1000).toFixed(1)} | ${(slope((s) => s.p99) * 1000).toFixed(2)} |`,
);
console.log(`| event loop max ms (worst sample) | | ${(Math.max(...samples.map((s) => s.max)) * 1000).toFixed(1)} | |`);
console.log(`\ncalls by outcome: ${[...outcomes].map(([c, k]) => `${c} ${k}`).join(", ")}`);
process.exit(outcomes.has("Internal") || outcomes.has("internal") ? 1 : 0);
