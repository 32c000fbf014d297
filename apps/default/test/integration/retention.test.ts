import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import {
  failsWith,
  fullHistory,
  groupRoom,
  searchIds,
  startTestApp,
  type TestApp,
  text,
  until,
  wsDevice,
} from "@service-chat/testing";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Inbox } from "./pipeline-helpers.js";

// Retention through the real service: the worker runs in the app (role relay) every 50 ms and
// deletes at most 7 events per step, so a purge of a few dozen events takes several steps.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    QUEUE_USER_EVENT_DELIVERY_NAME: `r${randomBytes(4).toString("hex")}`,
    RETENTION_INTERVAL_MS: "50",
    RETENTION_BATCH_SIZE: "7",
  });
});
afterAll(() => t.stop());

/** Makes the room's events up to `upToSeq` look `hours` old. */
async function age(roomId: string, upToSeq: number, hours: number) {
  await t.db
    .updateTable("room_events")
    .set({ server_ts: sql`now() - make_interval(hours => ${hours})` })
    .where("room_id", "=", roomId)
    .where("seq", "<=", upToSeq)
    .execute();
}

const firstSeq = async (roomId: string, as = "ann") => (await t.as(as).getRoom({ roomId })).room?.firstSeq;
const seqsOf = (events: { seq: bigint }[]) => events.map((e) => Number(e.seq));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("retention", () => {
  it("removes events older than a room's 1-hour policy; history, search, unread, Sync and a resuming device say where the room now starts", async () => {
    const roomId = await groupRoom(t, "ann", "ben");
    const kept = await groupRoom(t, "ann", "ben");
    for (let i = 0; i < 10; i++) await t.as("ann").sendEvent({ event: [text(roomId, `ancient note ${i}`)] });
    await t.as("ann").sendEvent({ event: [text(kept, "ancient but kept")] });
    for (let i = 0; i < 5; i++) await t.as("ann").sendEvent({ event: [text(roomId, `recent note ${i}`)] });
    // seq 1 creation, 2..11 ancient, 12..16 recent; ben read up to 5, his phone saw up to 3.
    await t.as("ben").markRead({ roomId, seq: 5n });
    await t.as("ben").ackEvents({ deviceId: "phone", acks: [{ roomId, seq: 3n }] });
    await age(roomId, 11, 2);
    await age(kept, 2, 2);
    expect(await firstSeq(roomId)).toBe(1n);

    const { room } = await t.as("ann").updateRoom({ roomId, retention: { maxAgeSeconds: 3600n } });
    expect(room?.retention?.maxAgeSeconds).toBe(3600n);
    expect(room?.retention?.maxEvents).toBeUndefined();
    await until("the purge", async () => (await firstSeq(roomId)) === 12n);

    const history = await fullHistory(t.as("ben"), roomId);
    expect(seqsOf(history)).toEqual(range(12, 17)); // 17: the policy change, a system event
    expect((await t.as("ben").getHistory({ roomId })).firstSeq).toBe(12n);
    expect(await searchIds(t.as("ben"), "ancient", roomId)).toEqual([]);
    expect(await searchIds(t.as("ben"), "recent", roomId)).toHaveLength(5);
    // Unread: what is still there after the read marker, not the events that are gone.
    const benRoom = (await t.as("ben").getRoom({ roomId })).room;
    expect(benRoom?.unreadCount).toBe(6n);
    expect((await t.as("ben").markRead({ roomId, seq: 14n })).unreadCount).toBe(3n);

    // Sync from the phone's cursor (3): a resync to 12 and the retained events, no gap, no error.
    const page = await t.as("ben").sync({ deviceId: "phone" });
    const resync = page.resync.find((r) => r.roomId === roomId);
    expect(resync).toMatchObject({ fromSeq: 12n, lastSeq: 17n });
    expect(resync?.reason).toMatch(/retention/);
    expect(seqsOf(page.events.filter((e) => e.roomId === roomId))).toEqual(range(12, 17));

    // A device resuming over the gateway from seq 3: told to resync, then replayed from 12.
    const token = await t.signer.sign({ sub: "ben", device_id: "tablet" });
    const device = await wsDevice(t.httpUrl, { case: "hello", value: { token, cursors: [{ roomId, seq: 3n }] } });
    const frame = await device.waitFor((f) => f.frame.case === "resync" && f.frame.value.roomId === roomId);
    expect(frame.frame.value).toMatchObject({ fromSeq: 12n });
    await device.waitFor((f) => f.frame.case === "synced");
    expect(seqsOf(device.events(roomId))).toEqual(range(12, 17));
    device.close();

    // Seqs are never reused; a room without a policy keeps everything (the default keeps for ever).
    const [ack] = (await t.as("ann").sendEvent({ event: [text(roomId, "after the purge")] })).ack;
    expect(ack?.seq).toBe(18n);
    expect(await firstSeq(kept)).toBe(1n);
    expect(seqsOf(await fullHistory(t.as("ann"), kept))).toEqual([1, 2]);
    expect(await searchIds(t.as("ann"), "ancient", kept)).toHaveLength(1);
  });

  it("keeps dense seqs and delivers every event while a max-events purge runs during sends", async () => {
    const roomId = await groupRoom(t, "cat", "dan");
    await t.as("cat").updateRoom({ roomId, retention: { maxEvents: 20n } }); // seq 2
    const inbox = new Inbox("dan");
    await inbox.listen(t.app.live);
    const acks = [];
    for (let round = 0; round < 20; round++) {
      const calls = ["cat", "dan"].map((who) =>
        t.as(who).sendEvent({ event: range(1, 5).map((i) => text(roomId, `${who} ${round}.${i}`)) }),
      );
      for (const r of await Promise.all(calls)) acks.push(...r.ack);
      // Half way, the purge has started: the second half is sent while it goes on.
      if (round === 9) await until("the purge under way", async () => ((await firstSeq(roomId, "cat")) ?? 0n) > 1n);
    }
    expect(acks.every((a) => !a.error)).toBe(true);
    expect(seqsOf(acks).sort((a, b) => a - b)).toEqual(range(3, 202));
    await until("the purge to the newest 20", async () => (await firstSeq(roomId, "cat")) === 183n);
    expect(seqsOf(await fullHistory(t.as("dan"), roomId))).toEqual(range(183, 202));
    const rows = await t.db
      .selectFrom("room_events")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .where("room_id", "=", roomId)
      .executeTakeFirstOrThrow();
    expect(Number(rows.n)).toBe(20);
    // Live delivery saw every event, in order: nothing was deleted before it was published.
    await until("every event delivered", () => inbox.deduped(roomId).at(-1) === 202);
    // (the two events before the sends may or may not have reached it before it listened)
    expect(inbox.deduped(roomId).filter((s) => s >= 3)).toEqual(range(3, 202));
    await inbox.close();
  });

  it("lets only owners and admins change the policy, and refuses bad values naming the field", async () => {
    const roomId = await groupRoom(t, "eve", "fay");
    await failsWith(t.as("fay").updateRoom({ roomId, retention: { maxEvents: 5n } }), Code.PermissionDenied);
    await failsWith(
      t.as("eve").updateRoom({ roomId, retention: { maxAgeSeconds: -5n } }),
      Code.InvalidArgument,
      "retention.max_age_seconds",
    );
    // An empty policy goes back to the deployment's default.
    await t.as("eve").updateRoom({ roomId, retention: { maxEvents: 5n } });
    const { room } = await t.as("eve").updateRoom({ roomId, retention: {} });
    expect(room?.retention).toBeUndefined();
  });
});

