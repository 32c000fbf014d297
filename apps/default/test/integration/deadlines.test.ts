import { groupRoom, startTestApp, TEST_DB, type TestApp } from "@service-chat/testing";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A call that cannot finish in time: another transaction holds the room's row, which every send
// to the room locks first. (On PostgreSQL: the embedded database runs one statement at a time.)
describe.skipIf(TEST_DB !== "postgres")("deadlines", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.stop();
  });

  it("answers deadline_exceeded at the caller's deadline, not when the work ends", async () => {
    const roomId = await groupRoom(t, "alice");
    const token = await t.signer.sign({ sub: "alice" });
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => {
      locked = r;
    });
    const holder = t.db.transaction().execute(async (tx) => {
      await sql`select id from rooms where id = ${roomId} for update`.execute(tx);
      locked();
      await held;
    });
    await isLocked;
    try {
      // The lock is released only after the answer: an answer at all shows the deadline ended the
      // call, not the end of the work it waited for.
      const res = await fetch(`${t.httpUrl}/chat.v1.ChatService/SendEvent`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "connect-timeout-ms": "300",
          authorization: `Bearer ${token}`,
        },
        body: JSON.stringify({
          event: [{ roomId, clientId: "late", type: "ROOM_EVENT_TYPE_TEXT", text: { body: "hi" } }],
        }),
      });
      expect(res.status).toBe(504);
      expect(await res.json()).toMatchObject({ code: "deadline_exceeded" });
    } finally {
      release();
      await holder;
    }
  });
});
