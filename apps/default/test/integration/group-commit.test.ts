import {
  countRows,
  edit,
  groupRoom,
  POSTGRES_SERVER,
  redact,
  send,
  sendOk,
  startTestApp,
  TEST_DB,
  type TestApp,
  text,
  until,
} from "@service-chat/testing";
import { type Kysely, sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendLimits } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { Schema } from "../../src/db/schema.js";

// SendEvent through the group committer, over the real API. Calls that arrive while every batch
// slot is busy are stored by one transaction; `piledUp` arranges that on purpose, and the xmin of
// the stored rows (the id of the transaction that wrote them) shows which calls shared one.

let t: TestApp;
let blocker: string;
/** Batches of the committer that run at once (SEND_BATCH_IN_FLIGHT, as the test app has it). */
const IN_FLIGHT = sendLimits(loadConfig({}), TEST_DB).inFlight;
beforeAll(async () => {
  t = await startTestApp();
  blocker = await groupRoom(t, "gc-blocker");
});
afterAll(() => t.stop());

/** The committer's batches running and jobs waiting, right now. */
const load = () => (t.app.sendLoad as () => { running: number; queued: number })();

/** Transactions waiting for a lock in the test database (PostgreSQL only). */
async function lockWaiters(db: Kysely<Schema>, event?: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock' and (${event ?? null}::text is null or wait_event = ${event ?? null})`.execute(
    db,
  );
  return rows[0]?.n ?? 0;
}

/**
 * Starts `calls` while every batch slot of the committer is stuck behind a lock on the blocker
 * room (on PGlite, behind its only connection), waits until their `jobs` jobs (one per call and
 * room) wait for a slot, then lets go: the next batch stores them together.
 */
async function piledUp<T>(jobs: number, calls: () => Promise<T>, afterRelease?: () => void): Promise<T> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holder = t.db.transaction().execute(async (trx) => {
    await trx.selectFrom("rooms").select("id").where("id", "=", blocker).forUpdate().execute();
    locked();
    await released;
  });
  await isLocked;
  const stuck = Array.from({ length: IN_FLIGHT }, (_, i) => sendOk(t.as("gc-blocker"), text(blocker, `slot ${i}`)));
  await until("every batch slot to be taken", () => load().running === IN_FLIGHT);
  const started = calls();
  await until(`${jobs} jobs waiting for a batch`, () => load().queued === jobs);
  release();
  await holder;
  await Promise.all(stuck);
  afterRelease?.();
  return started;
}

/** chat_send_batch_failures_total as the service's /metrics shows it. */
async function batchFailures(): Promise<number> {
  const body = await (await fetch(`${t.httpUrl}/metrics`)).text();
  const line = /^chat_send_batch_failures_total(?:\{[^}]*\})? (\S+)$/m.exec(body);
  return line ? Number(line[1]) : 0;
}

/** Stored events (not system ones) of these rooms: id, seq and the transaction that wrote them. */
async function storedEvents(roomIds: string[]) {
  const { rows } = await sql<{ id: string; room_id: string; seq: number; client_id: string | null; tx: string }>`
    select id, room_id, seq, client_id, xmin::text as tx from room_events
    where room_id = any(${roomIds}) and type <> 'system' order by room_id, seq`.execute(t.db);
  return rows;
}

function expectDense(rows: { room_id: string; seq: number }[], roomIds: string[]) {
  for (const roomId of roomIds) {
    const seqs = rows.filter((r) => r.room_id === roomId).map((r) => r.seq);
    expect(seqs, `seqs of ${roomId}`).toEqual(seqs.map((_, i) => i + 2)); // seq 1: the room's creation
  }
}