describe("the deployment's default policy", () => {
  let d: TestApp;
  beforeAll(async () => {
    d = await startTestApp({
      QUEUE_USER_EVENT_DELIVERY_NAME: `r${randomBytes(4).toString("hex")}`,
      RETENTION_MAX_EVENTS: "5",
      RETENTION_INTERVAL_MS: "50",
    });
  });
  afterAll(() => d.stop());

  it("applies to rooms without a policy of their own; a room's 0 keeps everything", async () => {
    const capped = await groupRoom(d, "gus", "hal");
    const kept = await groupRoom(d, "gus", "hal");
    await d.as("gus").updateRoom({ roomId: kept, retention: { maxEvents: 0n } }); // seq 2
    for (const roomId of [capped, kept]) {
      await d.as("gus").sendEvent({ event: range(1, 10).map((i) => text(roomId, `note ${i}`)) });
    }
    // capped: 11 events, the newest 5 stay; kept: 12 events, all stay.
    await until(
      "the default applied",
      async () => (await d.as("gus").getRoom({ roomId: capped })).room?.firstSeq === 7n,
    );
    expect(seqsOf(await fullHistory(d.as("hal"), capped))).toEqual(range(7, 11));
    // Two more passes, each seen to start after the last send: the kept room was looked at since.
    for (const first of [8n, 9n]) {
      await d.as("gus").sendEvent({ event: [text(capped, "one more")] });
      await until("another pass", async () => (await d.as("gus").getRoom({ roomId: capped })).room?.firstSeq === first);
    }
    expect((await d.as("gus").getRoom({ roomId: kept })).room).toMatchObject({
      firstSeq: 1n,
      lastSeq: 12n,
      retention: { maxEvents: 0n },
    });
  });
});
