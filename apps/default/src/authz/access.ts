import { denied, notFound } from "@service-chat/core";
import type { Role, RoomRow, SubscriptionRow } from "../db/schema.js";
import { type Action, assertCan } from "./permissions.js";

export interface Access {
  room: RoomRow;
  /** The caller's active membership, if any. */
  sub?: SubscriptionRow;
}

/** What an access check reads (authz/store.ts); a transaction-bound store reads inside its transaction. */
export interface AccessReads {
  liveRoom(roomId: string): Promise<RoomRow | undefined>;
  activeSubscription(roomId: string, profileId: string): Promise<SubscriptionRow | undefined>;
}

/**
 * What the caller may see of a room. A room that does not exist, is deleted, or is private and
 * the caller is not in it is "not found" alike, so ids of private rooms reveal nothing. Public
 * channels are visible to everyone signed in.
 */
export function decideView(room: RoomRow | undefined, sub: SubscriptionRow | undefined): Access {
  if (!room) throw notFound("room");
  if (!sub && room.type !== "channel") throw notFound("room");
  return sub ? { room, sub } : { room };
}

/** `decideView` for a room read (or given, already locked) and the caller's membership in it. */
export async function viewRoom(reads: AccessReads, roomId: string, profileId: string, room?: RoomRow): Promise<Access> {
  const found = room ?? (await reads.liveRoom(roomId));
  if (!found) throw notFound("room");
  return decideView(found, await reads.activeSubscription(roomId, profileId));
}

/**
 * The rules of `requireAccess` for a room already read (and locked, by the event store's
 * `lockForSenders`) with the caller's role in it: no role means not a member.
 */
export function assertMemberCan(room: RoomRow, role: Role | null | undefined, action: Action): Role {
  if (!role && room.type !== "channel") throw notFound("room");
  if (!role) throw denied("you are not a member of this channel; join it first");
  assertCan(role, action);
  return role;
}

/** The caller's access to a room, required to allow `action` by the permission matrix. */
export async function requireAccess(
  reads: AccessReads,
  roomId: string,
  profileId: string,
  action: Action,
  room?: RoomRow,
): Promise<Required<Access>> {
  const access = await viewRoom(reads, roomId, profileId, room);
  if (!access.sub) throw denied("you are not a member of this channel; join it first");
  assertCan(access.sub.role, action);
  return access as Required<Access>;
}
