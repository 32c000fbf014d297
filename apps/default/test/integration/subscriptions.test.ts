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
  sendText,
} from "./room-helpers.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const memberCount = async (owner: string, roomId: string) => (await t.as(owner).getRoom({ roomId })).room?.memberCount;
const lastSeq = async (owner: string, roomId: string) => (await t.as(owner).getRoom({ roomId })).room?.lastSeq;

describe("AddRoomSubscriptions", () => {
  it("adds members, as member unless a role is given", async () => {
    const room = await createGroup(t.as("ad-own"), "ad");
    const { subscriptions } = await t.as("ad-own").addRoomSubscriptions({
      roomId: room.id,
      members: [
        { profileId: "ad-m" },
        { profileId: "ad-mod", role: "moderator" },
        { profileId: "ad-g", role: "guest", contactId: "g@example.com", profileName: "Gus" },
      ],
    });
    expect(subscriptions.map((s) => [s.member?.profileId, s.role, s.state])).toEqual([
      ["ad-m", "member", "active"],
      ["ad-mod", "moderator", "active"],
      ["ad-g", "guest", "active"],
    ]);
    expect(subscriptions[2]?.member).toMatchObject({ contactId: "g@example.com", profileName: "Gus" });
    expect(await roles(t.as("ad-g"), room.id)).toEqual({
      "ad-own": "owner",
      "ad-m": "member",
      "ad-mod": "moderator",
      "ad-g": "guest",
    });
    expect(await memberCount("ad-own", room.id)).toBe(4);
    const event = await lastSystemEvent(t.as("ad-m"), room.id, SystemEventKind.MEMBERS_ADDED);
    expect(event).toMatchObject({ actorId: "ad-own", profileIds: ["ad-m", "ad-mod", "ad-g"], role: "" });
    await t.as("ad-own").addRoomSubscriptions({ roomId: room.id, members: [{ profileId: "ad-m2" }] });
    expect(await lastSystemEvent(t.as("ad-m2"), room.id, SystemEventKind.MEMBERS_ADDED)).toMatchObject({
      profileIds: ["ad-m2"],
      role: "member",
    });
  });

  it("leaves members who are already in the room as they are", async () => {
    const room = await roomWithRoles(t.as("ae-own"), { "ae-m": "member" });
    const seq = await lastSeq("ae-own", room.id);
    const { subscriptions } = await t.as("ae-own").addRoomSubscriptions({
      roomId: room.id,
      members: [
        { profileId: "ae-m", role: "admin" },
        { profileId: "ae-own", role: "guest" },
      ],
    });
    expect(subscriptions.map((s) => s.role)).toEqual(["member", "owner"]);
    expect(await roles(t.as("ae-own"), room.id)).toEqual({ "ae-own": "owner", "ae-m": "member" });
    expect(await lastSeq("ae-own", room.id)).toBe(seq);
    expect(await memberCount("ae-own", room.id)).toBe(2);

    await t
      .as("ae-own")
      .addRoomSubscriptions({ roomId: room.id, members: [{ profileId: "ae-m" }, { profileId: "ae-n" }] });
    expect(await memberCount("ae-own", room.id)).toBe(3);
    expect((await lastSystemEvent(t.as("ae-own"), room.id, SystemEventKind.MEMBERS_ADDED)).profileIds).toEqual([
      "ae-n",
    ]);
  });

  it("re-adds a removed member with the new role", async () => {
    const room = await roomWithRoles(t.as("ar-own"), { "ar-m": "moderator" });
    await t.as("ar-own").removeRoomSubscriptions({ roomId: room.id, profileIds: ["ar-m"] });
    expect(await memberCount("ar-own", room.id)).toBe(1);
    await failsWith(t.as("ar-m").getHistory({ roomId: room.id }), Code.NotFound);
    const seq = await lastSeq("ar-own", room.id);
    const { subscriptions } = await t.as("ar-own").addRoomSubscriptions({
      roomId: room.id,
      members: [{ profileId: "ar-m", role: "guest" }],
    });
    expect(subscriptions[0]).toMatchObject({ role: "guest", state: "active", joinedSeq: seq });
    expect(await memberCount("ar-own", room.id)).toBe(2);
    expect((await t.as("ar-m").getHistory({ roomId: room.id })).events.length).toBeGreaterThan(0);
  });

  it.each([
    ["an unknown role", [{ profileId: "av-x", role: "superuser" }], "members[0].role"],
    ["a role in capitals", [{ profileId: "av-x" }, { profileId: "av-y", role: "Admin" }], "members[1].role"],
    ["no members", [], "members"],
    ["an empty member id", [{ profileId: "" }], "members[0].profile_id"],
    ["a member id with a space", [{ profileId: "av-x" }, { profileId: "a b" }], "members[1].profile_id"],
    ["a contact id over 128 bytes", [{ profileId: "av-x", contactId: "c".repeat(129) }], "members[0].contact_id"],
    ["more than 1000 members", Array.from({ length: 1001 }, (_, i) => ({ profileId: `av-${i}` })), "members"],
  ])("refuses %s and adds nobody", async (_, members, field) => {
    const room = await createGroup(t.as("av-own"), "av");
    const before = await rowCounts(t.db);
    await failsWith(t.as("av-own").addRoomSubscriptions({ roomId: room.id, members }), Code.InvalidArgument, field);
    expect(await rowCounts(t.db)).toEqual(before);
    expect(await memberCount("av-own", room.id)).toBe(1);
  });

  it("refuses a malformed room id", async () => {
    const call = t.as("av-own").addRoomSubscriptions({ roomId: "not-a-uuid", members: [{ profileId: "x" }] });
    await failsWith(call, Code.InvalidArgument, "room_id");
  });

  it("lets nobody grant a role above their own", async () => {
    const room = await roomWithRoles(t.as("ag-own"), { "ag-adm": "admin", "ag-mod": "moderator" });
    const add = (who: string, profileId: string, role: string) =>
      t.as(who).addRoomSubscriptions({ roomId: room.id, members: [{ profileId, role }] });
    await failsWith(add("ag-adm", "ag-x", "owner"), Code.PermissionDenied);
    await failsWith(add("ag-mod", "ag-x", "admin"), Code.PermissionDenied);
    expect(await memberCount("ag-own", room.id)).toBe(3);
    expect((await add("ag-mod", "ag-x", "moderator")).subscriptions[0]?.role).toBe("moderator");
    expect((await add("ag-adm", "ag-y", "admin")).subscriptions[0]?.role).toBe("admin");
    expect((await add("ag-own", "ag-z", "owner")).subscriptions[0]?.role).toBe("owner");
  });
});

