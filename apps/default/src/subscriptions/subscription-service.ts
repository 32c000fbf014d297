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
} from "@service-chat/core";
import { viewRoom } from "../authz/access.js";
import { isRole, ROLES } from "../authz/permissions.js";
import type { Role, SubscriptionRow } from "../db/schema.js";
import { pageOf } from "../events/cursors.js";
import type { Page } from "../events/event-service.js";
import { SystemEventKind, systemEvent } from "../events/kinds/system.js";
import { checkMembers, checkName, MAX_MEMBERS_PER_CALL } from "../rooms/validate.js";
import { presentSubscription } from "./present.js";
import {
  assertMayAdd,
  assertMayChangeRole,
  assertMayRemove,
  assertNotDirect,
  assertOwnerStays,
  ownersAmong,
} from "./rules.js";
import type { SubscriptionStore } from "./store.js";

export interface MemberSearch {
  roomId: string;
  query: string;
  cursor: string;
  limit: number;
}

/** Memberships: add (and re-add), remove (and leave), change roles, list. The rules are in rules.ts. */
export class SubscriptionService {
  constructor(private readonly store: SubscriptionStore) {}

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
    return this.store.transaction(async (tx) => {
      const room = await tx.events.lockOrNotFound(roomId);
      const { sub } = await viewRoom(tx.access, roomId, caller.profileId, room);
      assertNotDirect(room);
      assertMayAdd(
        room,
        sub,
        caller.profileId,
        wanted.map((m) => m.profileId),
        members.map((m) => roles.get(m.profileId) as Role),
      );
      const current = await tx.byProfiles(
        roomId,
        wanted.map((m) => m.profileId),
      );
      const joining = wanted.filter((m) => current.get(m.profileId)?.state !== "active");
      if (joining.length > 0) {
        const rows = await tx.upsertActive(
          joining.map((m) => ({
            room_id: roomId,
            profile_id: m.profileId,
            contact_id: m.contactId || (m.profileId === caller.profileId ? caller.contactId : ""),
            profile_name: m.profileName,
            role: roles.get(m.profileId) as Role,
            // A member sees the room from where they joined, and has read nothing after it.
            joined_seq: room.last_seq,
            read_seq: room.last_seq,
            settings: "{}",
          })),
        );
        for (const r of rows) current.set(r.profile_id, r);
        await tx.addToMemberCount(roomId, joining.length);
        const added = joining.map((m) => m.profileId);
        const sameRole = new Set(added.map((p) => roles.get(p))).size === 1;
        await tx.events.append(room, [
          systemEvent(caller.profileId, SystemEventKind.MEMBERS_ADDED, {
            profileIds: added,
            ...(sameRole ? { role: roles.get(added[0] as string) as string } : {}),
          }),
        ]);
        await tx.audit.record([
          {
            actorId: caller.profileId,
            action: "members.added",
            roomId,
            targets: added,
            details: { roles: Object.fromEntries(added.map((p) => [p, roles.get(p)])) },
          },
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
    return this.store.transaction(async (tx) => {
      const room = await tx.events.lockOrNotFound(roomId);
      const { sub } = await viewRoom(tx.access, roomId, caller.profileId, room);
      if (!sub) throw denied("you are not a member of this room");
      assertNotDirect(room);
      const targets = [...(await tx.byProfiles(roomId, [...new Set(profileIds)])).values()].filter(
        (t) => t.state === "active",
      );
      assertMayRemove(sub, targets);
      const leaving = ownersAmong(targets);
      if (leaving > 0) assertOwnerStays(await tx.countOwners(roomId), leaving);
      const removed = targets.map((t) => t.profile_id);
      if (removed.length > 0) {
        // The removal event (next seq) is the last one delivered to them.
        await tx.markRemoved(roomId, removed, room.last_seq + 1);
        await tx.addToMemberCount(roomId, -removed.length);
        await tx.events.append(room, [
          systemEvent(caller.profileId, SystemEventKind.MEMBERS_REMOVED, { profileIds: removed }),
        ]);
        await tx.audit.record([{ actorId: caller.profileId, action: "members.removed", roomId, targets: removed }]);
      }
      return removed;
    });
  }

  async updateRole(caller: Identity, roomId: string, profileId: string, role: string): Promise<RoomSubscription> {
    checkId("room_id", roomId);
    checkProfileId("profile_id", profileId);
    if (!isRole(role)) throw invalid("role", `must be one of ${ROLES.join(", ")}`);
    return this.store.transaction(async (tx) => {
      const room = await tx.events.lockOrNotFound(roomId);
      const { sub } = await viewRoom(tx.access, roomId, caller.profileId, room);
      if (!sub) throw denied("you are not a member of this room");
      assertNotDirect(room);
      const found = (await tx.byProfiles(roomId, [profileId])).get(profileId);
      const target = found?.state === "active" ? found : undefined;
      if (!assertMayChangeRole(sub, target, role)) return presentSubscription(target as SubscriptionRow);
      if (target?.role === "owner") assertOwnerStays(await tx.countOwners(roomId), 1);
      const updated = await tx.setRole(roomId, profileId, role);
      await tx.events.append(room, [
        systemEvent(caller.profileId, SystemEventKind.ROLE_CHANGED, { profileIds: [profileId], role }),
      ]);
      await tx.audit.record([
        {
          actorId: caller.profileId,
          action: "member.role_changed",
          roomId,
          targets: [profileId],
          details: { role, previous: target?.role ?? null },
        },
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
    await viewRoom(this.store.access, q.roomId, caller.profileId);
    const rows = await this.store.search({
      roomId: q.roomId,
      limit,
      ...(q.query ? { query: q.query } : {}),
      ...(cursor ? { afterProfileId: cursor.p } : {}),
    });
    const { page, nextCursor } = pageOf(rows, limit, (last) => encodeCursor({ p: last.profile_id }));
    return { items: page.map(presentSubscription), nextCursor };
  }
}
