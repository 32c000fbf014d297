import { describe, expect, it } from "vitest";
import type { EventRow } from "../../src/db/schema.js";
import type { SeqRange, SyncReader, SyncRoom } from "../../src/delivery/store.js";
import {
  type PageEvent,
  SyncBatcher,
  type SyncBatchLimits,
  type SyncReads,
  union,
} from "../../src/delivery/sync-batch.js";

// Concurrent Syncs read together, fairly, each room's events read once (delivery/sync-batch.ts).

/** Rooms "r0" … of `last` events each; every reader is in the rooms `member(profileId)` names, joined at 0. */
class Reads implements SyncReads {
  readonly roomCalls: number[] = [];
  readonly eventCalls: SeqRange[][] = [];
  private gate?: Promise<void>;
  private open?: () => void;

  constructor(
    private readonly last: number,
    private readonly member: (profileId: string) => string[],
  ) {}

  /** The next reads wait until `release`. */
  hold(): void {
    this.gate = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
  }

  async syncRooms(readers: readonly SyncReader[]): Promise<(SyncRoom & { reader: number })[]> {
    this.roomCalls.push(readers.length);
    await this.gate;
    return readers.flatMap((r, reader) =>
      this.member(r.profileId).map((room_id) => ({
        reader,
        room_id,
        joined_seq: 0,
        first_seq: 1,
        last_seq: this.last,
        delivered_seq: null,
      })),
    );
  }

  async eventsIn(ranges: readonly SeqRange[]): Promise<EventRow[]> {
    this.eventCalls.push([...ranges]);
    return ranges.flatMap((g) => Array.from({ length: g.upTo - g.after }, (_, i) => row(g.roomId, g.after + 1 + i)));
  }
}

function row(room_id: string, seq: number): EventRow {
  return {
    id: `${room_id}-${seq}`,
    room_id,
    seq,
    sender_id: "s",
    sender_contact_id: "",
    type: "text",
    content: { body: `m${seq}` },
    parent_id: null,
    client_id: null,
    edited: false,
    redacted: false,
    sent_at: new Date(0),
    server_ts: new Date(0),
  };
}

const limits: SyncBatchLimits = { inFlight: 1, maxDevices: 100, maxEvents: 10_000, maxBacklog: 1000 };
const request = (profileId: string, given: [string, number][] = [], limit = 500) => ({
  reader: { profileId, deviceId: "d" },
  given: new Map(given),
  limit,
});
const seqs = (events: PageEvent[]) => events.map(({ event: e }) => `${e.roomId}:${e.seq}`);

describe("SyncBatcher", () => {
  it("reads the Syncs that arrive while a batch is read together, in the next batch", async () => {
    const reads = new Reads(3, () => ["r0"]);
    const batcher = new SyncBatcher(reads, limits);
    reads.hold();
    const first = batcher.read(request("u0"));
    const later = Array.from({ length: 5 }, (_, i) => batcher.read(request(`u${i + 1}`, [["r0", i % 3]])));
    expect(batcher.load).toEqual({ running: 1, queued: 5 });
    reads.release();
    const answers = await Promise.all([first, ...later]);
    expect(reads.roomCalls).toEqual([1, 5]);
    expect(seqs(answers[0]?.events ?? [])).toEqual(["r0:1", "r0:2", "r0:3"]);
    // Each from its own position.
    expect(answers.slice(1).map((a) => a.events.length)).toEqual([3, 2, 1, 3, 2]);
  });

  it("reads each room's events once for every device of the batch that needs them", async () => {
    // u0 in r0, r1; u1 in r1, r2; u2 in r2, r3: rooms overlap by half.
    const reads = new Reads(12, (p) => {
      const i = Number(p.slice(1));
      return [`r${i}`, `r${i + 1}`];
    });
    const batcher = new SyncBatcher(reads, limits);
    reads.hold();
    void batcher.read(request("warm-up"));
    const pages = [0, 1, 2].map((i) => batcher.read(request(`u${i}`, [[`r${i + 1}`, 4]])));
    reads.release();
    const answers = await Promise.all(pages);
    expect(reads.eventCalls[1]).toEqual([
      { roomId: "r0", after: 0, upTo: 12 },
      { roomId: "r1", after: 0, upTo: 12 },
      { roomId: "r2", after: 0, upTo: 12 },
      { roomId: "r3", after: 4, upTo: 12 },
    ]);
    expect(seqs(answers[1]?.events ?? [])).toEqual([
      ...Array.from({ length: 12 }, (_, k) => `r1:${k + 1}`),
      ...Array.from({ length: 8 }, (_, k) => `r2:${k + 5}`),
    ]);
    expect(answers.every((a) => !a.plan.hasMore)).toBe(true);
  });

  it("shares a batch's events evenly, so a device far behind does not hold up the others", async () => {
    const reads = new Reads(1000, (p) => [p === "far" ? "big" : `own-${p}`]);
    const batcher = new SyncBatcher(reads, { ...limits, maxEvents: 40 });
    reads.hold();
    void batcher.read(request("warm-up"));
    const far = batcher.read(request("far"));
    const near = Array.from({ length: 3 }, (_, i) => batcher.read(request(`n${i}`, [[`own-n${i}`, 995]])));
    reads.release();
    const [farPage, ...nearPages] = await Promise.all([far, ...near]);
    // Four devices share 40 events: 10 each at most; the near ones are done, the far one goes on.
    expect(farPage?.events).toHaveLength(10);
    expect(farPage?.plan.hasMore).toBe(true);
    expect(nearPages.map((p) => [p.events.length, p.plan.hasMore])).toEqual([
      [5, false],
      [5, false],
      [5, false],
    ]);
  });

  it("fails every Sync of a batch whose read failed, and goes on with the next", async () => {
    const reads = new Reads(2, () => ["r0"]);
    let fail = true;
    const flaky: SyncReads = {
      syncRooms: async (r) => {
        if (fail) throw new Error("connection lost");
        return reads.syncRooms(r);
      },
      eventsIn: (g) => reads.eventsIn(g),
    };
    const batcher = new SyncBatcher(flaky, limits);
    await expect(batcher.read(request("a"))).rejects.toThrow("connection lost");
    fail = false;
    expect((await batcher.read(request("a"))).events).toHaveLength(2);
  });
});

describe("union", () => {
  it("merges ranges of a room that overlap or touch, and keeps the others apart", () => {
    expect(
      union([
        { roomId: "b", after: 0, upTo: 3 },
        { roomId: "a", after: 5, upTo: 9 },
        { roomId: "a", after: 0, upTo: 5 },
        { roomId: "a", after: 12, upTo: 14 },
        { roomId: "b", after: 2, upTo: 4 },
      ]),
    ).toEqual([
      { roomId: "a", after: 0, upTo: 9 },
      { roomId: "a", after: 12, upTo: 14 },
      { roomId: "b", after: 0, upTo: 4 },
    ]);
  });
});
