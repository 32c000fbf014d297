import { Code } from "@connectrpc/connect";
import { type Room, RoomType, SystemEventKind } from "@service-chat/api";
import { startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  allRooms,
  createChannel,
  createGroup,
  failsWith,
  lastSystemEvent,
  rowCounts,
  systemEvents,
} from "./room-helpers.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const names = (rooms: Room[]) => rooms.map((r) => r.name).sort();
const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("SearchRooms", () => {
  it("lists the caller's rooms and every channel, not other people's private rooms", async () => {
    await createGroup(t.as("sr-ann"), "sr-a-group", ["sr-ben"]);
    await createGroup(t.as("sr-cat"), "sr-c-group");
    await createChannel(t.as("sr-cat"), "sr-c-channel");
    await t.as("sr-ann").createRoom({ type: RoomType.DIRECT, name: "sr-a-direct", members: [{ profileId: "sr-cat" }] });
    expect(names(await allRooms(t.as("sr-ann"), "sr-"))).toEqual(["sr-a-direct", "sr-a-group", "sr-c-channel"]);
    expect(names(await allRooms(t.as("sr-ben"), "sr-"))).toEqual(["sr-a-group", "sr-c-channel"]);
    expect(names(await allRooms(t.as("sr-eve"), "sr-"))).toEqual(["sr-c-channel"]);
  });

  it("drops a private room once the caller is removed from it", async () => {
    const room = await createGroup(t.as("sr2-ann"), "sr2-room", ["sr2-ben"]);
    expect(names(await allRooms(t.as("sr2-ben"), "sr2-"))).toEqual(["sr2-room"]);
    await t.as("sr2-ben").removeRoomSubscriptions({ roomId: room.id, profileIds: ["sr2-ben"] });
    expect(await allRooms(t.as("sr2-ben"), "sr2-")).toEqual([]);
  });

  it("matches the query against name and description, ignoring case", async () => {
    const ann = t.as("sq-ann");
    await ann.createRoom({ type: RoomType.GROUP, name: "sq Gardening club" });
    await ann.createRoom({ type: RoomType.GROUP, name: "sq other", description: "all about GARDENS" });
    await ann.createRoom({ type: RoomType.GROUP, name: "sq cooking" });
    expect(names(await allRooms(ann, "garden"))).toEqual(["sq Gardening club", "sq other"]);
    expect(names(await allRooms(ann, "COOK"))).toEqual(["sq cooking"]);
    expect(await allRooms(ann, "sq nothing-like-this")).toEqual([]);
  });

  it("matches %, _ and \\ literally", async () => {
    const ann = t.as("sl-ann");
    for (const name of ["sl 100% done", "sl 100 done", "sl a_b", "sl axb", "sl c\\d", "sl cd"]) {
      await createGroup(ann, name);
    }
    expect(names(await allRooms(ann, "100%"))).toEqual(["sl 100% done"]);
    expect(names(await allRooms(ann, "a_b"))).toEqual(["sl a_b"]);
    expect(names(await allRooms(ann, "c\\d"))).toEqual(["sl c\\d"]);
    expect(await allRooms(ann, "%%")).toEqual([]);
    expect(await allRooms(ann, "sl_")).toEqual([]);
  });

  it("pages in id order without duplicates or gaps", async () => {
    const ann = t.as("sp-ann");
    const created: string[] = [];
    for (let i = 0; i < 53; i++) created.push((await createGroup(ann, `sp room ${i}`)).id);
    const newestFirst = [...created].sort().reverse();
    expect(new Set(newestFirst).size).toBe(53);

    const first = await ann.searchRooms({ query: "sp room" });
    expect(first.rooms.map((r) => r.id)).toEqual(newestFirst.slice(0, 50));
    const rest = await ann.searchRooms({ query: "sp room", cursor: first.nextCursor });
    expect(rest.rooms.map((r) => r.id)).toEqual(newestFirst.slice(50));
    expect(rest.nextCursor).toBe("");

    const pages: string[][] = [];
    let cursor = "";
    do {
      const page = await ann.searchRooms({ query: "sp room", cursor, limit: 20 });
      pages.push(page.rooms.map((r) => r.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages.map((p) => p.length)).toEqual([20, 20, 13]);
    expect(pages.flat()).toEqual(newestFirst);

    const exact = await ann.searchRooms({ query: "sp room 1", limit: 11 });
    expect(exact.rooms).toHaveLength(11);
    expect(exact.nextCursor).toBe("");
  });

  it("hides deleted rooms", async () => {
    const ann = t.as("sd-ann");
    const gone = await createChannel(ann, "sd gone");
    await createChannel(ann, "sd kept");
    await ann.deleteRoom({ roomId: gone.id });
    expect(names(await allRooms(ann, "sd "))).toEqual(["sd kept"]);
    expect(names(await allRooms(t.as("sd-eve"), "sd "))).toEqual(["sd kept"]);
  });

  it.each([
    ["limit 101", { limit: 101 }, "limit"],
    ["a negative limit", { limit: -1 }, "limit"],
    ["a query over 200 bytes", { query: "q".repeat(201) }, "query"],
    ["a query with a line break", { query: "a\nb" }, "query"],
    ["a cursor that is not base64 JSON", { cursor: "garbage!" }, "cursor"],
    ["a cursor of another version", { cursor: cursorOf({ v: 2, id: "x" }) }, "cursor"],
    ["a cursor without an id", { cursor: cursorOf({ v: 1 }) }, "cursor"],
    ["a cursor with a numeric id", { cursor: cursorOf({ v: 1, id: 5 }) }, "cursor"],
  ])("refuses %s", async (_, request, field) => {
    await failsWith(t.as("sv-ann").searchRooms(request), Code.InvalidArgument, field);
  });

  it("takes limit 0 as the default and 100 as the largest page", async () => {
    await createGroup(t.as("sv2-ann"), "sv2 room");
    expect((await t.as("sv2-ann").searchRooms({ query: "sv2", limit: 0 })).rooms).toHaveLength(1);
    expect((await t.as("sv2-ann").searchRooms({ query: "sv2", limit: 100 })).rooms).toHaveLength(1);
  });
});

describe("UpdateRoom", () => {
  it("changes only the fields that are set", async () => {
    const ann = t.as("up-ann");
    const { room } = await ann.createRoom({
      type: RoomType.GROUP,
      name: "before",
      description: "desc",
      metadata: { a: 1 },
    });
    const renamed = (await ann.updateRoom({ roomId: room!.id, name: "after" })).room;
    expect(renamed).toMatchObject({ name: "after", description: "desc", metadata: { a: 1 } });
    const described = (await ann.updateRoom({ roomId: room!.id, description: "" })).room;
    expect(described).toMatchObject({ name: "after", description: "", metadata: { a: 1 } });
    const tagged = (await ann.updateRoom({ roomId: room!.id, metadata: { b: [true] } })).room;
    expect(tagged).toMatchObject({ name: "after", description: "" });
    expect(tagged?.metadata).toEqual({ b: [true] });
    expect((await t.as("up-ann").getRoom({ roomId: room!.id })).room).toEqual(tagged);
    expect(tagged!.lastSeq).toBe(4n);
    expect(Number(tagged!.updatedAt!.seconds)).toBeGreaterThanOrEqual(Number(room!.updatedAt!.seconds));
  });

  it("writes ROOM_UPDATED with the names of the changed fields", async () => {
    const ann = t.as("ue-ann");
    const room = await createGroup(ann, "ue", ["ue-ben"]);
    await ann.updateRoom({ roomId: room.id, name: "ue2", description: "d" });
    const event = await lastSystemEvent(t.as("ue-ben"), room.id, SystemEventKind.ROOM_UPDATED);
    expect(event).toMatchObject({ actorId: "ue-ann", fields: ["name", "description"] });
    await ann.updateRoom({ roomId: room.id, metadata: {} });
    expect((await lastSystemEvent(ann, room.id, SystemEventKind.ROOM_UPDATED)).fields).toEqual(["metadata"]);
  });

  it("refuses a call that sets nothing", async () => {
    const room = await createGroup(t.as("un-ann"), "un");
    const err = await failsWith(t.as("un-ann").updateRoom({ roomId: room.id }), Code.InvalidArgument);
    expect(err.rawMessage).toMatch(/nothing to update/);
    expect(await systemEvents(t.as("un-ann"), room.id)).toHaveLength(1);
  });

  describe("validation", () => {
    let group: Room;
    let channel: Room;
    beforeAll(async () => {
      group = await createGroup(t.as("uv-ann"), "uv group");
      channel = await createChannel(t.as("uv-ann"), "uv channel");
    });

    it.each([
      ["a name over 200 bytes", { name: "n".repeat(201) }, "name"],
      ["a name with a tab", { name: "a\tb" }, "name"],
      ["a description over 2000 bytes", { description: "d".repeat(2001) }, "description"],
      ["metadata over 64 KiB", { metadata: { blob: "x".repeat(64 * 1024) } }, "metadata"],
    ])("refuses %s", async (_, change, field) => {
      const before = await rowCounts(t.db);
      await failsWith(t.as("uv-ann").updateRoom({ roomId: group.id, ...change }), Code.InvalidArgument, field);
      expect(await rowCounts(t.db)).toEqual(before);
      expect((await t.as("uv-ann").getRoom({ roomId: group.id })).room).toEqual(group);
    });

    it("refuses to clear a channel's name but lets a group go without one", async () => {
      await failsWith(t.as("uv-ann").updateRoom({ roomId: channel.id, name: "" }), Code.InvalidArgument, "name");
      expect((await t.as("uv-ann").getRoom({ roomId: channel.id })).room).toEqual(channel);
      expect((await t.as("uv-ann").updateRoom({ roomId: group.id, name: "" })).room?.name).toBe("");
    });

    it("refuses a malformed room id and hides other people's rooms", async () => {
      await failsWith(t.as("uv-ann").updateRoom({ roomId: "not-a-uuid", name: "x" }), Code.InvalidArgument, "room_id");
      await failsWith(t.as("uv-eve").updateRoom({ roomId: group.id, name: "x" }), Code.NotFound);
      await failsWith(t.as("uv-eve").updateRoom({ roomId: channel.id, name: "x" }), Code.PermissionDenied);
      expect((await t.as("uv-ann").getRoom({ roomId: channel.id })).room).toEqual(channel);
    });
  });
});
