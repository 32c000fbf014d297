import { RoomType } from "@service-chat/api";
import { type FaultProxy, faultProxy, freshDatabase, startTestApp, type TestApp, until } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChatClient, createChatClient, type SendRetry } from "../../src/index.js";

/**
 * The Default Service reaches PostgreSQL through a TCP proxy that the test cuts for ten seconds:
 * for the service it is as if the database stopped (connections break, new ones are refused),
 * while the shared PostgreSQL server keeps running for everyone else.
 */
let t: TestApp;
let db: FaultProxy;
let drop: () => Promise<void>;
const clients: ChatClient[] = [];

beforeAll(async () => {
  const fresh = await freshDatabase("postgres");
  drop = fresh.drop;
  db = await faultProxy(fresh.uri);
  t = await startTestApp({ DB_URI: db.via(fresh.uri), HEARTBEAT_INTERVAL_SEC: "1" });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await db?.up();
  await t?.stop();
  await db?.close();
  await drop?.();
});

const client = (user: string) => {
  const c = createChatClient({
    baseUrl: t.httpUrl,
    getToken: () => t.signer.sign({ sub: user, device_id: "d" }),
    minBackoffMs: 50,
    maxBackoffMs: 500,
    minSendRetryMs: 100,
    maxSendRetryMs: 1000,
  });
  clients.push(c);
  return c;
};

async function stored(roomId: string, prefix: string): Promise<string[]> {
  const rows = await t.db
    .selectFrom("room_events")
    .select("client_id")
    .where("room_id", "=", roomId)
    .where("client_id", "like", `${prefix}%`)
    .execute();
  return rows.map((r) => r.client_id as string);
}

describe("sends while the database is away", () => {
  it("keeps and retries every send through a 10 s database outage: all 100 stored exactly once", async () => {
    const c = client("retry-alice");
    const { room } = await c.api.createRoom({ name: "outage", type: RoomType.GROUP });
    const roomId = room?.id as string;
    await c.connect();
    const retries: SendRetry[] = [];
    c.on("retrying", (r) => retries.push(r));

    const sends: Promise<unknown>[] = [];
    const send = (i: number) => sends.push(c.sendText(roomId, `message ${i}`, `outage-${i}`));
    for (let i = 0; i < 20; i++) send(i);
    await Promise.all(sends);

    await db.down();
    const outage = new Promise((r) => setTimeout(r, 10_000)); // the outage itself, not a wait for something
    for (let i = 20; i < 80; i++) {
      send(i);
      await new Promise((r) => setTimeout(r, 100));
    }
    await until("a send to be retried during the outage", () => retries.length > 0);
    await outage;
    await db.up();
    for (let i = 80; i < 100; i++) send(i);

    const results = await Promise.allSettled(sends);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    const ids = await stored(roomId, "outage-");
    expect(ids).toHaveLength(100);
    expect(new Set(ids).size).toBe(100);
    expect(retries.every((r) => !["invalid_argument", "not_found", "permission_denied"].includes(r.code))).toBe(true);
    expect(new Set(retries.map((r) => r.code)).size).toBeGreaterThan(0);
  });

  it("retries a call-only send (no live session) through an outage, and refuses a wrong message at once", async () => {
    const c = client("retry-bob");
    const { room } = await c.api.createRoom({ name: "calls", type: RoomType.GROUP });
    const roomId = room?.id as string;
    const retries: SendRetry[] = [];
    c.on("retrying", (r) => retries.push(r));
    await db.down();
    const sent = c.sendText(roomId, "through the outage", "call-1");
    await until("the call-only send to be retried", () => retries.length >= 2);
    await db.up();
    const ack = await sent;
    expect(ack.seq).toBeGreaterThan(1n);
    expect(await stored(roomId, "call-")).toEqual(["call-1"]);
    await expect(c.sendText("00000000-0000-7000-8000-000000000000", "x")).rejects.toMatchObject({ code: "not_found" });
  });
});
