import type { RoomMember, RoomSubscription } from "@service-chat/api";
import {
  checkCount,
  checkId,
  checkLimit,
  checkProfileId,
  decodeCursor,
  denied,
  encodeCursor,
  type Identity,
  invalid,
  notFound,
  precondition,
} from "@service-chat/core";
import { sql } from "kysely";
import { viewRoom } from "../authz/access.js";
import { assertCan, isRole, mayGrant, outranks, ROLES } from "../authz/permissions.js";
import type { Role, RoomRow, SubscriptionRow } from "../db/schema.js";
import type { Page } from "../events/event-service.js";
import { appendEvents, type Db, lockOrNotFound, type Tx } from "../events/store.js";
import { SystemEventKind, systemEvent } from "../events/system.js";
import { checkMembers, checkName, likePattern, MAX_MEMBERS_PER_CALL } from "../rooms/validate.js";
import { presentSubscription } from "./present.js";

export interface MemberSearch {
  roomId: string;
  query: string;
  cursor: string;
  limit: number;
}

const LAST_OWNER = "the room's last owner cannot leave or step down; make another member owner first";

/** Memberships: add (and re-add), remove (and leave), change roles, list. */
export class SubscriptionService {
  constructor(private readonly db: Db) {}

  /**
   * Adds members, or re-adds removed ones; members already in the room stay as they are. Anyone may
   * join a public channel by adding themselves as member or guest.
   */
  async add(caller: Identity, roomId: string, members: RoomMember[]): Promise<RoomSubscription[]> {
    checkId("room_id", roomId);
    checkCount("members", members.length, MAX_MEMBERS_PER_CALL, 1);
    const roles = new Map<string, Role>();
    members.forEach((m, i) => {
      const role = m.role === "" ? "member" : m.role;
      if (!isRole(role)) throw invalid(`members[${i}].role`, `must be one of ${ROLES.join(", ")}`);
      roles.set(m.profileId, role);
    });
    const wanted = checkMembers("members", members, "");
    return this.db.transaction().execute(async (trx) => {
      const room = await lockOrNotFound(trx, roomId);
      const { sub } = await viewRoom(trx, roomId, caller.profileId, room);
      noDirect(room);
      const selfJoin =
        !sub && room.type === "channel" && wanted.length === 1 && wanted[0]?.profileId === caller.profileId;
      if (selfJoin) {
        if (!["member", "guest"].includes(roles.get(caller.profileId) as Role)) {
          throw denied("members[0].role: you can join a channel as member or guest");
        }
      } else {
        if (!sub) throw denied("you are not a member of this channel; join it first");
        assertCan(sub.role, "member.add");
        members.forEach((m, i) => {
          if (!mayGrant(sub.role, roles.get(m.profileId) as Role)) {
            throw denied(`members[${i}].role: you cannot grant a role above your own`);
          }
        });
      }
      const current = await subscriptions(
        trx,
        roomId,
        wanted.map((m) => m.profileId),
      );
      const joining = wanted.filter((m) => current.get(m.profileId)?.state !== "active");
      if (joining.length > 0) {
        const rows = await trx
          .insertInto("room_subscriptions")
          .values(
            joining.map((m) => ({
              room_id: roomId,
              profile_id: m.profileId,
              contact_id: m.contactId || (m.profileId === caller.profileId ? caller.contactId : ""),
              profile_name: m.profileName,
              role: roles.get(m.profileId) as Role,
              joined_seq: room.last_seq,
              read_seq: room.last_seq,
              settings: "{}",
            })),
          )
          .onConflict((oc) =>
            oc.columns(["room_id", "profile_id"]).doUpdateSet((eb) => ({
              state: "active",
              role: eb.ref("excluded.role"),
              contact_id: eb.ref("excluded.contact_id"),
              profile_name: eb.ref("excluded.profile_name"),
              joined_at: sql`now()`,
              joined_seq: eb.ref("excluded.joined_seq"),
              left_seq: null,
              read_seq: eb.ref("excluded.read_seq"),
              updated_at: sql`now()`,
            })),
          )
          .returningAll()
          .execute();
        for (const r of rows) current.set(r.profile_id, r);
        await trx
          .updateTable("rooms")
          .set((eb) => ({ member_count: eb("member_count", "+", joining.length) }))
          .where("id", "=", roomId)
          .execute();
        const added = joining.map((m) => m.profileId);
        const sameRole = new Set(added.map((p) => roles.get(p))).size === 1;
        await appendEvents(trx, room, [
          systemEvent(caller.profileId, SystemEventKind.MEMBERS_ADDED, {
            profileIds: added,
            ...(sameRole ? { role: roles.get(added[0] as string) as string } : {}),
          }),
        ]);
      }
      return wanted.map((m) => presentSubscription(current.get(m.profileId) as SubscriptionRow));
    });
  }

