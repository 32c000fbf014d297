import { describe, expect, it } from "vitest";
import type { SyncRoom } from "../../src/delivery/store.js";
import { planSyncPage } from "../../src/delivery/sync-plan.js";

// Which events a Sync page sends, decided from cursors and seqs alone (seqs are dense).

const room = (
  room_id: string,
  last_seq: number,
  joined_seq = 0,
  delivered_seq: number | null = null,
  first_seq = 1,
): SyncRoom => ({
  room_id,
  joined_seq,
  last_seq,
  first_seq,
  delivered_seq,
});
const none = new Map<string, number>();

describe("planSyncPage", () => {
  it("moves a device whose cursor is before the member's latest join to where they joined, and says so", () => {
    // Removed after 2, added again by event 5 (joined after 4): 3 and 4 are not theirs to see.
    const plan = planSyncPage([room("a", 6, 4, 2), room("b", 6, 4)], new Map([["b", 1]]), 100, 1000);
    expect(plan.ranges).toEqual([
      { roomId: "a", after: 4, upTo: 6 },
      { roomId: "b", after: 4, upTo: 6 },
    ]);
    expect(plan.resync.map((r) => [r.roomId, r.fromSeq])).toEqual([
      ["a", 5],
      ["b", 5],
    ]);
    // A device already past the join is not told anything.
    expect(planSyncPage([room("a", 6, 4, 5)], none, 100, 1000).resync).toEqual([]);
  });

  it("starts from the cursor given, else the device's acknowledged one, else where the member joined", () => {
    const plan = planSyncPage(
      [room("a", 10, 0, 4), room("b", 10, 2, 6), room("c", 10, 3)],
      new Map([["b", 8]]),
      100,
      1000,
    );
    expect(plan.ranges).toEqual([
      { roomId: "a", after: 4, upTo: 10 },
      { roomId: "b", after: 8, upTo: 10 },
      { roomId: "c", after: 3, upTo: 10 },
    ]);
    expect(plan.cursors).toEqual([
      { roomId: "a", seq: 10 },
      { roomId: "b", seq: 10 },
      { roomId: "c", seq: 10 },
    ]);
    expect(plan).toMatchObject({ resync: [], hasMore: false });
  });

  it("never starts before the member joined nor after the room's last event", () => {
    const plan = planSyncPage(
      [room("a", 10, 5), room("b", 10)],
      new Map([
        ["a", 1],
        ["b", 99],
      ]),
      100,
      1000,
    );
    expect(plan.ranges).toEqual([{ roomId: "a", after: 5, upTo: 10 }]);
    expect(plan.cursors).toEqual([
      { roomId: "a", seq: 10 },
      { roomId: "b", seq: 10 },
    ]);
  });

  it("shares the page out in room order and says there is more", () => {
    const plan = planSyncPage([room("a", 30), room("b", 30), room("c", 30)], none, 50, 1000);
    expect(plan.ranges).toEqual([
      { roomId: "a", after: 0, upTo: 30 },
      { roomId: "b", after: 0, upTo: 20 },
    ]);
    expect(plan.cursors).toEqual([
      { roomId: "a", seq: 30 },
      { roomId: "b", seq: 20 },
      { roomId: "c", seq: 0 },
    ]);
    expect(plan.hasMore).toBe(true);
    // The next page, from the cursors of this one, takes up where it stopped.
    const next = planSyncPage(
      [room("a", 30), room("b", 30), room("c", 30)],
      new Map(plan.cursors.map((c) => [c.roomId, c.seq])),
      50,
      1000,
    );
    expect(next.ranges).toEqual([
      { roomId: "b", after: 20, upTo: 30 },
      { roomId: "c", after: 0, upTo: 30 },
    ]);
    expect(next.hasMore).toBe(false);
  });

  it("answers a room too far behind with a resync and replays only its last events", () => {
    const plan = planSyncPage([room("a", 5000, 0, 100), room("b", 20, 0, 19)], none, 1000, 1000);
    expect(plan.resync).toEqual([
      {
        roomId: "a",
        fromSeq: 4001,
        lastSeq: 5000,
        reason: "more than 1000 events behind; older ones are in GetHistory",
      },
    ]);
    expect(plan.ranges).toEqual([{ roomId: "a", after: 4000, upTo: 5000 }]);
    expect(plan.cursors).toEqual([
      { roomId: "a", seq: 5000 },
      { roomId: "b", seq: 19 },
    ]);
    expect(plan.hasMore).toBe(true);
  });

  it("is not a resync at exactly the backlog bound", () => {
    const plan = planSyncPage([room("a", 1100, 0, 100)], none, 2000, 1000);
    expect(plan.resync).toEqual([]);
    expect(plan.ranges).toEqual([{ roomId: "a", after: 100, upTo: 1100 }]);
  });

  it("answers a cursor below the first stored seq with a resync to it, not a gap", () => {
    const plan = planSyncPage([room("a", 50, 0, 10, 31), room("b", 50, 0, 30, 31)], none, 1000, 1000);
    expect(plan.resync).toEqual([
      {
        roomId: "a",
        fromSeq: 31,
        lastSeq: 50,
        reason: "events before seq 31 were removed by the room's retention policy",
      },
    ]);
    expect(plan.ranges).toEqual([
      { roomId: "a", after: 30, upTo: 50 },
      { roomId: "b", after: 30, upTo: 50 },
    ]);
  });

  it("names retention when it starts a room later than the backlog bound would", () => {
    const plan = planSyncPage([room("a", 5000, 0, 100, 4500)], none, 2000, 1000);
    expect(plan.resync).toMatchObject([{ roomId: "a", fromSeq: 4500, reason: expect.stringMatching(/retention/) }]);
    expect(plan.ranges).toEqual([{ roomId: "a", after: 4499, upTo: 5000 }]);
  });

  it("resyncs a room whose every event was removed to the seq after its last", () => {
    const plan = planSyncPage([room("a", 9, 0, 2, 10)], none, 100, 1000);
    expect(plan.resync).toMatchObject([{ roomId: "a", fromSeq: 10, lastSeq: 9 }]);
    expect(plan.ranges).toEqual([]);
    expect(plan.cursors).toEqual([{ roomId: "a", seq: 9 }]);
  });

  it("has nothing to send for rooms seen to the end", () => {
    expect(planSyncPage([room("a", 7, 0, 7)], none, 10, 1000)).toEqual({
      ranges: [],
      resync: [],
      hasMore: false,
      cursors: [{ roomId: "a", seq: 7 }],
    });
  });
});
