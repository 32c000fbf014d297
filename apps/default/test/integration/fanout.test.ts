import { randomBytes } from "node:crypto";
import { create, fromBinary } from "@bufbuild/protobuf";
import { EventBatchSchema, RoomEventSchema } from "@service-chat/api";
import { createLogger } from "@service-chat/core";
import { groupRoom, startTestApp, type TestApp, text, until } from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { relaySettings } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { FanoutWorker } from "../../src/delivery/fanout.js";
import { MembershipCache } from "../../src/delivery/membership.js";
import { encodeBatches, OutboxRelay } from "../../src/delivery/outbox-relay.js";
import { DeliveryStore } from "../../src/delivery/store.js";
import { Inbox } from "./pipeline-helpers.js";

let t: TestApp;
const stop = new AbortController();
beforeAll(async () => {
  t = await startTestApp({
    SERVICES: "api",
    QUEUE_USER_EVENT_DELIVERY_NAME: `f${randomBytes(4).toString("hex")}`,
    QUEUE_PARTITIONS: "1",
  });
  const logger = createLogger("silent");
  const db = t.app.database!;
  const store = new DeliveryStore(db.db);
  const settings = { ...relaySettings(loadConfig({})), pollMs: 100 };
  void new OutboxRelay({ database: db, store, stream: t.app.stream, logger, ...settings }).run(stop.signal);
  // Two workers with caches of their own take turns on the one partition.
  for (let i = 0; i < 2; i++) {
    const members = new MembershipCache(store, loadConfig({}).FANOUT_CACHE_ROOMS);
    void new FanoutWorker({ stream: t.app.stream, live: t.app.live, members, logger }).run(stop.signal);
  }
});
afterAll(async () => {
  stop.abort();
  await t.stop();
});

it("packs events in order", () => {
  const events = ["a", "b", "a"].map((roomId, i) => create(RoomEventSchema, { roomId, seq: BigInt(i + 1) }));
  const [entry] = encodeBatches(events);
  const batch = fromBinary(EventBatchSchema, entry as Uint8Array);
  expect(batch.events.map((e) => [e.roomId, e.seq])).toEqual([
    ["a", 1n],
    ["b", 2n],
    ["a", 3n],
  ]);
});

it("applies membership changes to the very next event, whichever worker saw the change", async () => {
  const roomId = await groupRoom(t, "fo-owner", "fo-a");
  const inboxes = new Map(["fo-a", "fo-b"].map((u) => [u, new Inbox(u)]));
  await Inbox.listenAll(t.app.live, inboxes);
  const owner = t.as("fo-owner");
  const expected = new Map<string, number[]>([
    ["fo-a", []],
    ["fo-b", []],
  ]);
  let inRoom = new Set(["fo-a"]);
  for (let round = 0; round < 12; round++) {
    // Move b in and out of the room, and a message after each change.
    if (round % 2 === 0) await owner.addRoomSubscriptions({ roomId, members: [{ profileId: "fo-b" }] });
    else await owner.removeRoomSubscriptions({ roomId, profileIds: ["fo-b"] });
    inRoom = round % 2 === 0 ? new Set(["fo-a", "fo-b"]) : new Set(["fo-a"]);
    const { ack } = await owner.sendEvent({ event: [text(roomId, `round ${round}`)] });
    for (const u of inRoom) expected.get(u)?.push(Number(ack[0]?.seq));
  }
  const last = Math.max(...(expected.get("fo-a") as number[]));
  await until("the last message", () => (inboxes.get("fo-a")?.deduped(roomId) ?? []).includes(last));
  // Each got every message of the rounds it was in (membership events come too)…
  for (const [u, seqs] of expected) {
    const got = (inboxes.get(u) as Inbox).deduped(roomId);
    expect(
      got.filter((s) => seqs.includes(s)),
      u,
    ).toEqual(seqs);
  }
  // …and b none from a round it was not in.
  const bGot = new Set((inboxes.get("fo-b") as Inbox).deduped(roomId));
  for (const s of expected.get("fo-a") as number[]) {
    if (!(expected.get("fo-b") as number[]).includes(s)) expect(bGot.has(s), `seq ${s}`).toBe(false);
  }
});
