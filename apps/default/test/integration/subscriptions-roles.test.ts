import { Code } from "@connectrpc/connect";
import { RoomType, SystemEventKind } from "@service-chat/api";
import { startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createChannel,
  createGroup,
  failsWith,
  lastSystemEvent,
  roles,
  roomWithRoles,
  rowCounts,
} from "./room-helpers.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("UpdateSubscriptionRole", () => {
  it("changes a role and writes ROLE_CHANGED", async () => {
    const room = await createGroup(t.as("rc-own"), "rc", ["rc-m"]);
    const { subscription } = await t
      .as("rc-own")
      .updateSubscriptionRole({ roomId: room.id, profileId: "rc-m", role: "admin" });
    expect(subscription).toMatchObject({
      roomId: room.id,
      role: "admin",
      state: "active",
      member: { profileId: "rc-m" },
    });
    expect(await roles(t.as("rc-m"), room.id)).toEqual({ "rc-own": "owner", "rc-m": "admin" });
    const event = await lastSystemEvent(t.as("rc-m"), room.id, SystemEventKind.ROLE_CHANGED);
    expect(event).toMatchObject({ actorId: "rc-own", profileIds: ["rc-m"], role: "admin" });
  });

  it("writes nothing when the role stays the same", async () => {
    const room = await createGroup(t.as("rs-own"), "rs", ["rs-m"]);
    const { subscription } = await t
      .as("rs-own")
      .updateSubscriptionRole({ roomId: room.id, profileId: "rs-m", role: "member" });
    expect(subscription?.role).toBe("member");
    expect((await t.as("rs-own").getRoom({ roomId: room.id })).room?.lastSeq).toBe(room.lastSeq);
  });

  it("lets nobody grant a role above their own", async () => {
    const room = await roomWithRoles(t.as("rg-own"), { "rg-adm": "admin", "rg-m": "member" });
    const adm = t.as("rg-adm");
    await failsWith(
      adm.updateSubscriptionRole({ roomId: room.id, profileId: "rg-m", role: "owner" }),
      Code.PermissionDenied,
    );
    await failsWith(
      adm.updateSubscriptionRole({ roomId: room.id, profileId: "rg-adm", role: "owner" }),
      Code.PermissionDenied,
    );
    expect(await roles(adm, room.id)).toEqual({ "rg-own": "owner", "rg-adm": "admin", "rg-m": "member" });
    await adm.updateSubscriptionRole({ roomId: room.id, profileId: "rg-m", role: "admin" });
    expect((await roles(adm, room.id))["rg-m"]).toBe("admin");
  });

  it("does not let an admin change another admin or an owner", async () => {
    const room = await roomWithRoles(t.as("ra-own"), { "ra-adm": "admin", "ra-adm2": "admin", "ra-mod": "moderator" });
    const adm = t.as("ra-adm");
    const change = (profileId: string, role: string) =>
      adm.updateSubscriptionRole({ roomId: room.id, profileId, role });
    await failsWith(change("ra-adm2", "member"), Code.PermissionDenied);
    await failsWith(change("ra-own", "member"), Code.PermissionDenied);
    await change("ra-mod", "guest");
    await change("ra-adm", "member");
    expect(await roles(t.as("ra-own"), room.id)).toEqual({
      "ra-own": "owner",
      "ra-adm": "member",
      "ra-adm2": "admin",
      "ra-mod": "guest",
    });
  });

  it("lets an owner change another owner", async () => {
    const room = await roomWithRoles(t.as("ro-ann"), { "ro-ben": "owner" });
    await t.as("ro-ben").updateSubscriptionRole({ roomId: room.id, profileId: "ro-ann", role: "guest" });
    expect(await roles(t.as("ro-ben"), room.id)).toEqual({ "ro-ann": "guest", "ro-ben": "owner" });
  });

  it.each([
    ["an unknown role", { profileId: "rv-m", role: "superuser" }, "role"],
    ["an empty role", { profileId: "rv-m", role: "" }, "role"],
    ["an empty profile id", { profileId: "", role: "guest" }, "profile_id"],
  ])("refuses %s", async (_, request, field) => {
    const room = await createGroup(t.as("rv-own"), "rv", ["rv-m"]);
    const before = await rowCounts(t.db);
    await failsWith(
      t.as("rv-own").updateSubscriptionRole({ roomId: room.id, ...request }),
      Code.InvalidArgument,
      field,
    );
    expect(await rowCounts(t.db)).toEqual(before);
    expect(await roles(t.as("rv-own"), room.id)).toEqual({ "rv-own": "owner", "rv-m": "member" });
  });

  it("answers NotFound for people who are not members and for hidden rooms", async () => {
    const room = await createGroup(t.as("rn-own"), "rn", ["rn-gone"]);
    await t.as("rn-own").removeRoomSubscriptions({ roomId: room.id, profileIds: ["rn-gone"] });
    const own = t.as("rn-own");
    await failsWith(
      own.updateSubscriptionRole({ roomId: room.id, profileId: "rn-never", role: "admin" }),
      Code.NotFound,
    );
    await failsWith(
      own.updateSubscriptionRole({ roomId: room.id, profileId: "rn-gone", role: "admin" }),
      Code.NotFound,
    );
    const eve = t.as("rn-eve").updateSubscriptionRole({ roomId: room.id, profileId: "rn-eve", role: "owner" });
    await failsWith(eve, Code.NotFound);
    const bad = own.updateSubscriptionRole({ roomId: "not-a-uuid", profileId: "rn-own", role: "owner" });
    await failsWith(bad, Code.InvalidArgument, "room_id");
    expect(await roles(own, room.id)).toEqual({ "rn-own": "owner" });
  });
});

