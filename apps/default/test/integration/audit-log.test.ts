import { Code } from "@connectrpc/connect";
import { RoomType } from "@service-chat/api";
import { failsWith, startTestApp, type TestApp } from "@service-chat/testing";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ADMIN_PROFILE_IDS: "audit-root" });
});
afterAll(() => t.stop());

const admin = () => t.adminAs("audit-root");

describe("the audit log", () => {
  it("records room and membership changes with actor, targets and the request id, newest first", async () => {
    const alice = t.as("audit-alice");
    let echoed = "";
    const { room } = await alice.createRoom(
      { name: "audited", type: RoomType.GROUP, members: [{ profileId: "audit-bob" }] },
      { headers: { "x-request-id": "req-create-1" }, onHeader: (h) => (echoed = h.get("x-request-id") ?? "") },
    );
    expect(echoed).toBe("req-create-1");
    const roomId = room?.id as string;
    await alice.addRoomSubscriptions({ roomId, members: [{ profileId: "audit-carol" }] });
    await alice.updateSubscriptionRole({ roomId, profileId: "audit-bob", role: "admin" });
    await alice.removeRoomSubscriptions({ roomId, profileIds: ["audit-carol"] });
    await alice.updateRoom({ roomId, name: "audited, renamed" });
    await alice.deleteRoom({ roomId });

    const { entries } = await admin().listAuditLog({ roomId });
    expect(entries.map((e) => [e.action, e.actorId, e.targets])).toEqual([
      ["room.deleted", "audit-alice", []],
      ["room.updated", "audit-alice", []],
      ["members.removed", "audit-alice", ["audit-carol"]],
      ["member.role_changed", "audit-alice", ["audit-bob"]],
      ["members.added", "audit-alice", ["audit-carol"]],
      ["room.created", "audit-alice", ["audit-bob"]],
    ]);
    const created = entries.at(-1);
    expect(created?.requestId).toBe("req-create-1");
    expect(JSON.parse(entries[3]?.detailsJson ?? "")).toEqual({ role: "admin", previous: "member" });
    expect(entries[0]?.createdAt).toBeDefined();
    // Every other call got a generated request id.
    expect(entries.slice(0, -1).every((e) => e.requestId.length >= 8 && e.requestId !== "req-create-1")).toBe(true);
  });

  it("pages with a cursor and filters by actor and action", async () => {
    const dana = t.as("audit-dana");
    for (const name of ["p1", "p2", "p3"]) {
      await dana.createRoom({ name, type: RoomType.GROUP, members: [{ profileId: "audit-bob" }] });
    }
    const first = await admin().listAuditLog({ actorId: "audit-dana", limit: 2 });
    expect(first.entries).toHaveLength(2);
    expect(first.nextCursor).not.toBe("");
    const second = await admin().listAuditLog({ actorId: "audit-dana", limit: 2, cursor: first.nextCursor });
    expect(second.entries).toHaveLength(1);
    expect(second.nextCursor).toBe("");
    const ids = [...first.entries, ...second.entries].map((e) => e.id);
    expect(new Set(ids).size).toBe(3);
    expect(ids).toEqual([...ids].sort().reverse());

    const byAction = await admin().listAuditLog({ action: "room.created", actorId: "audit-dana" });
    expect(byAction.entries).toHaveLength(3);
    expect((await admin().listAuditLog({ action: "room.deleted", actorId: "audit-dana" })).entries).toHaveLength(0);
  });

  it("is for admins only and refuses bad filters by name", async () => {
    await failsWith(t.adminAs("audit-alice").listAuditLog({}), Code.PermissionDenied);
    await failsWith(admin().listAuditLog({ roomId: "not-an-id" }), Code.InvalidArgument, "room_id");
    await failsWith(admin().listAuditLog({ action: "DROP TABLE" }), Code.InvalidArgument, "action");
    await failsWith(admin().listAuditLog({ limit: 1000 }), Code.InvalidArgument, "limit");
  });

  it("keeps its rows immutable in the database", async () => {
    await expect(sql`update audit_log set actor_id = 'someone-else'`.execute(t.db)).rejects.toThrow(/immutable/);
    await expect(sql`delete from audit_log`.execute(t.db)).rejects.toThrow(/immutable/);
    const { entries } = await admin().listAuditLog({ actorId: "audit-alice" });
    expect(entries.length).toBeGreaterThan(0);
  });
});
