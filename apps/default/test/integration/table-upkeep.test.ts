import { randomBytes } from "node:crypto";
import { groupRoom, sendOk, startTestApp, TEST_DB, type TestApp, text, until } from "@service-chat/testing";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Table upkeep through the real service (role relay, looking every 20 ms): statistics appear as
// events are written, so the planner answers the send path's client-id lookup from the unique
// index, not from every event of the sender; on the embedded database the churned tables are vacuumed.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    QUEUE_USER_EVENT_DELIVERY_NAME: `u${randomBytes(4).toString("hex")}`,
    DB_UPKEEP_INTERVAL_MS: "20",
  });
});
afterAll(() => t.stop());

/** One sender's messages with client ids, 100 per call. */
async function send(roomId: string, from: number, count: number) {
  for (let i = from; i < from + count; i += 100) {
    const event = Array.from({ length: 100 }, (_, n) => text(roomId, `note ${i + n}`, { clientId: `c-${i + n}` }));
    await t.as("ann").sendEvent({ event });
  }
}

const tableStats = async (table: string) => {
  const { rows } = await sql<{ analyzed: boolean; vacuumed: boolean; reltuples: number }>`
    select s.last_analyze is not null as analyzed, s.last_vacuum is not null as vacuumed,
      c.reltuples::float8 as reltuples
    from pg_stat_user_tables s join pg_class c on c.oid = s.relid where s.relname = ${table}`.execute(t.db);
  return rows[0];
};

/** The plan of the send path's lookup of one sender's client ids in a room. */
async function lookupPlan(roomId: string): Promise<string> {
  const { rows } = await sql<Record<string, string>>`
    explain select e.id from room_events e
    where e.room_id = ${roomId} and e.sender_id = 'ann' and e.client_id = 'c-none'`.execute(t.db);
  return rows.map((r) => Object.values(r)[0]).join("\n");
}

describe("table upkeep", () => {
  it("analyzes room_events as a sender's messages pile up: the client-id lookup uses the unique index", async () => {
    const roomId = await groupRoom(t, "ann", "ben");
    await send(roomId, 0, 1500);
    await until("room_events analyzed with the sender's messages", async () => {
      const s = await tableStats("room_events");
      return !!s?.analyzed && s.reltuples >= 500;
    });
    expect(await lookupPlan(roomId)).toContain("room_events_client_id");
    // Idempotency still holds: a resend answers the stored event.
    const again = await sendOk(t.as("ann"), text(roomId, "note 7", { clientId: "c-7" }));
    expect(again.seq).toBe(9n); // the room's creation is seq 1, note 0 seq 2
  });

  it.runIf(TEST_DB === "pglite")("vacuums the tables each message updates on the embedded database", async () => {
    const roomId = await groupRoom(t, "ann", "ben");
    await send(roomId, 0, 2100);
    await until("outbox and rooms vacuumed", async () => {
      const [outbox, rooms] = [await tableStats("outbox"), await tableStats("rooms")];
      return !!outbox?.vacuumed && !!rooms?.vacuumed;
    });
  });
});
