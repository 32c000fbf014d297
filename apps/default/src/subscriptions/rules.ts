import { denied, notFound, precondition } from "@service-chat/core";
import { assertCan, mayGrant, outranks } from "../authz/permissions.js";
import type { Role, RoomRow } from "../db/schema.js";

/**
 * The membership rules, on rows already read: who may add whom with which role, remove whom,
 * change whose role; the last owner stays. They throw the domain error that refuses the change.
 */

export const LAST_OWNER = "the room's last owner cannot leave or step down; make another member owner first";

/** The membership a rule looks at. */
export interface Member {
  profile_id: string;
  role: Role;
}

export function assertNotDirect(room: Pick<RoomRow, "type">): void {
  if (room.type === "direct") throw precondition("a direct room always has exactly its two members, as they are");
}

/**
 * May the caller (`actor`, their active membership if any) add `added` (profile ids, without
 * duplicates), granting `grants` (the role given by each entry of the request, in its order)?
 * Anyone may join a public channel by adding only themselves, as member or guest; otherwise the
 * caller must be a member who may add members, granting no role above their own.
 */
export function assertMayAdd(
  room: Pick<RoomRow, "type">,
  actor: Member | undefined,
  callerId: string,
  added: string[],
  grants: Role[],
): void {
  const selfJoin = !actor && room.type === "channel" && added.length === 1 && added[0] === callerId;
  if (selfJoin) {
    if (!["member", "guest"].includes(grants[0] as Role)) {
      throw denied("members[0].role: you can join a channel as member or guest");
    }
    return;
  }
  if (!actor) throw denied("you are not a member of this channel; join it first");
  assertCan(actor.role, "member.add");
  grants.forEach((role, i) => {
    if (!mayGrant(actor.role, role)) throw denied(`members[${i}].role: you cannot grant a role above your own`);
  });
}

/** May `actor` remove these members? Leaving is always allowed; others need a lower role than the actor's. */
export function assertMayRemove(actor: Member, targets: Member[]): void {
  for (const t of targets) {
    if (t.profile_id === actor.profile_id) continue;
    assertCan(actor.role, "member.remove");
    if (!outranks(actor.role, t.role)) throw denied(`cannot remove ${t.profile_id}: their role is not below yours`);
  }
}

/**
 * May `actor` give `target` (their active membership, if any) the role `role`? Answers false when
 * it is the target's role already.
 */
export function assertMayChangeRole(actor: Member, target: Member | undefined, role: Role): boolean {
  assertCan(actor.role, "member.role");
  if (!target) throw notFound("member");
  if (target.profile_id !== actor.profile_id && !outranks(actor.role, target.role)) {
    throw denied(`cannot change the role of ${target.profile_id}: their role is not below yours`);
  }
  if (!mayGrant(actor.role, role)) throw denied("role: you cannot grant a role above your own");
  return target.role !== role;
}

/** Owners among members about to leave or step down. */
export const ownersAmong = (members: Member[]): number => members.filter((m) => m.role === "owner").length;

/** A room keeps at least one owner: `leaving` of its `owners` may go only if one stays. */
export function assertOwnerStays(owners: number, leaving: number): void {
  if (leaving > 0 && owners <= leaving) throw precondition(LAST_OWNER);
}
