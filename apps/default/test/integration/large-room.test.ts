import { RoomEventType, RoomType } from "@service-chat/api";
import { startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const count = async (table: "room_events" | "outbox" | "room_subscriptions", roomId: string) => {
  const row = await t.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("room_id", "=", roomId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
};

it("a message to a room of 10,000 members writes one event row and one outbox row", async () => {
  const owner = t.as("big-owner");
  const { room } = await owner.createRoom({ name: "town square", type: RoomType.GROUP });
  const roomId = room!.id;
  for (let batch = 0; batch < 10; batch++) {
    const members = Array.from({ length: 1000 }, (_, i) => ({ profileId: `citizen-${batch * 1000 + i}` }));
    const { subscriptions } = await owner.addRoomSubscriptions({ roomId, members });
    expect(subscriptions).toHaveLength(1000);
  }
  expect(await count("room_subscriptions", roomId)).toBe(10_001);
  const { room: full } = await owner.getRoom({ roomId });
  expect(full?.memberCount).toBe(10_001);

  const events = await count("room_events", roomId);
  const outbox = await count("outbox", roomId);
  const { ack } = await t.as("citizen-9999").sendEvent({
    event: [{ roomId, type: RoomEventType.TEXT, content: { case: "text", value: { body: "hello, everyone" } } }],
  });
  expect(ack[0]?.error).toBeUndefined();
  expect(await count("room_events", roomId)).toBe(events + 1);
  expect(await count("outbox", roomId)).toBe(outbox + 1);
}, 120_000);