describe("joining a channel", () => {
  it("lets anyone join as member or guest", async () => {
    const channel = await createChannel(t.as("jc-own"), "jc");
    const join = (who: string, role?: string) =>
      t.as(who).addRoomSubscriptions({ roomId: channel.id, members: [{ profileId: who, ...(role ? { role } : {}) }] });
    expect((await join("jc-m")).subscriptions[0]).toMatchObject({ role: "member", state: "active" });
    expect((await join("jc-g", "guest")).subscriptions[0]?.role).toBe("guest");
    expect(await memberCount("jc-own", channel.id)).toBe(3);
    expect((await lastSystemEvent(t.as("jc-own"), channel.id, SystemEventKind.MEMBERS_ADDED)).actorId).toBe("jc-g");
    expect((await sendText(t.as("jc-m"), channel.id, "hi")).error).toBeUndefined();
    expect((await sendText(t.as("jc-g"), channel.id, "hi")).error?.code).toBe("permission_denied");
  });

  it.each(["owner", "admin", "moderator"])("refuses to let anyone join as %s", async (role) => {
    const channel = await createChannel(t.as(`jx-own-${role}`), "jx");
    const call = t
      .as(`jx-${role}`)
      .addRoomSubscriptions({ roomId: channel.id, members: [{ profileId: `jx-${role}`, role }] });
    await failsWith(call, Code.PermissionDenied);
    expect(await roles(t.as(`jx-own-${role}`), channel.id)).toEqual({ [`jx-own-${role}`]: "owner" });
  });

  it("does not let outsiders add others to a channel, or anyone into a group", async () => {
    const channel = await createChannel(t.as("jo-own"), "jo");
    const group = await createGroup(t.as("jo-own"), "jo group");
    const eve = t.as("jo-eve");
    await failsWith(
      eve.addRoomSubscriptions({ roomId: channel.id, members: [{ profileId: "jo-x" }] }),
      Code.PermissionDenied,
    );
    const both = [{ profileId: "jo-eve" }, { profileId: "jo-x" }];
    await failsWith(eve.addRoomSubscriptions({ roomId: channel.id, members: both }), Code.PermissionDenied);
    await failsWith(eve.addRoomSubscriptions({ roomId: group.id, members: [{ profileId: "jo-eve" }] }), Code.NotFound);
    expect(await memberCount("jo-own", channel.id)).toBe(1);
    expect(await memberCount("jo-own", group.id)).toBe(1);
  });

  it("lets a member leave a channel and join again", async () => {
    const channel = await createChannel(t.as("jl-own"), "jl", ["jl-m"]);
    await t.as("jl-m").removeRoomSubscriptions({ roomId: channel.id, profileIds: ["jl-m"] });
    await failsWith(t.as("jl-m").getHistory({ roomId: channel.id }), Code.PermissionDenied);
    await t.as("jl-m").addRoomSubscriptions({ roomId: channel.id, members: [{ profileId: "jl-m" }] });
    expect(await roles(t.as("jl-m"), channel.id)).toEqual({ "jl-own": "owner", "jl-m": "member" });
  });
});