describe("SearchRoomSubscriptions", () => {
  it("lists active members only, by profile id", async () => {
    const room = await createGroup(t.as("sm-c"), "sm", ["sm-a", "sm-e", "sm-b", "sm-d"]);
    await t.as("sm-c").removeRoomSubscriptions({ roomId: room.id, profileIds: ["sm-d"] });
    const { subscriptions, nextCursor } = await t.as("sm-a").searchRoomSubscriptions({ roomId: room.id });
    expect(subscriptions.map((s) => s.member?.profileId)).toEqual(["sm-a", "sm-b", "sm-c", "sm-e"]);
    expect(subscriptions.every((s) => s.state === "active" && s.roomId === room.id)).toBe(true);
    expect(nextCursor).toBe("");
  });

  it("matches the query against profile id, contact id and name", async () => {
    const owner = t.as("sq-own", "connect", { contact_id: "owner@corp.example" });
    const room = await owner.createRoom({
      name: "sq",
      type: RoomType.GROUP,
      members: [
        { profileId: "sq-ann", contactId: "ann@home.example", profileName: "Ann Smith" },
        { profileId: "sq-ben", contactId: "+4912345", profileName: "Ben 100%" },
        { profileId: "sq-cat", profileName: "Cat Smithers" },
      ],
    });
    const roomId = room.room!.id;
    const find = async (query: string) =>
      (await owner.searchRoomSubscriptions({ roomId, query })).subscriptions.map((s) => s.member?.profileId);
    expect(await find("SMITH")).toEqual(["sq-ann", "sq-cat"]);
    expect(await find("corp.example")).toEqual(["sq-own"]);
    expect(await find("+49")).toEqual(["sq-ben"]);
    expect(await find("sq-c")).toEqual(["sq-cat"]);
    expect(await find("100%")).toEqual(["sq-ben"]);
    expect(await find("sq_")).toEqual([]);
    expect(await find("nobody")).toEqual([]);
  });

  it("pages through members without duplicates or gaps", async () => {
    const others = Array.from({ length: 10 }, (_, i) => `sp-${String(i).padStart(2, "0")}`);
    const room = await createGroup(t.as("sp-own"), "sp", others);
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor = "";
    do {
      const page = await t.as("sp-03").searchRoomSubscriptions({ roomId: room.id, cursor, limit: 4 });
      seen.push(...page.subscriptions.map((s) => s.member?.profileId ?? ""));
      sizes.push(page.subscriptions.length);
      cursor = page.nextCursor;
    } while (cursor);
    expect(sizes).toEqual([4, 4, 3]);
    expect(seen).toEqual([...others, "sp-own"]);
  });

  it("lists a channel's members to anyone but hides a group's", async () => {
    const channel = await createChannel(t.as("sv-own"), "sv", ["sv-m"]);
    const group = await createGroup(t.as("sv-own"), "sv", ["sv-m"]);
    expect((await t.as("sv-eve").searchRoomSubscriptions({ roomId: channel.id })).subscriptions).toHaveLength(2);
    await failsWith(t.as("sv-eve").searchRoomSubscriptions({ roomId: group.id }), Code.NotFound);
  });

  it.each([
    ["limit 101", { limit: 101 }, "limit"],
    ["a forged cursor", { cursor: "not-a-cursor" }, "cursor"],
    ["a cursor without a profile id", { cursor: cursorOf({ v: 1, id: "x" }) }, "cursor"],
    ["a query over 200 bytes", { query: "q".repeat(201) }, "query"],
  ])("refuses %s", async (_, request, field) => {
    const room = await createGroup(t.as("sx-own"), "sx");
    await failsWith(
      t.as("sx-own").searchRoomSubscriptions({ roomId: room.id, ...request }),
      Code.InvalidArgument,
      field,
    );
  });

  it("refuses a malformed room id and takes limit 0 as the default", async () => {
    await failsWith(t.as("sx-own").searchRoomSubscriptions({ roomId: "not-a-uuid" }), Code.InvalidArgument, "room_id");
    const room = await createGroup(t.as("sx-own"), "sx", ["sx-m"]);
    expect((await t.as("sx-own").searchRoomSubscriptions({ roomId: room.id, limit: 0 })).subscriptions).toHaveLength(2);
  });
});