  /** Removes members; any member may remove themselves (leave). Returns the ids removed. */
  async remove(caller: Identity, roomId: string, profileIds: string[]): Promise<string[]> {
    checkId("room_id", roomId);
    checkCount("profile_ids", profileIds.length, MAX_MEMBERS_PER_CALL, 1);
    for (const [i, p] of profileIds.entries()) checkProfileId(`profile_ids[${i}]`, p);
    return this.db.transaction().execute(async (trx) => {
      const room = await lockOrNotFound(trx, roomId);
      const { sub } = await viewRoom(trx, roomId, caller.profileId, room);
      if (!sub) throw denied("you are not a member of this room");
      noDirect(room);
      const targets = [...(await subscriptions(trx, roomId, [...new Set(profileIds)])).values()].filter(
        (t) => t.state === "active",
      );
      for (const t of targets) {
        if (t.profile_id === caller.profileId) continue;
        assertCan(sub.role, "member.remove");
        if (!outranks(sub.role, t.role)) throw denied(`cannot remove ${t.profile_id}: their role is not below yours`);
      }
      const ownersLeaving = targets.filter((t) => t.role === "owner").length;
      if (ownersLeaving > 0 && (await countOwners(trx, roomId)) <= ownersLeaving) throw precondition(LAST_OWNER);
      const removed = targets.map((t) => t.profile_id);
      if (removed.length > 0) {
        await trx
          .updateTable("room_subscriptions")
          // The removal event (next seq) is the last one delivered to them.
          .set({ state: "removed", left_seq: room.last_seq + 1, updated_at: new Date() })
          .where("room_id", "=", roomId)
          .where("profile_id", "in", removed)
          .execute();
        await trx
          .updateTable("rooms")
          .set((eb) => ({ member_count: eb("member_count", "-", removed.length) }))
          .where("id", "=", roomId)
          .execute();
        await appendEvents(trx, room, [
          systemEvent(caller.profileId, SystemEventKind.MEMBERS_REMOVED, { profileIds: removed }),
        ]);
      }
      return removed;
    });
  }

  async updateRole(caller: Identity, roomId: string, profileId: string, role: string): Promise<RoomSubscription> {
    checkId("room_id", roomId);
    checkProfileId("profile_id", profileId);
    if (!isRole(role)) throw invalid("role", `must be one of ${ROLES.join(", ")}`);
    return this.db.transaction().execute(async (trx) => {
      const room = await lockOrNotFound(trx, roomId);
      const { sub } = await viewRoom(trx, roomId, caller.profileId, room);
      if (!sub) throw denied("you are not a member of this room");
      noDirect(room);
      assertCan(sub.role, "member.role");
      const target = (await subscriptions(trx, roomId, [profileId])).get(profileId);
      if (target?.state !== "active") throw notFound("member");
      if (target.profile_id !== caller.profileId && !outranks(sub.role, target.role)) {
        throw denied(`cannot change the role of ${profileId}: their role is not below yours`);
      }
      if (!mayGrant(sub.role, role)) throw denied("role: you cannot grant a role above your own");
      if (target.role === role) return presentSubscription(target);
      if (target.role === "owner" && (await countOwners(trx, roomId)) <= 1) throw precondition(LAST_OWNER);
      const updated = await trx
        .updateTable("room_subscriptions")
        .set({ role, updated_at: new Date() })
        .where("room_id", "=", roomId)
        .where("profile_id", "=", profileId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await appendEvents(trx, room, [
        systemEvent(caller.profileId, SystemEventKind.ROLE_CHANGED, { profileIds: [profileId], role }),
      ]);
      return presentSubscription(updated);
    });
  }

  /** Active members, by profile id, optionally matching `query`. Public channels list to anyone. */
  async search(caller: Identity, q: MemberSearch): Promise<Page<RoomSubscription>> {
    checkId("room_id", q.roomId);
    checkName("query", q.query);
    const limit = checkLimit("limit", q.limit, 50, 100);
    const cursor = decodeCursor("cursor", q.cursor, { p: "string" });
    await viewRoom(this.db, q.roomId, caller.profileId);
    let query = this.db
      .selectFrom("room_subscriptions")
      .selectAll()
      .where("room_id", "=", q.roomId)
      .where("state", "=", "active")
      .orderBy("profile_id")
      .limit(limit + 1);
    if (q.query) {
      const like = likePattern(q.query);
      query = query.where((eb) =>
        eb.or([eb("profile_id", "ilike", like), eb("contact_id", "ilike", like), eb("profile_name", "ilike", like)]),
      );
    }
    if (cursor) query = query.where("profile_id", ">", cursor.p);
    const rows = await query.execute();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(presentSubscription),
      nextCursor: rows.length > limit && last ? encodeCursor({ p: last.profile_id }) : "",
    };
  }
}

function noDirect(room: RoomRow): void {
  if (room.type === "direct") throw precondition("a direct room always has exactly its two members, as they are");
}

async function subscriptions(trx: Tx, roomId: string, profileIds: string[]): Promise<Map<string, SubscriptionRow>> {
  if (profileIds.length === 0) return new Map();
  const rows = await trx
    .selectFrom("room_subscriptions")
    .selectAll()
    .where("room_id", "=", roomId)
    .where("profile_id", "in", profileIds)
    .execute();
  return new Map(rows.map((r) => [r.profile_id, r]));
}

async function countOwners(trx: Tx, roomId: string): Promise<number> {
  const row = await trx
    .selectFrom("room_subscriptions")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("room_id", "=", roomId)
    .where("role", "=", "owner")
    .where("state", "=", "active")
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
