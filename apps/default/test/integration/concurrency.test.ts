import { RoomEventType, RoomType } from "@service-chat/api";
import { startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

it("50 concurrent senders in one room get dense seqs: no gap, no duplicate, commit order = seq order", async () => {
  const senders = Array.from({ length: 50 }, (_, i) => `sender-${i}`);
  const { room } = await t.as("host").createRoom({
    name: "busy",
    type: RoomType.GROUP,
    members: senders.map((profileId) => ({ profileId })),
  });
  const roomId = room!.id;
  const perSender = 4;
  // A reader polls the newest page while the senders write: it must never see a hole, which it
  // would if a higher seq could commit before a lower one.
  let writing = true;
  let pagesRead = 0;
  const reader = (async () => {
    const host = t.as("host");
    while (writing) {
      const { events } = await host.getHistory({ roomId, limit: 100 });
      const seqs = events.map((e) => Number(e.seq));
      expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) - i));
      pagesRead++;
    }
  })();
  const acks = (
    await Promise.all(
      senders.map(async (s) => {
        const client = t.as(s);
        const out = [];
        for (let i = 0; i < perSender; i++) {
          const { ack } = await client.sendEvent({
            event: [
              {
                roomId,
                clientId: `${s}-${i}`,
                type: RoomEventType.TEXT,
                content: { case: "text", value: { body: `${s} ${i}` } },
              },
            ],
          });
          out.push(ack[0]!);
        }
        return out;
      }),
    )
  ).flat();
  writing = false;
  await reader;
  expect(pagesRead).toBeGreaterThan(0);
  expect(acks.every((a) => a.error === undefined)).toBe(true);
  const seqs = acks.map((a) => Number(a.seq)).sort((a, b) => a - b);
  // seq 1 is the room's creation event.
  expect(seqs).toEqual(Array.from({ length: senders.length * perSender }, (_, i) => i + 2));

  // Each sender's own messages are in the order they were sent.
  for (const s of senders) {
    const mine = acks.filter((a) => a.clientId.startsWith(`${s}-`)).map((a) => a.seq);
    expect([...mine].sort((a, b) => (a < b ? -1 : 1))).toEqual(mine);
  }
  const rows = await t.db
    .selectFrom("room_events")
    .select(["seq"])
    .where("room_id", "=", roomId)
    .orderBy("seq")
    .execute();
  expect(rows.map((r) => r.seq)).toEqual([1, ...seqs]);
  const { room: after } = await t.as("host").getRoom({ roomId });
  expect(after?.lastSeq).toBe(BigInt(1 + senders.length * perSender));
});