describe("group commit", () => {
  it("many concurrent callers in one room and in many rooms: dense seqs, every ack a stored event", async () => {
    const shared = await groupRoom(t, "gc-host", ...Array.from({ length: 24 }, (_, i) => `gc-crowd-${i}`));
    const own = await Promise.all(Array.from({ length: 24 }, (_, i) => groupRoom(t, `gc-solo-${i}`)));
    const rounds = 5;
    const caller = async (user: string, roomId: string) => {
      const acks = [];
      for (let n = 0; n < rounds; n++) acks.push(await sendOk(t.as(user), text(roomId, `${user} ${n}`)));
      return acks;
    };
    const acks = (
      await Promise.all([
        ...Array.from({ length: 24 }, (_, i) => caller(`gc-crowd-${i}`, shared)),
        ...own.map((roomId, i) => caller(`gc-solo-${i}`, roomId)),
      ])
    ).flat();
    const rooms = [shared, ...own];
    const rows = await storedEvents(rooms);
    expect(rows).toHaveLength(48 * rounds);
    expectDense(rows, rooms);
    expect(acks.map((a) => [a.eventId, a.roomId, Number(a.seq)]).sort()).toEqual(
      rows.map((r) => [r.id, r.room_id, r.seq]).sort(),
    );
    for (const roomId of rooms) {
      const counted = await countRows(t, roomId);
      expect(counted.outbox).toBe(counted.events);
    }
    // Calls did share transactions. (PGlite runs in this thread, one statement at a time: its
    // batches seldom fill up without piledUp.)
    if (TEST_DB === "postgres") expect(new Set(rows.map((r) => r.tx)).size).toBeLessThan(rows.length);
  });

  it("refuses a call inside a busy batch alone; the calls beside it are stored", async () => {
    const rooms = await Promise.all(Array.from({ length: 12 }, (_, i) => groupRoom(t, `gc-busy-${i}`, "gc-mod")));
    const privateRoom = await groupRoom(t, "gc-owner");
    const target = await sendOk(t.as("gc-busy-0"), text(rooms[0] as string, "not yours to edit"));
    const [ok, notMember, notSender, mixed] = await piledUp(15, () =>
      Promise.all([
        Promise.all(rooms.map((roomId, i) => send(t.as(`gc-busy-${i}`), text(roomId, "stored")))),
        send(t.as("gc-stranger"), text(privateRoom, "let me in")),
        send(t.as("gc-mod"), edit(rooms[0] as string, target.eventId, "rewritten")),
        send(
          t.as("gc-mod"),
          text(rooms[1] as string, "fine"),
          text(rooms[1] as string, "reply", { parentId: target.eventId }),
        ),
      ]),
    );
    expect(ok?.flat().map((a) => a.error)).toEqual(rooms.map(() => undefined));
    expect(notMember?.[0]?.error?.code).toBe("not_found");
    expect(notSender?.[0]?.error?.code).toBe("permission_denied");
    expect(mixed?.map((a) => a.error?.code)).toEqual([undefined, "invalid_argument"]);
    expect((await countRows(t, privateRoom)).events).toBe(1);
    const rows = await storedEvents(rooms);
    expectDense(rows, rooms);
    expect(rows.find((r) => r.id === target.eventId)).toBeDefined();
    const stored = rows.filter((r) => r.id !== target.eventId);
    expect(stored).toHaveLength(13);
    expect(new Set(stored.map((r) => r.tx)).size).toBeLessThan(stored.length);
  });

  it("lets a later call of the batch see a redaction stored by an earlier one", async () => {
    const roomId = await groupRoom(t, "gc-redactor");
    const target = await sendOk(t.as("gc-redactor"), text(roomId, "oops"));
    const [redacted, edited, again] = await piledUp(3, async () => {
      // Sent one after another, so they queue in this order behind the blocked slots.
      const first = send(t.as("gc-redactor"), redact(roomId, target.eventId));
      await until("the redaction to queue", () => load().queued === 1);
      const second = send(t.as("gc-redactor"), edit(roomId, target.eventId, "fixed"));
      await until("the edit to queue", () => load().queued === 2);
      return Promise.all([first, second, send(t.as("gc-redactor"), redact(roomId, target.eventId))]);
    });
    expect(redacted?.[0]?.error).toBeUndefined();
    expect(edited?.[0]?.error?.code).toBe("failed_precondition");
    expect(again?.[0]?.error?.code).toBe("failed_precondition");
    expect((await storedEvents([roomId])).map((r) => r.seq)).toEqual([2, 3]);
  });

  it("gives concurrent calls with the same client id one event, also inside one batch", async () => {
    const roomId = await groupRoom(t, "gc-twice");
    const others = await Promise.all(Array.from({ length: 6 }, (_, i) => groupRoom(t, `gc-twice-other-${i}`)));
    const [same, rest] = await piledUp(14, () =>
      Promise.all([
        Promise.all(Array.from({ length: 8 }, () => sendOk(t.as("gc-twice"), text(roomId, "once", { clientId: "k" })))),
        Promise.all(others.map((r, i) => sendOk(t.as(`gc-twice-other-${i}`), text(r, "beside")))),
      ]),
    );
    expect(new Set(same?.map((a) => a.eventId)).size).toBe(1);
    expect(same?.map((a) => a.seq)).toEqual(same?.map(() => 2n));
    expect(await countRows(t, roomId)).toEqual({ events: 2, outbox: 2 });
    const rows = await storedEvents([roomId, ...others]);
    expect(rows).toHaveLength(1 + (rest?.length ?? 0));
    expect(new Set(rows.map((r) => r.tx)).size).toBeLessThan(rows.length);
  });
});

