import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Room, RoomSchema, RoomType } from "@service-chat/api";
import type { RoomKind, RoomRow } from "../db/schema.js";

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
    ...(readSeq === undefined
      ? {}
      : { readSeq: BigInt(readSeq), unreadCount: BigInt(Math.max(0, row.last_seq - readSeq)) }),
  });
}
