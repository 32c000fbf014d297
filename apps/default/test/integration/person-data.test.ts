import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { toJsonString } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { RoomEventSchema, RoomEventType, RoomType, SystemEventKind } from "@service-chat/api";
import {
  edit,
  failsWith,
  fullHistory,
  groupRoom,
  react,
  searchIds,
  sendOk,
  startTestApp,
  type TestApp,
  text,
  until,
  wsDevice,
} from "@service-chat/testing";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { roles, roomWithRoles } from "./room-helpers.js";

// ErasePerson and ExportPerson through the real service: what a person leaves behind is checked
// on every read path (history, search, Sync, a device's replay over the gateway, push dead letters,
// the export itself).

/** A push provider that is down: every notification becomes a dead letter at once. */
const hook = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => res.writeHead(503).end());
});

let t: TestApp;
beforeAll(async () => {
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", () => r()));
  t = await startTestApp({
    QUEUE_USER_EVENT_DELIVERY_NAME: `e${randomBytes(4).toString("hex")}`,
    ADMIN_PROFILE_IDS: "root",
    PUSH_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/push`,
    PUSH_WEBHOOK_SECRET: "webhook-secret-for-tests",
    PUSH_MAX_ATTEMPTS: "1",
    RETENTION_INTERVAL_MS: "100",
  });
});
afterAll(async () => {
  await t.stop();
  await new Promise<void>((r) => hook.close(() => r()));
});

/** The whole export as parsed lines. */
async function exportOf(as: string, profileId: string): Promise<Record<string, any>[]> {
  const lines: Record<string, any>[] = [];
  for await (const page of t.adminAs(as).exportPerson({ profileId }))
    lines.push(...page.lines.map((l) => JSON.parse(l)));
  return lines;
}

const SECRET = /secret|zed\.png|zed@example\.com|zed-push-token/;
const json = (events: Parameters<typeof toJsonString<typeof RoomEventSchema>>[1][]) =>
  events.map((e) => toJsonString(RoomEventSchema, e)).join("\n");

async function deadLetters() {
  const { deadLetters } = await t.adminAs("root").listPushDeadLetters({ limit: 100 });
  return deadLetters;
}

describe("a person's data", () => {
  it("erases a person: tombstones, memberships as system events, a closed direct room, nothing readable on any path; export before and after", async () => {
    const zed = t.as("zed", "connect", { contact_id: "zed@example.com" });
    const ann = t.as("ann");
    const group = await groupRoom(t, "ann", "ben", "zed");
    const direct = (await zed.createRoom({ type: RoomType.DIRECT, members: [{ profileId: "ann" }] })).room
      ?.id as string;
    const plan = await sendOk(zed, text(group, "zed secret plan alpha", { clientId: "z1" }));
    await sendOk(zed, edit(group, plan.eventId, "zed secret plan beta"));
    const { eventId: annMessage } = await sendOk(ann, text(group, "hello all"));
    await sendOk(zed, react(group, annMessage));
    await sendOk(zed, {
      roomId: group,
      type: RoomEventType.ATTACHMENT,
      content: {
        case: "attachment",
        value: { uri: "https://files.example/zed.png", mimeType: "image/png", filename: "zed.png" },
      },
    });
    await sendOk(ann, text(group, "a reply to zed", { parentId: plan.eventId }));
    await sendOk(zed, text(direct, "zed secret for ann only"));
    await zed.ackEvents({ deviceId: "zed-phone", acks: [{ roomId: group, seq: 3n }] });
    await t.db
      .insertInto("devices")
      .values({ profile_id: "zed", device_id: "zed-phone", push: JSON.stringify({ token: "zed-push-token" }) })
      .execute();
    await t.app.registry.register(
      {
        connectionId: "zc",
        profileId: "zed",
        deviceId: "zed-phone",
        gatewayId: "g",
        connectedAt: 1,
        lastHeartbeat: Date.now(),
      },
      60_000,
    );
    // Push failed for everything: dead letters of zed's messages, and of ann's addressed to zed.
    await until("the dead letters", async () => {
      const all = await deadLetters();
      return all.some((d) => d.eventId === plan.eventId) && all.some((d) => d.recipients.includes("zed"));
    });

    // The export before: everything about zed, zed's own content included; admins or zed only.
    await failsWith(
      t.adminAs("ben").exportPerson({ profileId: "zed" })[Symbol.asyncIterator]().next(),
      Code.PermissionDenied,
    );
    const before = await exportOf("zed", "zed");
    expect(before[0]).toMatchObject({ kind: "export", format: "service-chat.person-export.v1", profileId: "zed" });
    expect(before.at(-1)?.kind).toBe("end");
    const kinds = (lines: Record<string, any>[], kind: string) => lines.filter((l) => l.kind === kind);
    expect(
      kinds(before, "membership")
        .map((m) => m.roomId)
        .sort(),
    ).toEqual([group, direct].sort());
    expect(kinds(before, "event")).toHaveLength(6); // creation of the direct room, the text, its edit, the reaction, the attachment, the direct text
    expect(JSON.stringify(before)).toMatch(/zed secret plan beta/);
    expect(kinds(before, "device")).toMatchObject([{ deviceId: "zed-phone", push: { token: "zed-push-token" } }]);
    expect(kinds(before, "cursor")).toMatchObject([{ deviceId: "zed-phone", roomId: group, deliveredSeq: 3 }]);
    expect(kinds(before, "push_dead_letter").length).toBeGreaterThan(0);
    expect(kinds(before, "presence")).toHaveLength(1);

    // What the checks below look for is there before the erasure.
    expect(json(await fullHistory(ann, group))).toMatch(SECRET);
    expect(await searchIds(ann, "beta")).toHaveLength(1);

    // Only admins erase.
    await failsWith(t.adminAs("zed").erasePerson({ profileId: "zed" }), Code.PermissionDenied);
    await failsWith(t.adminAs("root").erasePerson({ profileId: "" }), Code.InvalidArgument, "profile_id");
    const done = await t.adminAs("root").erasePerson({ profileId: "zed" });
    expect(done).toMatchObject({ eventsRedacted: 5n, roomsLeft: 2, directRoomsClosed: 1 });
    expect(done.completedAt).toBeDefined();

    // History: zed's events are tombstones in place, seqs dense, the reply still points at its parent.
    const history = await fullHistory(ann, group);
    expect(history.map((e) => Number(e.seq))).toEqual(history.map((_, i) => i + 1));
    const zeds = history.filter((e) => e.source?.profileId === "zed");
    expect(zeds).toHaveLength(4);
    for (const e of zeds) expect(e).toMatchObject({ redacted: true, clientId: "" });
    expect(zeds.every((e) => e.source?.contactId === "")).toBe(true);
    expect(history.find((e) => e.parentId === plan.eventId)).toBeDefined();
    const removal = history.at(-1);
    expect(removal?.content).toMatchObject({
      case: "system",
      value: { kind: SystemEventKind.MEMBERS_REMOVED, actorId: "root", profileIds: ["zed"] },
    });
    expect(json(history)).not.toMatch(SECRET);
    // The direct room is closed for ann; its last event says so.
    await failsWith(ann.getRoom({ roomId: direct }), Code.NotFound);
    const closing = await t.db
      .selectFrom("room_events")
      .select(["type", "content"])
      .where("room_id", "=", direct)
      .orderBy("seq", "desc")
      .executeTakeFirstOrThrow();
    expect(closing.content).toMatchObject({ kind: "SYSTEM_EVENT_KIND_ROOM_DELETED" });

    // Search, Sync and a device's replay over the gateway: nothing of zed's content.
    expect(await searchIds(ann, "secret")).toEqual([]);
    expect(await searchIds(ann, "alpha")).toEqual([]);
    expect(await searchIds(ann, "beta")).toEqual([]);
    const sync = await t.as("ben").sync({ deviceId: "ben-new", cursors: [{ roomId: group, seq: 0n }] });
    expect(sync.events.length).toBeGreaterThan(0);
    expect(json(sync.events)).not.toMatch(SECRET);
    const token = await t.signer.sign({ sub: "ben", device_id: "ben-tablet" });
    const device = await wsDevice(t.httpUrl, {
      case: "hello",
      value: { token, cursors: [{ roomId: group, seq: 0n }] },
    });
    await device.waitFor((f) => f.frame.case === "synced");
    expect(device.events(group).map((e) => Number(e.seq))).toEqual(history.map((e) => Number(e.seq)));
    expect(json(device.events(group))).not.toMatch(SECRET);
    device.close();

    // Push: no dead letter of zed's events, none addressed to zed.
    const letters = await deadLetters();
    expect(letters.some((d) => d.eventId === plan.eventId)).toBe(false);
    expect(letters.some((d) => d.recipients.includes("zed"))).toBe(false);

    // Rows and registry entries that were zed's are gone.
    for (const table of ["room_subscriptions", "device_cursors", "devices"] as const) {
      const row = await t.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<string>().as("n"))
        .where("profile_id", "=", "zed")
        .executeTakeFirstOrThrow();
      expect(Number(row.n), table).toBe(0);
    }
    expect(await t.app.registry.lastSeen(["zed"])).toEqual(new Map());
    expect(await t.app.registry.online(["zed"])).toEqual(new Set());

    // The export after: the record of the erasure and the tombstones, nothing else.
    const after = await exportOf("root", "zed");
    expect(JSON.stringify(after)).not.toMatch(SECRET);
    expect(kinds(after, "erasure")).toHaveLength(1);
    expect(kinds(after, "membership")).toEqual([]);
    expect(kinds(after, "device")).toEqual([]);

    // The audit log has the request, the removal from the group (as the erasure's), the closed
    // direct room and the completion with its counts.
    const audit = (await t.adminAs("root").listAuditLog({ actorId: "root", limit: 100 })).entries;
    const entry = (action: string, roomId = "") => audit.find((e) => e.action === action && e.roomId === roomId);
    expect(entry("person.erasure_requested")?.targets).toEqual(["zed"]);
    expect(JSON.parse(entry("person.erased")?.detailsJson ?? "{}")).toEqual({
      eventsRedacted: 5,
      roomsLeft: 2,
      directRoomsClosed: 1,
    });
    expect(entry("members.removed", group)).toMatchObject({ targets: ["zed"], detailsJson: '{"erasureOf":"zed"}' });
    expect(entry("room.deleted", direct)).toBeDefined();

    // Idempotent: again, nothing left to do, the same record.
    const again = await t.adminAs("root").erasePerson({ profileId: "zed" });
    expect(again).toMatchObject({
      eventsRedacted: 0n,
      roomsLeft: 0,
      directRoomsClosed: 0,
      requestedAt: done.requestedAt,
    });
  });

  it("gives a room whose last owner is erased a new owner: the highest role, then the longest in", async () => {
    const room = await roomWithRoles(t.as("oli"), { pam: "member", quinn: "admin", rex: "admin" });
    const alsoOwned = await roomWithRoles(t.as("oli"), { pam: "owner" });
    await t.adminAs("root").erasePerson({ profileId: "oli" });
    expect(await roles(t.as("pam"), room.id)).toEqual({ pam: "member", quinn: "owner", rex: "admin" });
    const last = (await fullHistory(t.as("pam"), room.id)).slice(-2).map((e) => e.content.value);
    expect(last).toMatchObject([
      { kind: SystemEventKind.MEMBERS_REMOVED, profileIds: ["oli"] },
      { kind: SystemEventKind.ROLE_CHANGED, profileIds: ["quinn"], role: "owner" },
    ]);
    // Another owner remains: nobody is promoted.
    expect(await roles(t.as("pam"), alsoOwned.id)).toEqual({ pam: "owner" });
  });

  it("finishes an erasure that stopped half way by itself, keeping the first request's record", async () => {
    const group = await groupRoom(t, "kim", "yan");
    for (let i = 0; i < 4; i++) await sendOk(t.as("yan"), text(group, `yan secret ${i}`));
    // As a process that stopped mid-erasure leaves it: the record made, two events emptied, the
    // membership still there. Nobody calls ErasePerson again: the recovery (role relay) finishes it.
    await t.db.transaction().execute(async (tx) => {
      await tx
        .insertInto("erasures")
        .values({ profile_id: "yan", requested_by: "root", requested_at: new Date("2026-01-02T03:04:05Z") })
        .execute();
      await sql`update room_events set content = '{}', redacted = true, search = null, client_id = null
        where room_id = ${group} and sender_id = 'yan' and seq <= 3`.execute(tx);
    });
    const record = await until("the erasure completed", async () => {
      const row = await t.db.selectFrom("erasures").selectAll().where("profile_id", "=", "yan").executeTakeFirst();
      return row?.completed_at ? row : undefined;
    });
    expect(record).toMatchObject({ requested_by: "root", events_redacted: 2, rooms_left: 1 });
    const history = await fullHistory(t.as("kim"), group);
    expect(json(history)).not.toMatch(/secret/);
    expect(history.filter((e) => e.source?.profileId === "yan").every((e) => e.redacted)).toBe(true);
    expect(await roles(t.as("kim"), group)).toEqual({ kim: "owner" });
    // Called again, it finds nothing to do and shows the first request's time.
    const again = await t.adminAs("root").erasePerson({ profileId: "yan" });
    expect(again).toMatchObject({ eventsRedacted: 0n, roomsLeft: 0 });
    expect(again.requestedAt?.seconds).toBe(BigInt(Date.parse("2026-01-02T03:04:05Z") / 1000));
  });
});
