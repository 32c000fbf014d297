import { newId, notFound } from "@service-chat/core";
import { type Kysely, sql, type Transaction } from "kysely";
import type { EventKind, EventRow, RoomRow, Schema } from "../db/schema.js";

export type Db = Kysely<Schema>;
export type Tx = Transaction<Schema>;

/** An event to store; the store assigns id (unless given), seq and server time. */
export interface NewEvent {
  senderId: string;
  senderContactId?: string;
  kind: EventKind;
  content: Record<string, unknown>;
  parentId?: string;
  clientId?: string;
  sentAt?: Date;
  /** Text that full-text search should find this event by. */
  searchText?: string;
  /** A membership change (room created, members added or removed, room deleted). */
  changesMembers?: boolean;
}

export const EVENT_COLUMNS = [
  "id",
  "room_id",
  "seq",
  "sender_id",
  "sender_contact_id",
  "type",
  "content",
  "parent_id",
  "client_id",
  "edited",
  "redacted",
  "sent_at",
  "server_ts",
] as const;

/**
 * Locks a live room for the rest of the transaction and returns it. Every writer of a room takes
 * this lock first, so seq assignment and membership changes of one room are serialised.
 */
export async function lockRoom(trx: Tx, roomId: string): Promise<RoomRow | undefined> {
  return trx
    .selectFrom("rooms")
    .selectAll()
    .where("id", "=", roomId)
    .where("deleted_at", "is", null)
    .forUpdate()
    .executeTakeFirst();
}

/** `lockRoom`, answering not_found for a room that does not exist (or no longer). */
export async function lockOrNotFound(trx: Tx, roomId: string): Promise<RoomRow> {
  const room = await lockRoom(trx, roomId);
  if (!room) throw notFound("room");
  return room;
}

/**
 * Stores events in a room locked by `lockRoom`: seqs follow `room.last_seq` with no gap, and each
 * event gets one row in room_events and one in outbox — nothing per member.
 */
export async function appendEvents(
  trx: Tx,
  room: RoomRow,
  events: NewEvent[],
  /** A member whose read marker moves to the new last seq (the sender: what you send, you have read). */
  reader?: string,
): Promise<EventRow[]> {
  if (events.length === 0) return [];
  const now = new Date();
  const first = room.last_seq + 1;
  const lastSeq = first + events.length - 1;
  const lastChange = events.findLastIndex((e) => e.changesMembers);
  const membersSeq = lastChange >= 0 ? first + lastChange : room.members_seq;
  // One round trip: the events, their outbox rows, the room's seq and the reader's marker.
  const rows = await trx
    .with("e", (db) =>
      db
        .insertInto("room_events")
        .values(
          events.map((e, i) => ({
            id: newId(),
            room_id: room.id,
            seq: first + i,
            sender_id: e.senderId,
            sender_contact_id: e.senderContactId ?? "",
            type: e.kind,
            content: JSON.stringify(e.content),
            parent_id: e.parentId ?? null,
            client_id: e.clientId ?? null,
            sent_at: e.sentAt ?? now,
            server_ts: now,
            search: e.searchText ? sql`to_tsvector('simple', ${e.searchText})` : null,
          })),
        )
        .returning(EVENT_COLUMNS),
    )
    .with("o", (db) =>
      db
        .insertInto("outbox")
        .columns(["event_id", "room_id", "seq"])
        .expression(db.selectFrom("e").select(["e.id", "e.room_id", "e.seq"]).orderBy("e.seq")),
    )
    .with("r", (db) =>
      db.updateTable("rooms").set({ last_seq: lastSeq, members_seq: membersSeq }).where("id", "=", room.id),
    )
    .with("s", (db) =>
      db
        .updateTable("room_subscriptions")
        .set({ read_seq: lastSeq })
        .where("room_id", "=", room.id)
        .where("profile_id", "=", reader ?? "")
        .where("read_seq", "<", lastSeq),
    )
    .selectFrom("e")
    .select(EVENT_COLUMNS)
    .orderBy("seq")
    .execute();
  room.last_seq = lastSeq;
  room.members_seq = membersSeq;
  return rows as EventRow[];
}

/** Events of a room by id, for edits, redactions, reactions and replies. */
export async function findEvents(trx: Tx | Db, roomId: string, ids: string[]): Promise<Map<string, EventRow>> {
  if (ids.length === 0) return new Map();
  const rows = await trx
    .selectFrom("room_events")
    .select(EVENT_COLUMNS)
    .where("room_id", "=", roomId)
    .where("id", "in", ids)
    .execute();
  return new Map(rows.map((r) => [r.id, r]));
}

/** Events a sender already stored under these client ids (idempotent resend). */
export async function findByClientIds(
  trx: Tx,
  roomId: string,
  senderId: string,
  clientIds: string[],
): Promise<Map<string, EventRow>> {
  if (clientIds.length === 0) return new Map();
  const rows = await trx
    .selectFrom("room_events")
    .select(EVENT_COLUMNS)
    .where("room_id", "=", roomId)
    .where("sender_id", "=", senderId)
    .where("client_id", "in", clientIds)
    .execute();
  return new Map(rows.map((r) => [r.client_id as string, r]));
}
