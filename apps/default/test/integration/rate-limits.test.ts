import { Code, ConnectError } from "@connectrpc/connect";
import { RoomType } from "@service-chat/api";
import { countRows, groupRoom, startTestApp, type TestApp, text } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

describe("per-caller limits of the API", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      API_RATE_SEND_EVENTS_PER_SEC: "2", // bursts of 20
      API_RATE_ROOMS_PER_MIN: "3",
      API_RATE_MEMBERSHIP_PER_MIN: "2",
    });
  });
  afterAll(async () => {
    await t.stop();
  });

  const refusal = async (call: Promise<unknown>) => {
    const err = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, "the call should have been refused").toBeInstanceOf(ConnectError);
    return err as ConnectError;
  };

  it("refuses a fourth room a minute with resource_exhausted and a retry hint, creating nothing", async () => {
    const rooms = () =>
      t.db
        .selectFrom("rooms")
        .select((eb) => eb.fn.countAll<string>().as("n"))
        .executeTakeFirst();
    for (let i = 0; i < 3; i++) await t.as("maker").createRoom({ name: `r${i}`, type: RoomType.GROUP });
    const before = Number((await rooms())?.n);
    const err = await refusal(t.as("maker").createRoom({ name: "one too many", type: RoomType.GROUP }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/^more than 3 rooms created a minute; retry in \d+ s$/);
    expect(Number(err.metadata.get("retry-after"))).toBeGreaterThan(0);
    expect(Number((await rooms())?.n)).toBe(before);
    // Another caller has a budget of their own.
    await expect(t.as("other").createRoom({ name: "mine", type: RoomType.GROUP })).resolves.toBeDefined();
  });

  it("counts events, not calls, and stores none of a refused call", async () => {
    const roomId = await groupRoom(t, "chatty");
    const events = (n: number, from: number) => Array.from({ length: n }, (_, i) => text(roomId, `m${from + i}`));
    await t.as("chatty").sendEvent({ event: events(15, 0) });
    const before = await countRows(t, roomId);
    const err = await refusal(t.as("chatty").sendEvent({ event: events(10, 15) }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/^more than 2 events a second; retry in \d+ s$/);
    expect(await countRows(t, roomId)).toEqual(before);
  });

  it("limits membership changes", async () => {
    const roomId = await groupRoom(t, "host");
    await t.as("host").addRoomSubscriptions({ roomId, members: [{ profileId: "g1" }] });
    await t.as("host").addRoomSubscriptions({ roomId, members: [{ profileId: "g2" }] });
    const err = await refusal(t.as("host").addRoomSubscriptions({ roomId, members: [{ profileId: "g3" }] }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/^more than 2 membership changes a minute/);
  });
});
