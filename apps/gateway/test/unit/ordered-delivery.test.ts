import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  type RoomCursor,
  RoomCursorSchema,
  type ServerFrame,
  ServerFrameSchema,
  type SyncResponse,
  SyncResponseSchema,
} from "@service-chat/api";
import { createLogger } from "@service-chat/core";
import { DISCONNECT, type Disconnect } from "@service-chat/protocol";
import { describe, expect, it } from "vitest";
import { type DeliveryTarget, OrderedDelivery } from "../../src/session/ordered-delivery.js";

const event = (roomId: string, seq: number) => ({ roomId, seq: BigInt(seq) });
const cursor = (roomId: string, seq: number) => create(RoomCursorSchema, { roomId, seq: BigInt(seq) });
const positions = (cursors: RoomCursor[] | undefined) => cursors?.map((c) => `${c.roomId}:${c.seq}`);
const page = (p: MessageInitShape<typeof SyncResponseSchema>) => create(SyncResponseSchema, p);

/** A live frame as the hub hands it over: decoded, with its bytes. */
function live(init: MessageInitShape<typeof ServerFrameSchema>["frame"]): [ServerFrame, Uint8Array] {
  const frame = create(ServerFrameSchema, { frame: init });
  return [frame, toBinary(ServerFrameSchema, frame)];
}
const liveEvent = (roomId: string, seq: number) => live({ case: "event", value: event(roomId, seq) });

/**
 * A session for the ordered delivery: Sync answers with the pages the test gives it, when it
 * gives them; what is written to the device is kept as short labels ("r:3", "synced", …).
 */
function session(limits = { replayPageSize: 500, maxHeldFrames: 10_000 }) {
  const asked: RoomCursor[][] = [];
  const answers: { resolve(p: SyncResponse): void; reject(e: Error): void }[] = [];
  const written: string[] = [];
  const closed: Disconnect[] = [];
  const target: DeliveryTarget = {
    sync(cursors, limit) {
      expect(limit).toBe(limits.replayPageSize);
      asked.push(cursors);
      return new Promise((resolve, reject) => answers.push({ resolve, reject }));
    },
    emit(frame) {
      const f = frame.frame;
      written.push(f.case === "event" ? `${f.value.roomId}:${f.value.seq}` : (f.case ?? ""));
    },
    close(reason) {
      closed.push(reason);
      delivery.stop();
    },
  };
  const delivery = new OrderedDelivery(target, limits, createLogger("silent"));
  /** Answers the oldest Sync call still waiting. */
  const answer = async (p: SyncResponse) => {
    await expect.poll(() => answers.length).toBeGreaterThan(0);
    answers.shift()?.resolve(p);
  };
  const fail = async () => {
    await expect.poll(() => answers.length).toBeGreaterThan(0);
    answers.shift()?.reject(new Error("database unreachable"));
  };
  /** Replays from the given cursors with one empty page: the session is live after. */
  const goLive = async (...cursors: RoomCursor[]) => {
    const replay = delivery.replay(cursors);
    await answer(page({ cursors }));
    await replay;
  };
  return { delivery, asked, written, closed, answer, fail, goLive };
}

describe("ordered delivery", () => {
  it("holds live frames during the replay, then passes on those the replay did not give, in order", async () => {
    const s = session();
    const replay = s.delivery.replay([cursor("r", 0)]);
    s.delivery.offer(...liveEvent("r", 2));
    s.delivery.offer(...live({ case: "typing", value: { roomId: "r", profileId: "ann", active: true } }));
    s.delivery.offer(...liveEvent("r", 3));
    await s.answer(page({ events: [event("r", 1)], cursors: [cursor("r", 1)], hasMore: true }));
    await s.answer(page({ events: [event("r", 2)], cursors: [cursor("r", 2)] }));
    await replay;
    expect(s.asked.map(positions)).toEqual([["r:0"], ["r:1"]]); // the next page starts where the last ended
    expect(s.written).toEqual(["r:1", "r:2", "synced", "typing", "r:3"]);
  });

  it("fills a gap from Sync before writing anything after it, and drops what it already wrote", async () => {
    const s = session();
    await s.goLive(cursor("r", 1), cursor("q", 7));
    s.delivery.offer(...liveEvent("r", 2));
    s.delivery.offer(...liveEvent("r", 4)); // 3 is missing
    s.delivery.offer(...liveEvent("q", 8)); // held too: nothing overtakes the gap fill
    s.delivery.offer(...liveEvent("r", 5));
    expect(s.written).toEqual(["synced", "r:2"]);
    await s.answer(page({ events: [event("r", 3), event("r", 4)], cursors: [cursor("r", 4), cursor("q", 7)] }));
    await expect.poll(() => s.written).toEqual(["synced", "r:2", "r:3", "r:4", "q:8", "r:5"]);
    expect(positions(s.asked[1])).toEqual(["r:2", "q:7"]);
    s.delivery.offer(...liveEvent("r", 5));
    s.delivery.offer(...liveEvent("r", 1));
    s.delivery.offer(...liveEvent("r", 6));
    expect(s.written.slice(6)).toEqual(["r:6"]);
  });

  it("moves a room's position where a resync says the device continues", async () => {
    const s = session();
    const replay = s.delivery.replay([cursor("r", 5)]);
    await s.answer(
      page({
        resync: [{ roomId: "r", fromSeq: 50n, lastSeq: 51n }],
        events: [event("r", 50), event("r", 51)],
        cursors: [cursor("r", 51)],
      }),
    );
    await replay;
    s.delivery.offer(...liveEvent("r", 52)); // next after the resync: no gap
    s.delivery.offer(...liveEvent("r", 30)); // before it: already behind the device
    expect(s.written).toEqual(["resync", "r:50", "r:51", "synced", "r:52"]);
    expect(s.asked).toHaveLength(1);
  });

  it("closes the session as slow when more arrives while catching up than it may hold", async () => {
    const s = session({ replayPageSize: 500, maxHeldFrames: 3 });
    const replay = s.delivery.replay([]);
    for (let seq = 1; seq <= 4; seq++) s.delivery.offer(...liveEvent("r", seq));
    expect(s.closed).toEqual([DISCONNECT.slow]);
    await s.answer(page({}));
    await replay;
    expect(s.written).toEqual([]);
  });

  it("closes the session when a gap cannot be filled, writing nothing past it", async () => {
    const s = session();
    await s.goLive(cursor("r", 1));
    s.delivery.offer(...liveEvent("r", 3));
    await s.fail();
    await expect.poll(() => s.closed).toEqual([DISCONNECT.internal]);
    s.delivery.offer(...liveEvent("r", 2));
    expect(s.written).toEqual(["synced"]);
  });
});
