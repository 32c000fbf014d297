import { Code } from "@connectrpc/connect";
import { RoomEventType, RoomType } from "@service-chat/api";
import { startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

describe("smoke", () => {
  it("creates a room, sends, reads history", async () => {
    const alice = t.as("alice");
    const { room } = await alice.createRoom({ name: "general", type: RoomType.GROUP, members: [{ profileId: "bob" }] });
    const { ack } = await alice.sendEvent({
      event: [{ roomId: room!.id, type: RoomEventType.TEXT, content: { case: "text", value: { body: "hi" } } }],
    });
    expect(ack[0]?.seq).toBe(2n);
    const { events } = await t.as("bob").getHistory({ roomId: room!.id });
    expect(events.map((e) => e.seq)).toEqual([2n, 1n]);
    expect(events[0]?.content).toMatchObject({ case: "text", value: { body: "hi" } });
    await expect(t.as("carol").getHistory({ roomId: room!.id })).rejects.toMatchObject({ code: Code.NotFound });
  });
});