describe("RemoveRoomSubscriptions", () => {
  it("lets a member leave: the room is gone for them", async () => {
    const room = await createGroup(t.as("rl-own"), "rl", ["rl-m"]);
    const res = await t.as("rl-m").removeRoomSubscriptions({ roomId: room.id, profileIds: ["rl-m"] });
    expect(res).toMatchObject({ roomId: room.id, profileIds: ["rl-m"] });
    expect(await memberCount("rl-own", room.id)).toBe(1);
    const event = await lastSystemEvent(t.as("rl-own"), room.id, SystemEventKind.MEMBERS_REMOVED);
    expect(event).toMatchObject({ actorId: "rl-m", profileIds: ["rl-m"] });
    await failsWith(t.as("rl-m").getHistory({ roomId: room.id }), Code.NotFound);
    await failsWith(t.as("rl-m").getRoom({ roomId: room.id }), Code.NotFound);
    expect((await sendText(t.as("rl-m"), room.id, "still here?")).error?.code).toBe("not_found");
  });

  it.each(["admin", "moderator", "member", "guest"] as const)("lets a %s leave", async (role) => {
    const room = await roomWithRoles(t.as(`rx-own-${role}`), { [`rx-${role}`]: role });
    const res = await t.as(`rx-${role}`).removeRoomSubscriptions({ roomId: room.id, profileIds: [`rx-${role}`] });
    expect(res.profileIds).toEqual([`rx-${role}`]);
    expect(await roles(t.as(`rx-own-${role}`), room.id)).toEqual({ [`rx-own-${role}`]: "owner" });
  });

  it("removes others only with a higher role", async () => {
    const members = {
      "rr-adm": "admin",
      "rr-adm2": "admin",
      "rr-mod": "moderator",
      "rr-mod2": "moderator",
      "rr-m": "member",
      "rr-m2": "member",
    } as const;
    const room = await roomWithRoles(t.as("rr-own"), members);
    const remove = (who: string, target: string) =>
      t.as(who).removeRoomSubscriptions({ roomId: room.id, profileIds: [target] });
    await failsWith(remove("rr-m", "rr-m2"), Code.PermissionDenied);
    await failsWith(remove("rr-mod", "rr-mod2"), Code.PermissionDenied);
    await failsWith(remove("rr-mod", "rr-adm"), Code.PermissionDenied);
    await failsWith(remove("rr-adm", "rr-adm2"), Code.PermissionDenied);
    await failsWith(remove("rr-adm", "rr-own"), Code.PermissionDenied);
    expect(Object.keys(await roles(t.as("rr-own"), room.id))).toHaveLength(7);
    expect((await remove("rr-mod", "rr-m")).profileIds).toEqual(["rr-m"]);
    expect((await remove("rr-adm", "rr-mod2")).profileIds).toEqual(["rr-mod2"]);
    expect((await remove("rr-own", "rr-adm2")).profileIds).toEqual(["rr-adm2"]);
    expect(Object.keys(await roles(t.as("rr-own"), room.id)).sort()).toEqual(["rr-adm", "rr-m2", "rr-mod", "rr-own"]);
  });

  it("refuses a whole batch when one removal is not allowed", async () => {
    const room = await roomWithRoles(t.as("rb-own"), { "rb-mod": "moderator", "rb-m": "member", "rb-adm": "admin" });
    const call = t.as("rb-mod").removeRoomSubscriptions({ roomId: room.id, profileIds: ["rb-m", "rb-adm"] });
    await failsWith(call, Code.PermissionDenied);
    expect(await memberCount("rb-own", room.id)).toBe(4);
    const mixed = t.as("rb-m").removeRoomSubscriptions({ roomId: room.id, profileIds: ["rb-m", "rb-mod"] });
    await failsWith(mixed, Code.PermissionDenied);
    expect(await roles(t.as("rb-m"), room.id)).toHaveProperty("rb-m", "member");
  });

  it("returns only the ids it removed", async () => {
    const room = await createGroup(t.as("ro-own"), "ro", ["ro-a", "ro-b"]);
    await t.as("ro-own").removeRoomSubscriptions({ roomId: room.id, profileIds: ["ro-b"] });
    const seq = await lastSeq("ro-own", room.id);
    const none = await t.as("ro-own").removeRoomSubscriptions({ roomId: room.id, profileIds: ["ro-b", "ro-nobody"] });
    expect(none.profileIds).toEqual([]);
    expect(await lastSeq("ro-own", room.id)).toBe(seq);
    const res = await t.as("ro-own").removeRoomSubscriptions({
      roomId: room.id,
      profileIds: ["ro-nobody", "ro-a", "ro-b", "ro-a"],
    });
    expect(res.profileIds).toEqual(["ro-a"]);
    expect(await memberCount("ro-own", room.id)).toBe(1);
    expect((await lastSystemEvent(t.as("ro-own"), room.id, SystemEventKind.MEMBERS_REMOVED)).profileIds).toEqual([
      "ro-a",
    ]);
  });

  it.each([
    ["no profile ids", [], "profile_ids"],
    ["an empty profile id", ["rv-m", ""], "profile_ids[1]"],
    ["a profile id with a space", ["a b"], "profile_ids[0]"],
  ])("refuses %s", async (_, profileIds, field) => {
    const room = await createGroup(t.as("rv-own"), "rv", ["rv-m"]);
    await failsWith(
      t.as("rv-own").removeRoomSubscriptions({ roomId: room.id, profileIds }),
      Code.InvalidArgument,
      field,
    );
    expect(await memberCount("rv-own", room.id)).toBe(2);
  });

  it("hides a group from outsiders and refuses outsiders of a channel", async () => {
    const group = await createGroup(t.as("rn-own"), "rn", ["rn-m"]);
    const channel = await createChannel(t.as("rn-own"), "rn", ["rn-m"]);
    await failsWith(t.as("rn-eve").removeRoomSubscriptions({ roomId: group.id, profileIds: ["rn-m"] }), Code.NotFound);
    await failsWith(
      t.as("rn-eve").removeRoomSubscriptions({ roomId: channel.id, profileIds: ["rn-m"] }),
      Code.PermissionDenied,
    );
    const bad = t.as("rn-own").removeRoomSubscriptions({ roomId: "not-a-uuid", profileIds: ["rn-m"] });
    await failsWith(bad, Code.InvalidArgument, "room_id");
    expect(await memberCount("rn-own", group.id)).toBe(2);
    expect(await memberCount("rn-own", channel.id)).toBe(2);
  });
});

