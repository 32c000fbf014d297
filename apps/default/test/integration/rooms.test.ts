import { Code } from "@connectrpc/connect";
import { type Room, RoomType, SystemEventKind } from "@service-chat/api";
import { startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChannel, createGroup, failsWith, roles, rowCounts, sendText, systemEvents } from "./room-helpers.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const direct = async (from: string, to: string): Promise<Room> =>
  (await t.as(from).createRoom({ type: RoomType.DIRECT, members: [{ profileId: to }] })).room as Room;

describe("CreateRoom", () => {
  it("creates a group: the caller is owner, the others members", async () => {
    const { room } = await t.as("cg-ann").createRoom({
      name: "Team",
      description: "our team",
      type: RoomType.GROUP,
      metadata: { topic: "work", n: 3 },
      members: [
        { profileId: "cg-ben", contactId: "ben@example.com", profileName: "Ben" },
        { profileId: "cg-cat" },
        { profileId: "cg-ben" },
        { profileId: "cg-ann" },
      ],
    });
    expect(room).toMatchObject({
      type: RoomType.GROUP,
      name: "Team",
      description: "our team",
      metadata: { topic: "work", n: 3 },
      creatorId: "cg-ann",
      memberCount: 3,
      lastSeq: 1n,
    });
    expect(await roles(t.as("cg-ben"), room!.id)).toEqual({
      "cg-ann": "owner",
      "cg-ben": "member",
      "cg-cat": "member",
    });
    const { subscriptions } = await t.as("cg-ann").searchRoomSubscriptions({ roomId: room!.id, query: "cg-ben" });
    expect(subscriptions[0]?.member).toMatchObject({ contactId: "ben@example.com", profileName: "Ben" });
    const [created] = await systemEvents(t.as("cg-cat"), room!.id);
    expect(created).toMatchObject({ kind: SystemEventKind.ROOM_CREATED, actorId: "cg-ann" });
    expect([...(created?.profileIds ?? [])].sort()).toEqual(["cg-ben", "cg-cat"]);
  });

  it("creates a channel with the caller as owner", async () => {
    const room = await createChannel(t.as("cc-ann"), "news", ["cc-ben"]);
    expect(room).toMatchObject({ type: RoomType.CHANNEL, name: "news", memberCount: 2, creatorId: "cc-ann" });
    expect(await roles(t.as("cc-ann"), room.id)).toEqual({ "cc-ann": "owner", "cc-ben": "member" });
  });

  it("creates a direct room that both people own", async () => {
    const room = await direct("cd-ann", "cd-ben");
    expect(room).toMatchObject({ type: RoomType.DIRECT, memberCount: 2, creatorId: "cd-ann" });
    expect(await roles(t.as("cd-ben"), room.id)).toEqual({ "cd-ann": "owner", "cd-ben": "owner" });
  });

  it("returns the existing direct room of a pair, from either side", async () => {
    const first = await direct("dd-ann", "dd-ben");
    expect((await direct("dd-ann", "dd-ben")).id).toBe(first.id);
    expect((await direct("dd-ben", "dd-ann")).id).toBe(first.id);
    const created = (await systemEvents(t.as("dd-ben"), first.id)).filter(
      (e) => e.kind === SystemEventKind.ROOM_CREATED,
    );
    expect(created).toHaveLength(1);
    const { rooms } = await t.as("dd-ann").searchRooms({});
    expect(rooms.filter((r) => r.type === RoomType.DIRECT).map((r) => r.id)).toEqual([first.id]);
    expect((await direct("dd-ann", "dd-cat")).id).not.toBe(first.id);
  });

  it("creates one direct room when both sides ask at the same time", async () => {
    const rooms = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? direct("cc2-ann", "cc2-ben") : direct("cc2-ben", "cc2-ann"))),
    );
    expect(new Set(rooms.map((r) => r.id)).size).toBe(1);
    const stored = await t.db
      .selectFrom("rooms")
      .select("id")
      .where("type", "=", "direct")
      .where("creator_id", "in", ["cc2-ann", "cc2-ben"])
      .execute();
    expect(stored).toHaveLength(1);
    expect(await systemEvents(t.as("cc2-ann"), rooms[0]!.id)).toHaveLength(1);
  });
});

