import { denied, notFound } from "@service-chat/core";
import type { Kysely, Transaction } from "kysely";
import type { Role, RoomRow, Schema, SubscriptionRow } from "../db/schema.js";
import { type Action, assertCan } from "./permissions.js";

type Db = Kysely<Schema> | Transaction<Schema>;

export interface Access {
  room: RoomRow;
  /** The caller's active membership, if any. */
  sub?: SubscriptionRow;
}

export async function activeSubscription(db: Db, roomId: string, profileId: string) {
  return db
    .selectFrom("room_subscriptions")
    .selectAll()
    .where("room_id", "=", roomId)
    .where("profile_id", "=", profileId)
    .where("state", "=", "active")
    .executeTakeFirst();
}

/**
 * What the caller may see of a room. A room that does not exist, is deleted, or is private and
 * the caller is not in it is "not found" alike, so ids of private rooms reveal nothing. Public
 * channels are visible to everyone signed in.
 */
export async function viewRoom(db: Db, roomId: string, profileId: string, room?: RoomRow): Promise<Access> {
  const found =
    room ??
    (await db
      .selectFrom("rooms")
      .selectAll()
      .where("id", "=", roomId)
      .where("deleted_at", "is", null)
      .executeTakeFirst());
  if (!found) throw notFound("room");
  const sub = await activeSubscription(db, roomId, profileId);
  if (!sub && found.type !== "channel") throw notFound("room");
  return sub ? { room: found, sub } : { room: found };
}

/**
 * The rules of `requireAccess` for a room already read (and locked, by `lockForSenders` in
 * events/lock-senders.ts) with the caller's role in it: no role means not a member.
 */
export function assertMemberCan(room: RoomRow, role: Role | null | undefined, action: Action): Role {
  if (!role && room.type !== "channel") throw notFound("room");
  if (!role) throw denied("you are not a member of this channel; join it first");
  assertCan(role, action);
  return role;
}

/** The caller's access to a room, required to allow `action` by the permission matrix. */
export async function requireAccess(
  db: Db,
  roomId: string,
  profileId: string,
  action: Action,
  room?: RoomRow,
): Promise<Required<Access>> {
  const access = await viewRoom(db, roomId, profileId, room);
  if (!access.sub) throw denied("you are not a member of this channel; join it first");
  assertCan(access.sub.role, action);
  return access as Required<Access>;
}