describe("the last owner", () => {
  it("can neither leave nor step down until there is another owner", async () => {
    const room = await createGroup(t.as("lo-ann"), "lo", ["lo-ben"]);
    const ann = t.as("lo-ann");
    await failsWith(ann.removeRoomSubscriptions({ roomId: room.id, profileIds: ["lo-ann"] }), Code.FailedPrecondition);
    await failsWith(
      ann.updateSubscriptionRole({ roomId: room.id, profileId: "lo-ann", role: "admin" }),
      Code.FailedPrecondition,
    );
    expect(await roles(ann, room.id)).toEqual({ "lo-ann": "owner", "lo-ben": "member" });

    await ann.updateSubscriptionRole({ roomId: room.id, profileId: "lo-ben", role: "owner" });
    await ann.updateSubscriptionRole({ roomId: room.id, profileId: "lo-ann", role: "admin" });
    await ann.removeRoomSubscriptions({ roomId: room.id, profileIds: ["lo-ann"] });
    expect(await roles(t.as("lo-ben"), room.id)).toEqual({ "lo-ben": "owner" });
    const ben = t.as("lo-ben");
    await failsWith(ben.removeRoomSubscriptions({ roomId: room.id, profileIds: ["lo-ben"] }), Code.FailedPrecondition);
  });

  it("cannot be removed together with the only other owner", async () => {
    const room = await roomWithRoles(t.as("lb-ann"), { "lb-ben": "owner" });
    const both = t.as("lb-ann").removeRoomSubscriptions({ roomId: room.id, profileIds: ["lb-ann", "lb-ben"] });
    await failsWith(both, Code.FailedPrecondition);
    expect(await roles(t.as("lb-ann"), room.id)).toEqual({ "lb-ann": "owner", "lb-ben": "owner" });
    expect(
      (await t.as("lb-ann").removeRoomSubscriptions({ roomId: room.id, profileIds: ["lb-ben"] })).profileIds,
    ).toEqual(["lb-ben"]);
  });
});

describe("direct rooms", () => {
  it("refuse adding, removing and role changes", async () => {
    const { room } = await t.as("dr-ann").createRoom({ type: RoomType.DIRECT, members: [{ profileId: "dr-ben" }] });
    const ann = t.as("dr-ann");
    const roomId = room!.id;
    await failsWith(ann.addRoomSubscriptions({ roomId, members: [{ profileId: "dr-cat" }] }), Code.FailedPrecondition);
    await failsWith(ann.removeRoomSubscriptions({ roomId, profileIds: ["dr-ben"] }), Code.FailedPrecondition);
    await failsWith(ann.removeRoomSubscriptions({ roomId, profileIds: ["dr-ann"] }), Code.FailedPrecondition);
    await failsWith(
      ann.updateSubscriptionRole({ roomId, profileId: "dr-ben", role: "guest" }),
      Code.FailedPrecondition,
    );
    await failsWith(
      ann.updateSubscriptionRole({ roomId, profileId: "dr-ann", role: "owner" }),
      Code.FailedPrecondition,
    );
    expect(await roles(ann, roomId)).toEqual({ "dr-ann": "owner", "dr-ben": "owner" });
    expect(await lastSeq("dr-ann", roomId)).toBe(1n);
  });
});