describe("CreateRoom validation", () => {
  const long = (n: number) => "x".repeat(n);
  it.each([
    ["an unspecified type", { name: "r" }, "type"],
    ["an unknown type", { name: "r", type: 99 as RoomType }, "type"],
    ["a channel without a name", { type: RoomType.CHANNEL, name: "  " }, "name"],
    ["a name over 200 bytes", { type: RoomType.GROUP, name: long(201) }, "name"],
    ["a name over 200 bytes in UTF-8", { type: RoomType.GROUP, name: "é".repeat(101) }, "name"],
    ["a name with a line break", { type: RoomType.GROUP, name: "a\nb" }, "name"],
    ["a description over 2000 bytes", { type: RoomType.GROUP, description: long(2001) }, "description"],
    ["a description with a control character", { type: RoomType.GROUP, description: "a\u0007" }, "description"],
    ["metadata over 64 KiB", { type: RoomType.GROUP, metadata: { blob: long(64 * 1024) } }, "metadata"],
    ["an empty member id", { type: RoomType.GROUP, members: [{ profileId: "" }] }, "members[0].profile_id"],
    [
      "a member id with a space",
      { type: RoomType.GROUP, members: [{ profileId: "v1" }, { profileId: "a b" }] },
      "members[1].profile_id",
    ],
    [
      "a member id over 128 characters",
      { type: RoomType.GROUP, members: [{ profileId: long(129) }] },
      "members[0].profile_id",
    ],
    [
      "a contact id over 128 bytes",
      { type: RoomType.GROUP, members: [{ profileId: "v1", contactId: long(129) }] },
      "members[0].contact_id",
    ],
    [
      "a member name with a tab",
      { type: RoomType.GROUP, members: [{ profileId: "v1", profileName: "a\tb" }] },
      "members[0].profile_name",
    ],
    [
      "more than 1000 members",
      { type: RoomType.GROUP, members: Array.from({ length: 1001 }, (_, i) => ({ profileId: `m${i}` })) },
      "members",
    ],
    ["a direct room without the other person", { type: RoomType.DIRECT }, "members"],
    ["a direct room with oneself", { type: RoomType.DIRECT, members: [{ profileId: "val-ann" }] }, "members"],
    [
      "a direct room with two others",
      { type: RoomType.DIRECT, members: [{ profileId: "v1" }, { profileId: "v2" }] },
      "members",
    ],
  ])("refuses %s", async (_, request, field) => {
    const before = await rowCounts(t.db);
    await failsWith(t.as("val-ann").createRoom(request), Code.InvalidArgument, field);
    expect(await rowCounts(t.db)).toEqual(before);
    expect((await t.as("val-ann").searchRooms({ query: "" })).rooms.filter((r) => r.creatorId === "val-ann")).toEqual(
      [],
    );
  });

  it("accepts limits exactly at the boundary", async () => {
    const { room } = await t.as("val-bob").createRoom({
      type: RoomType.GROUP,
      name: "n".repeat(200),
      description: "d\n".repeat(1000),
      metadata: { blob: "x".repeat(64 * 1024 - 11) },
    });
    expect(room?.name).toHaveLength(200);
    expect(room?.metadata?.blob).toHaveLength(64 * 1024 - 11);
  });
});

