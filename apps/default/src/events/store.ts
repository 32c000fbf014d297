import { newId, notFound } from "@service-chat/core";
import { type Insertable, type Kysely, sql, type Transaction } from "kysely";
import type { EventKind, EventRow, EventsTable, RoomRow, Schema } from "../db/schema.js";

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
  const [rows] = await appendToRooms(trx, [{ room, events, ...(reader ? { reader } : {}) }]);
  return rows ?? [];
}

/** Events for `appendToRooms`: several appends may go to one room, stored in the order given. */
export interface Append {
  room: RoomRow;
  events: NewEvent[];
  /** As for `appendEvents`: this member's read marker moves to the seq of the append's last event. */
  reader?: string;
}

/**
 * `appendEvents` for many rooms, all locked, in one round trip whatever their number: the events,
 * their outbox rows, each room's seqs and each reader's marker. A room's object is updated (last_seq,
 * members_seq), so the appends to one room must share it. Returns the rows of each append.
 */
export async function appendToRooms(trx: Tx, appends: Append[]): Promise<EventRow[][]> {
  const now = new Date();
  const values: Insertable<EventsTable>[] = [];
  const ids: string[][] = [];
  const seqs = new Map<RoomRow, { last: number; members: number }>();
  const readers = new Map<string, { roomId: string; profileId: string; seq: number }>();
  for (const { room, events, reader } of appends) {
    const mine = events.map(() => newId());
    ids.push(mine);
    if (events.length === 0) continue;
    const seq = seqs.get(room) ?? { last: room.last_seq, members: room.members_seq };
    for (const [i, e] of events.entries()) {
      seq.last++;
      if (e.changesMembers) seq.members = seq.last;
      values.push({
        id: mine[i] as string,
        room_id: room.id,
        seq: seq.last,
        sender_id: e.senderId,
        sender_contact_id: e.senderContactId ?? "",
        type: e.kind,
        content: JSON.stringify(e.content),
        parent_id: e.parentId ?? null,
        client_id: e.clientId ?? null,
        sent_at: e.sentAt ?? now,
        server_ts: now,
        search: e.searchText ? sql`to_tsvector('simple', ${e.searchText})` : null,
      });
    }
    seqs.set(room, seq);
    if (reader) readers.set(`${room.id} ${reader}`, { roomId: room.id, profileId: reader, seq: seq.last });
  }
  if (values.length === 0) return ids.map(() => []);
  const moved = [...seqs].map(([room, seq]) => ({ id: room.id, ...seq }));
  const marks = [...readers.values()];
  const rows = await trx
    .with("e", (db) => db.insertInto("room_events").values(values).returning(EVENT_COLUMNS))
    .with("o", (db) =>
      db
        .insertInto("outbox")
        .columns(["event_id", "room_id", "seq"])
        .expression(db.selectFrom("e").select(["e.id", "e.room_id", "e.seq"]).orderBy("e.seq")),
    )
    .with(
      "r",
      // Raw statements in a WITH need their own parentheses.
      () => sql`(update rooms set last_seq = v.last_seq, members_seq = v.members_seq
        from unnest(${moved.map((m) => m.id)}::text[], ${moved.map((m) => m.last)}::int8[],
          ${moved.map((m) => m.members)}::int8[]) as v(id, last_seq, members_seq)
        where rooms.id = v.id)`,
    )
    .with(
      "s",
      () => sql`(update room_subscriptions as m set read_seq = v.seq
        from unnest(${marks.map((m) => m.roomId)}::text[], ${marks.map((m) => m.profileId)}::text[],
          ${marks.map((m) => m.seq)}::int8[]) as v(room_id, profile_id, seq)
        where m.room_id = v.room_id and m.profile_id = v.profile_id and m.read_seq < v.seq)`,
    )
    .selectFrom("e")
    .select(EVENT_COLUMNS)
    .execute();
  for (const [room, seq] of seqs) {
    room.last_seq = seq.last;
    room.members_seq = seq.members;
  }
  const byId = new Map(rows.map((r) => [r.id, r as EventRow]));
  return ids.map((mine) => mine.map((id) => byId.get(id) as EventRow));
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