// These need a second connection that holds a transaction open while the server works.
describe.skipIf(TEST_DB !== "postgres")("races with another connection", () => {
  let raw: pg.Client;
  beforeAll(async () => {
    const { rows } = await sql<{ db: string }>`select current_database() as db`.execute(t.db);
    const uri = new URL(POSTGRES_SERVER);
    uri.pathname = `/${rows[0]?.db}`;
    raw = new pg.Client({ connectionString: uri.toString() });
    await raw.connect();
  });
  afterAll(() => raw.end());

  it("a batch that hits a unique violation falls back to one transaction per call; nothing is lost", async () => {
    const roomId = await groupRoom(t, "gc-race", "gc-race-friend");
    const others = await Promise.all(Array.from({ length: 8 }, (_, i) => groupRoom(t, `gc-race-other-${i}`)));
    const failuresBefore = await batchFailures();
    // Another process stores the same client id without the room lock, and commits only once the
    // batch waits on the unique index: the batch's INSERT then fails.
    await raw.query("begin");
    await raw.query(
      `insert into room_events (id, room_id, seq, sender_id, type, content, client_id, sent_at, server_ts)
       values ('raced-event', $1, 1000000, 'gc-race', 'text', '{"body":"raced"}', 'raced', now(), now())`,
      [roomId],
    );
    const [raced, friend, rest] = await piledUp(
      10,
      () =>
        Promise.all([
          sendOk(t.as("gc-race"), text(roomId, "mine", { clientId: "raced" })),
          sendOk(t.as("gc-race-friend"), text(roomId, "beside it")),
          Promise.all(others.map((r, i) => sendOk(t.as(`gc-race-other-${i}`), text(r, "beside")))),
        ]),
      () => {
        // Commit the other process's row once the batch waits for it.
        void until(
          "the batch to wait for the other connection's row",
          async () => (await lockWaiters(t.db, "transactionid")) > 0,
        ).then(() => raw.query("commit"));
      },
    );
    // The retried call finds the row that won the race; everything else was stored once.
    expect(raced).toMatchObject({ eventId: "raced-event", seq: 1000000n, clientId: "raced" });
    expect(friend?.seq).toBe(2n);
    const rows = await storedEvents([roomId, ...others]);
    expect(rows.map((r) => [r.room_id, r.seq]).sort()).toEqual(
      [[roomId, 2], [roomId, 1000000], ...others.map((r) => [r, 2])].sort(),
    );
    expect(rest?.map((a) => a.seq)).toEqual(others.map(() => 2n));
    // Stored by the fallback: one transaction per call.
    const calls = rows.filter((r) => r.id !== "raced-event");
    expect(new Set(calls.map((r) => r.tx)).size).toBe(calls.length);
    // The failed batch is counted for the operator, not dropped silently.
    expect(await batchFailures()).toBeGreaterThan(failuresBefore);
  });

  it("a send that waited for the room lock sees the membership change it waited for", async () => {
    const roomId = await groupRoom(t, "gc-kick-owner", "gc-kicked");
    await raw.query("begin");
    await raw.query("select id from rooms where id = $1 for update", [roomId]);
    const removal = t.as("gc-kick-owner").removeRoomSubscriptions({ roomId, profileIds: ["gc-kicked"] });
    await until("the removal to wait for the room lock", async () => (await lockWaiters(t.db)) >= 1);
    const sent = send(t.as("gc-kicked"), text(roomId, "one last word"));
    await until("the send to wait for the room lock", async () => (await lockWaiters(t.db)) >= 2);
    await raw.query("commit");
    await removal;
    const [ack] = await sent;
    expect(ack?.error?.code).toBe("not_found");
    expect((await storedEvents([roomId])).length).toBe(0);
  });

  it("a resend that waited for the room lock finds the event stored meanwhile", async () => {
    const roomId = await groupRoom(t, "gc-resend");
    await raw.query("begin");
    await raw.query("update rooms set last_seq = 2 where id = $1", [roomId]);
    await raw.query(
      `insert into room_events (id, room_id, seq, sender_id, type, content, client_id, sent_at, server_ts)
       values ('first-send', $1, 2, 'gc-resend', 'text', '{"body":"hi"}', 'again', now(), now())`,
      [roomId],
    );
    const resent = sendOk(t.as("gc-resend"), text(roomId, "hi", { clientId: "again" }));
    await until("the resend to wait for the room lock", async () => (await lockWaiters(t.db)) >= 1);
    await raw.query("commit");
    expect(await resent).toMatchObject({ eventId: "first-send", seq: 2n });
    expect((await storedEvents([roomId])).map((r) => r.id)).toEqual(["first-send"]);
  });
});