describe("GetRoom", () => {
  it("shows a group and a direct room to their members only", async () => {
    const group = await createGroup(t.as("gr-ann"), "private", ["gr-ben"]);
    const dm = await direct("gr-ann", "gr-ben");
    for (const room of [group, dm]) {
      for (const who of ["gr-ann", "gr-ben"])
        expect((await t.as(who).getRoom({ roomId: room.id })).room?.id).toBe(room.id);
      const err = await failsWith(t.as("gr-eve").getRoom({ roomId: room.id }), Code.NotFound);
      expect(err.rawMessage).toBe("room not found");
    }
  });

  it("shows a channel to anyone", async () => {
    const room = await createChannel(t.as("gr2-ann"), "public");
    expect((await t.as("gr2-stranger").getRoom({ roomId: room.id })).room).toMatchObject({
      id: room.id,
      name: "public",
    });
  });

  it("answers an unknown id with NotFound and a malformed id with InvalidArgument", async () => {
    await failsWith(t.as("gr3").getRoom({ roomId: "01890000-0000-7000-8000-000000000000" }), Code.NotFound);
    await failsWith(t.as("gr3").getRoom({ roomId: "not-a-uuid" }), Code.InvalidArgument, "room_id");
    await failsWith(t.as("gr3").getRoom({ roomId: "" }), Code.InvalidArgument, "room_id");
  });
});

describe("DeleteRoom", () => {
  it("removes the room for everyone", async () => {
    const owner = t.as("del-ann");
    const room = await createChannel(owner, "doomed", ["del-ben"]);
    expect(await owner.deleteRoom({ roomId: room.id })).toMatchObject({ roomId: room.id });
    for (const who of ["del-ann", "del-ben", "del-eve"]) {
      await failsWith(t.as(who).getRoom({ roomId: room.id }), Code.NotFound);
      await failsWith(t.as(who).getHistory({ roomId: room.id }), Code.NotFound);
    }
    const ack = await sendText(t.as("del-ben"), room.id, "hello?");
    expect(ack.error?.code).toBe("not_found");
    expect(ack.seq).toBe(0n);
    await failsWith(owner.updateRoom({ roomId: room.id, name: "x" }), Code.NotFound);
    await failsWith(
      owner.addRoomSubscriptions({ roomId: room.id, members: [{ profileId: "del-cat" }] }),
      Code.NotFound,
    );
    await failsWith(
      t.as("del-eve").addRoomSubscriptions({ roomId: room.id, members: [{ profileId: "del-eve" }] }),
      Code.NotFound,
    );
    await failsWith(owner.deleteRoom({ roomId: room.id }), Code.NotFound);
    expect((await owner.searchRooms({ query: "doomed" })).rooms).toEqual([]);
  });

  it("writes the deletion as the room's last event", async () => {
    const room = await createGroup(t.as("del2-ann"), "ending");
    await t.as("del2-ann").deleteRoom({ roomId: room.id });
    const last = await t.db
      .selectFrom("room_events")
      .select(["seq", "content"])
      .where("room_id", "=", room.id)
      .orderBy("seq", "desc")
      .executeTakeFirstOrThrow();
    expect(last).toMatchObject({ seq: 2, content: { kind: "SYSTEM_EVENT_KIND_ROOM_DELETED", actorId: "del2-ann" } });
  });

  it("lets the pair start a new direct room after deleting the old one", async () => {
    const old = await direct("del3-ann", "del3-ben");
    await sendText(t.as("del3-ann"), old.id, "old news");
    await t.as("del3-ben").deleteRoom({ roomId: old.id });
    const fresh = await direct("del3-ann", "del3-ben");
    expect(fresh.id).not.toBe(old.id);
    expect((await direct("del3-ben", "del3-ann")).id).toBe(fresh.id);
    expect(fresh.lastSeq).toBe(1n);
    await failsWith(t.as("del3-ann").getRoom({ roomId: old.id }), Code.NotFound);
  });

  it("is refused to outsiders and for malformed ids, leaving the room in place", async () => {
    const room = await createGroup(t.as("del4-ann"), "kept");
    await failsWith(t.as("del4-eve").deleteRoom({ roomId: room.id }), Code.NotFound);
    await failsWith(t.as("del4-ann").deleteRoom({ roomId: "not-a-uuid" }), Code.InvalidArgument, "room_id");
    const dm = await direct("del4-ann", "del4-ben");
    await failsWith(t.as("del4-eve").deleteRoom({ roomId: dm.id }), Code.NotFound);
    expect((await t.as("del4-ann").getRoom({ roomId: room.id })).room?.lastSeq).toBe(1n);
    expect((await t.as("del4-ann").getRoom({ roomId: dm.id })).room?.lastSeq).toBe(1n);
  });
});
