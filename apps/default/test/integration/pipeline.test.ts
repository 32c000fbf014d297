import { randomBytes } from "node:crypto";
import { RoomEventType, RoomType } from "@service-chat/api";
import { createLogger } from "@service-chat/core";
import { deleteAmqpNames } from "@service-chat/core/queue/amqp";
import { startTestApp, TEST_DB, type TestApp, until } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { relaySettings } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { FANOUT_GROUP, FanoutWorker } from "../../src/delivery/fanout.js";
import { MembershipCache } from "../../src/delivery/membership.js";
import { OutboxRelay } from "../../src/delivery/outbox-relay.js";
import { DeliveryStore } from "../../src/delivery/store.js";
import { Inbox } from "./pipeline-helpers.js";

const ALL =
  TEST_DB === "postgres" ? "mem://,nats://127.0.0.1:4222,redis://127.0.0.1:6379,amqp://127.0.0.1:5672" : "mem://";
const BACKENDS = (process.env.TEST_QUEUES ?? ALL).split(",");
const ROOMS = 100;
const MEMBERS = 5;
const USERS = 50;
// The embedded PGlite serves one query at a time: there a smaller run shows the same properties.
const MESSAGES = TEST_DB === "postgres" ? 10_000 : 2_000;
const KILL_AT = MESSAGES * 0.3;
const RESTART_AT = MESSAGES * 0.6;

describe.each(BACKENDS)("delivery pipeline on %s", (queue) => {
  let t: TestApp;
  const logger = createLogger("silent");
  const name = `t${process.pid}_${randomBytes(4).toString("hex")}`;
  beforeAll(async () => {
    t = await startTestApp({
      QUEUE_USER_EVENT_DELIVERY_URI: queue,
      QUEUE_USER_EVENT_DELIVERY_NAME: name,
      QUEUE_PARTITIONS: "4",
      QUEUE_REDELIVERY_MS: "1000",
      SERVICES: "api",
    });
  });
  afterAll(async () => {
    await t.stop();
    if (queue.startsWith("amqp")) await deleteAmqpNames(queue, name, 4, [FANOUT_GROUP]);
  });

  /** The relay and a fan-out worker, started and killed by the test. */
  const pipeline = () => {
    const c = new AbortController();
    const store = new DeliveryStore(t.app.database!.db);
    const settings = { ...relaySettings(loadConfig({})), pollMs: 200 };
    const relay = new OutboxRelay({ database: t.app.database!, store, stream: t.app.stream, logger, ...settings });
    const fanout = new FanoutWorker({
      stream: t.app.stream,
      live: t.app.live,
      members: new MembershipCache(store, loadConfig({}).FANOUT_CACHE_ROOMS),
      logger,
    });
    const done = Promise.all([relay.run(c.signal), fanout.run(c.signal)]);
    return {
      kill: async () => {
        c.abort();
        await done;
      },
    };
  };

  it(`delivers ${MESSAGES} messages in 100 rooms to every member exactly once after dedupe, in order, across a kill and restart`, async () => {
    const users = Array.from({ length: USERS }, (_, i) => `u${i}`);
    const roomIds: string[] = [];
    const membersOf = new Map<string, string[]>();
    for (let r = 0; r < ROOMS; r++) {
      const members = Array.from({ length: MEMBERS }, (_, k) => users[(r * 7 + k * 11) % USERS] as string);
      const [owner, ...others] = [...new Set(members)];
      const { room } = await t.as(owner as string).createRoom({
        name: `room ${r}`,
        type: RoomType.GROUP,
        members: others.map((profileId) => ({ profileId })),
      });
      roomIds.push(room!.id);
      membersOf.set(room!.id, [owner as string, ...others]);
    }
    const inboxes = new Map(users.map((u) => [u, new Inbox(u)]));
    const stopListening = await Inbox.listenAll(t.app.live, inboxes);

    let running = pipeline();
    const perCall = 100;
    for (let sent = 0; sent < MESSAGES; sent += perCall) {
      if (sent === KILL_AT) await running.kill(); // relay and fan-out die mid-run…
      if (sent === RESTART_AT) running = pipeline(); // …and come back
      const events = Array.from({ length: perCall }, (_, i) => {
        const roomId = roomIds[(sent + i) % ROOMS] as string;
        return {
          roomId,
          type: RoomEventType.TEXT,
          clientId: `m${sent + i}`,
          content: { case: "text" as const, value: { body: `message ${sent + i}` } },
        };
      });
      // Each room's messages come from its owner, so one call covers many rooms.
      const byOwner = new Map<string, typeof events>();
      for (const e of events) {
        const owner = membersOf.get(e.roomId)?.[0] as string;
        byOwner.set(owner, [...(byOwner.get(owner) ?? []), e]);
      }
      await Promise.all(
        [...byOwner].map(async ([owner, list]) => {
          const { ack } = await t.as(owner).sendEvent({ event: list });
          expect(ack.filter((a) => a.error)).toEqual([]);
        }),
      );
    }

    const lastSeq = 1 + MESSAGES / ROOMS; // the creation event, then this room's messages
    const expected = Array.from({ length: MESSAGES / ROOMS }, (_, i) => i + 2);
    await until(
      "every member to receive every message",
      () =>
        [...membersOf].every(([roomId, members]) =>
          members.every(
            (u) =>
              inboxes
                .get(u)
                ?.deduped(roomId)
                .filter((s) => s >= 2).length === expected.length,
          ),
        ),
      { timeoutMs: 240_000 },
    );
    await running.kill();

    for (const [roomId, members] of membersOf) {
      for (const u of members) {
        const got = (inboxes.get(u) as Inbox).deduped(roomId).filter((s) => s >= 2);
        expect(got, `${u} in ${roomId}`).toEqual(expected);
      }
    }
    // Non-members got nothing of a room.
    for (const [u, inbox] of inboxes) {
      for (const roomId of inbox.byRoom.keys()) expect(membersOf.get(roomId)).toContain(u);
    }

    // Each member's device acknowledges what it processed; its cursors then match the rooms.
    for (const u of users) {
      const mine = roomIds.filter((r) => membersOf.get(r)?.includes(u));
      const client = t.as(u, "connect", { device_id: "phone" });
      const { cursors } = await client.ackEvents({ acks: mine.map((roomId) => ({ roomId, seq: BigInt(lastSeq) })) });
      expect(cursors.map((c) => Number(c.seq))).toEqual(mine.map(() => lastSeq));
      const sync = await client.sync({});
      expect(sync.events).toEqual([]);
      expect(sync.hasMore).toBe(false);
    }
    await stopListening();
  }, 300_000);
});
