import { create } from "@bufbuild/protobuf";
import { type RoomEvent, RoomEventSchema, SystemEventKind } from "@service-chat/api";
import { describe, expect, it } from "vitest";
import type { EventRow } from "../../src/db/schema.js";
import { MembershipCache, membershipChange } from "../../src/delivery/membership.js";
import type { DeliveryStore } from "../../src/delivery/store.js";

/** A room's history as fan-out sees it: system events that change who is in, and messages. */
function history() {
  const events: RoomEvent[] = [];
  const add = (content: RoomEvent["content"]) => {
    const e = create(RoomEventSchema, { roomId: "r", seq: BigInt(events.length + 1), content });
    events.push(e);
    return e;
  };
  const system = (kind: SystemEventKind, profileIds: string[], actorId = "owner") =>
    add({ case: "system", value: { kind, profileIds, actorId } as never });
  return {
    events,
    /** The first stored seq: retention removed the events before it. */
    firstSeq: 1,
    created: (...members: string[]) => system(SystemEventKind.ROOM_CREATED, members),
    added: (...members: string[]) => system(SystemEventKind.MEMBERS_ADDED, members),
    removed: (...members: string[]) => system(SystemEventKind.MEMBERS_REMOVED, members),
    renamed: () => system(SystemEventKind.ROOM_UPDATED, []),
    message: () => add({ case: "text", value: { body: "hi" } as never }),
    /** The members today, as the database has them after every event. */
    today(): string[] {
      const members = new Set<string>();
      for (const e of events) {
        if (e.content.case !== "system") continue;
        const { kind, profileIds, actorId } = e.content.value;
        if (kind === SystemEventKind.ROOM_CREATED) for (const p of [actorId, ...profileIds]) members.add(p);
        if (kind === SystemEventKind.MEMBERS_ADDED) for (const p of profileIds) members.add(p);
        if (kind === SystemEventKind.MEMBERS_REMOVED) for (const p of profileIds) members.delete(p);
      }
      return [...members];
    },
  };
}

/** A store over the history (system events come back as stored rows), counting its reads. */
function storeOf(h: ReturnType<typeof history>) {
  const reads = { members: 0, events: 0 };
  const store = {
    firstSeq: async () => h.firstSeq,
    async activeMembers() {
      reads.members++;
      return h.today();
    },
    async systemEventsFrom(_room: string, seq: number): Promise<EventRow[]> {
      reads.events++;
      return h.events
        .filter((e) => Number(e.seq) >= seq && e.content.case === "system")
        .reverse()
        .map((e) => {
          const c = e.content.value as { kind: SystemEventKind; profileIds: string[]; actorId: string };
          return {
            id: `e${e.seq}`,
            room_id: "r",
            seq: Number(e.seq),
            sender_id: c.actorId,
            sender_contact_id: "",
            type: "system",
            content: {
              kind: SystemEventKind[c.kind] ? `SYSTEM_EVENT_KIND_${SystemEventKind[c.kind]}` : "",
              profileIds: c.profileIds,
              actorId: c.actorId,
            },
            parent_id: null,
            client_id: null,
            edited: false,
            redacted: false,
            sent_at: new Date(),
            server_ts: new Date(),
          } as EventRow;
        });
    },
  };
  return { store: store as unknown as DeliveryStore, reads };
}

const recipients = (cache: MembershipCache, e: RoomEvent) =>
  cache.recipients(e.roomId, Number(e.seq), membershipChange(e));
const names = async (cache: MembershipCache, e: RoomEvent) =>
  (await recipients(cache, e)).map((m) => m.profileId).sort();

describe("who receives which event", () => {
  it("follows a room forward: the added get their addition, the removed their removal, nothing after", async () => {
    const h = history();
    const cache = new MembershipCache(storeOf(h).store, 100);
    expect(await names(cache, h.created("a"))).toEqual(["a", "owner"]);
    expect(await names(cache, h.added("b"))).toEqual(["a", "b", "owner"]);
    expect(await names(cache, h.message())).toEqual(["a", "b", "owner"]);
    expect(await names(cache, h.removed("a"))).toEqual(["a", "b", "owner"]);
    expect(await names(cache, h.message())).toEqual(["b", "owner"]);
    expect(await names(cache, h.renamed())).toEqual(["b", "owner"]);
  });

  it("reads the database once per room while it follows it", async () => {
    const h = history();
    h.created("a");
    const { store, reads } = storeOf(h);
    const cache = new MembershipCache(store, 100);
    for (let i = 0; i < 10; i++) await recipients(cache, h.message());
    expect(reads).toEqual({ members: 1, events: 1 });
  });

  it("gives a late event to the members of its time, not of a later change (someone in and out twice)", async () => {
    const h = history();
    h.created();
    const early = [h.added("b"), h.message(), h.removed("b"), h.message(), h.added("b"), h.message()];
    // Another worker handled all this; this one is handed the events again, late, with b in today.
    const cache = new MembershipCache(storeOf(h).store, 100);
    const got = [];
    for (const e of early) got.push(await names(cache, e));
    expect(got).toEqual([["b", "owner"], ["b", "owner"], ["b", "owner"], ["owner"], ["b", "owner"], ["b", "owner"]]);
  });

  it("rebuilds a room it could not follow (events it did not see), as it stood before the event", async () => {
    const h = history();
    h.created("a");
    const cache = new MembershipCache(storeOf(h).store, 100);
    expect(await names(cache, h.message())).toEqual(["a", "owner"]);
    h.added("b"); // handled by another worker
    h.removed("a");
    expect(await names(cache, h.message())).toEqual(["b", "owner"]);
    // And a redelivered earlier event still goes to the members of its time.
    expect(await names(cache, h.events[1] as RoomEvent)).toEqual(["a", "owner"]);
  });

  it("gives nobody an event whose room's changes since were removed by retention, then follows on", async () => {
    const h = history();
    h.created("a");
    const late = [h.message(), h.added("b"), h.message()];
    const now = h.message();
    h.firstSeq = 4; // retention removed seqs 1-3 before this worker got to them
    const cache = new MembershipCache(storeOf(h).store, 100);
    for (const e of late.slice(0, 2)) expect(await names(cache, e)).toEqual([]);
    // From the first stored event on, the room is known again.
    expect(await names(cache, late[2] as RoomEvent)).toEqual(["a", "b", "owner"]);
    expect(await names(cache, now)).toEqual(["a", "b", "owner"]);
  });
});
