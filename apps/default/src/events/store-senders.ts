import { sql } from "kysely";
import type { EventRow, Role, RoomRow } from "../db/schema.js";
import type { Db } from "../db/store.js";

// Part of the event store (store.ts): the first statement of a batch of sends.

/** A sender about to write to a room, with the client ids of their events (may be none). */
export interface SenderWant {
  roomId: string;
  senderId: string;
  clientIds: string[];
}

/** What a sender's job needs of a room it locked. */
export interface SenderView {
  /** One object per room for all the wants of a batch: appends to it move its seq. */
  room: RoomRow;
  /** The sender's role, if an active member. */
  role: Role | null;
  /** Events the sender already stored under the client ids asked for, by client id. */
  earlier: Map<string, StoredEvent>;
}

export type StoredEvent = Pick<EventRow, "id" | "room_id" | "seq" | "client_id">;

type Row = RoomRow & {
  n: number;
  member_role: Role | null;
  seen_seq: number;
  stored: Record<string, [string, number]> | null;
};

/**
 * Locks the live rooms of a batch in id order, as the event store's `lockRoom` does (every batch takes them in the
 * same order, so two batches cannot deadlock on rooms), and reads for each want the sender's role
 * and the events already stored under its client ids (idempotent resend): one round trip. Answers
 * per want, in order; undefined for a room that does not exist (or no longer).
 */
export async function lockForSenders(trx: Db, wants: SenderWant[]): Promise<(SenderView | undefined)[]> {
  let rows = await read(trx, wants);
  // Under READ COMMITTED a statement that waited for a lock gets the room row as the lock holder
  // left it, but its joins and subqueries still see the snapshot taken before the wait: a role or
  // a client id that holder changed would be missed. Every such holder moves last_seq, so compare
  // with the snapshot's last_seq and, if one moved, read again (holding the locks: no wait now).
  if (rows.some((r) => r.seen_seq !== r.last_seq)) rows = await read(trx, wants);
  const rooms = new Map<string, RoomRow>();
  const views: (SenderView | undefined)[] = wants.map(() => undefined);
  for (const { n, member_role, seen_seq, stored, ...row } of rows) {
    const room = rooms.get(row.id) ?? row;
    rooms.set(room.id, room);
    const earlier = new Map<string, StoredEvent>();
    for (const [clientId, [id, seq]] of Object.entries(stored ?? {})) {
      earlier.set(clientId, { id, room_id: room.id, seq, client_id: clientId });
    }
    views[n] = { room, role: member_role, earlier };
  }
  return views;
}

// One lookup per client id: `client_id = any(...)` of a whole array let the planner search all of a
// sender's events in the room and filter them, slow for a sender of many messages.
async function read(trx: Db, wants: SenderWant[]): Promise<Row[]> {
  const json = JSON.stringify(
    wants.map((w, n) => ({ n, room_id: w.roomId, sender_id: w.senderId, client_ids: w.clientIds })),
  );
  const { rows } = await sql<Row>`
    select w.n, r.*, s.role as member_role,
      (select seen.last_seq from rooms seen where seen.id = r.id) as seen_seq,
      (select jsonb_strip_nulls(jsonb_object_agg(c.id, (select jsonb_build_array(e.id, e.seq) from room_events e
          where e.room_id = r.id and e.sender_id = w.sender_id and e.client_id = c.id)))
        from unnest(w.client_ids) as c(id)) as stored
    from jsonb_to_recordset(${json}::jsonb) as w(n int, room_id text, sender_id text, client_ids text[])
    join rooms r on r.id = w.room_id and r.deleted_at is null
    left join room_subscriptions s on s.room_id = r.id and s.profile_id = w.sender_id and s.state = 'active'
    order by r.id
    for update of r`.execute(trx);
  return rows;
}
