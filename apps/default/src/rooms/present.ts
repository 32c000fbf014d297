import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { RetentionPolicySchema, type Room, RoomSchema, RoomType } from "@service-chat/api";
import type { RoomKind, RoomRow } from "../db/schema.js";

/** Unread events of a member: those after the read marker that are still stored. */
export const unreadCount = (room: Pick<RoomRow, "last_seq" | "first_seq">, readSeq: number) =>
  Math.max(0, room.last_seq - Math.max(readSeq, room.first_seq - 1));

export const ROOM_TYPES: Record<RoomKind, RoomType> = {
  direct: RoomType.DIRECT,
  group: RoomType.GROUP,
  channel: RoomType.CHANNEL,
};

/** A room as the API shows it; `readSeq` is the caller's read marker when the caller is a member. */
export function presentRoom(row: RoomRow, readSeq?: number): Room {
  return create(RoomSchema, {
    id: row.id,
    type: ROOM_TYPES[row.type],
    name: row.name,
    description: row.description,
    metadata: row.metadata as JsonObject,
    creatorId: row.creator_id,
    lastSeq: BigInt(row.last_seq),
    memberCount: row.member_count,
    createdAt: timestampFromDate(row.created_at),
    updatedAt: timestampFromDate(row.updated_at),
    ...(readSeq === undefined ? {} : { readSeq: BigInt(readSeq), unreadCount: BigInt(unreadCount(row, readSeq)) }),
    firstSeq: BigInt(row.first_seq),
    ...(row.retention_max_age_sec !== null || row.retention_max_events !== null
      ? {
          retention: create(RetentionPolicySchema, {
            ...(row.retention_max_age_sec !== null ? { maxAgeSeconds: BigInt(row.retention_max_age_sec) } : {}),
            ...(row.retention_max_events !== null ? { maxEvents: BigInt(row.retention_max_events) } : {}),
          }),
        }
      : {}),
  });
}
