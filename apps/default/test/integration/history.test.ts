import { Code } from "@connectrpc/connect";
import { Direction, RoomEventType, RoomType } from "@service-chat/api";
import type { ChatClient } from "@service-chat/testing";
import { failsWith, groupRoom, send, sendOk, startTestApp, type TestApp, text } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
let roomId: string;
/** 1 (room created) + 1,000 messages. */
const TOTAL = 1001;

beforeAll(async () => {
  t = await startTestApp();
  roomId = await groupRoom(t, "hist-alice", "hist-bob");
  for (let batch = 0; batch < 10; batch++) {
    const acks = await send(
      t.as(batch % 2 ? "hist-bob" : "hist-alice"),
      ...Array.from({ length: 100 }, (_, i) => text(roomId, `message ${batch * 100 + i + 1}`)),
    );
    expect(acks.every((a) => !a.error)).toBe(true);
  }
});
afterAll(() => t.stop());

/** Reads every page; checks that only the last one has no next_cursor and each is full but the last. */
async function readAll(client: ChatClient, direction: Direction, limit: number) {
  const seqs: bigint[] = [];
  let cursor = "";
  let pages = 0;
  for (;;) {
    const page = await client.getHistory({ roomId, cursor, limit, direction });
    pages++;
    seqs.push(...page.events.map((e) => e.seq));
    if (page.nextCursor === "") {
      expect(page.events.length).toBeGreaterThan(0);
      expect(page.events.length).toBeLessThanOrEqual(limit);
      break;
    }
    expect(page.events).toHaveLength(limit);
    cursor = page.nextCursor;
  }
  return { seqs, pages };
}

const ascending = Array.from({ length: TOTAL }, (_, i) => BigInt(i + 1));

describe("GetHistory paging over 1,001 events", () => {
  it.each([1, 7, 100])("backward with limit %i returns every seq once, newest first", async (limit) => {
    const { seqs, pages } = await readAll(t.as("hist-alice"), Direction.BACKWARD, limit);
    expect(seqs).toEqual([...ascending].reverse());
    expect(pages).toBe(Math.ceil(TOTAL / limit));
  });

  it.each([1, 7, 100])("forward with limit %i returns every seq once, oldest first", async (limit) => {
    const { seqs, pages } = await readAll(t.as("hist-bob"), Direction.FORWARD, limit);
    expect(seqs).toEqual(ascending);
    expect(pages).toBe(Math.ceil(TOTAL / limit));
  });

  it("is newest first with 50 events by default", async () => {
    const page = await t.as("hist-bob").getHistory({ roomId });
    expect(page.events.map((e) => e.seq)).toEqual(ascending.slice(-50).reverse());
    expect(page.events[0]?.content.value).toMatchObject({ body: "message 1000" });
    const next = await t.as("hist-bob").getHistory({ roomId, cursor: page.nextCursor });
    expect(next.events.map((e) => e.seq)).toEqual(ascending.slice(-100, -50).reverse());
  });

  it("shows each message with its sender and content", async () => {
    const page = await t.as("hist-alice").getHistory({ roomId, direction: Direction.FORWARD, limit: 100 });
    expect(page.events[0]?.type).toBe(RoomEventType.SYSTEM);
    expect(page.events.slice(1).map((e) => [e.seq, e.source?.profileId, e.content.value])).toEqual(
      Array.from({ length: 99 }, (_, i) => [
        BigInt(i + 2),
        "hist-alice",
        expect.objectContaining({ body: `message ${i + 1}` }),
      ]),
    );
    expect(page.events.every((e) => e.roomId === roomId)).toBe(true);
  });

  it("ends with an empty next_cursor when the last page is exactly full", async () => {
    const last = await t.as("hist-alice").getHistory({ roomId, limit: 1, direction: Direction.BACKWARD });
    const rest = await t.as("hist-alice").getHistory({ roomId, cursor: last.nextCursor, limit: 100 });
    expect(rest.nextCursor).not.toBe("");
    const pages: bigint[][] = [];
    let cursor = rest.nextCursor;
    while (cursor) {
      const page = await t.as("hist-alice").getHistory({ roomId, cursor, limit: 100 });
      pages.push(page.events.map((e) => e.seq));
      cursor = page.nextCursor;
    }
    expect(pages.at(-1)).toEqual(ascending.slice(0, 100).reverse());
  });

  it("shows events sent after a cursor was issued on the next forward page", async () => {
    const roomId2 = await groupRoom(t, "tail-alice");
    const alice = t.as("tail-alice");
    await sendOk(alice, text(roomId2, "one"));
    const first = await alice.getHistory({ roomId: roomId2, direction: Direction.FORWARD, limit: 2 });
    expect(first.nextCursor).toBe("");
    await sendOk(alice, text(roomId2, "two"));
    const again = await alice.getHistory({ roomId: roomId2, direction: Direction.FORWARD, limit: 1 });
    const next = await alice.getHistory({
      roomId: roomId2,
      direction: Direction.FORWARD,
      limit: 5,
      cursor: again.nextCursor,
    });
    expect(next.events.map((e) => e.seq)).toEqual([2n, 3n]);
  });
});

describe("GetHistory access", () => {
  it("is NotFound for non-members, of a room and of a room that does not exist", async () => {
    await failsWith(t.as("hist-eve").getHistory({ roomId }), Code.NotFound);
    await failsWith(t.as("hist-eve").getHistory({ roomId: crypto.randomUUID() }), Code.NotFound);
  });

  it("is lost by removed members and by members who leave", async () => {
    const room = await groupRoom(t, "rm-alice", "rm-bob", "rm-carol");
    await sendOk(t.as("rm-bob"), text(room, "hello"));
    expect((await t.as("rm-bob").getHistory({ roomId: room })).events).toHaveLength(2);
    await t.as("rm-alice").removeRoomSubscriptions({ roomId: room, profileIds: ["rm-bob"] });
    await failsWith(t.as("rm-bob").getHistory({ roomId: room }), Code.NotFound);
    await t.as("rm-carol").removeRoomSubscriptions({ roomId: room, profileIds: ["rm-carol"] });
    await failsWith(t.as("rm-carol").getHistory({ roomId: room }), Code.NotFound);
    expect((await t.as("rm-alice").getHistory({ roomId: room })).events).toHaveLength(4);
  });

  it("of a public channel needs joining first", async () => {
    const { room } = await t.as("ch-alice").createRoom({ name: "open", type: RoomType.CHANNEL });
    const channelId = room?.id as string;
    await sendOk(t.as("ch-alice"), text(channelId, "welcome"));
    await failsWith(t.as("ch-bob").getHistory({ roomId: channelId }), Code.PermissionDenied);
    await t.as("ch-bob").addRoomSubscriptions({ roomId: channelId, members: [{ profileId: "ch-bob" }] });
    const { events } = await t.as("ch-bob").getHistory({ roomId: channelId, direction: Direction.FORWARD });
    expect(events.map((e) => e.content.value)).toContainEqual(expect.objectContaining({ body: "welcome" }));
  });
});
