import { newId, notFound } from "@service-chat/core";
import { type Insertable, sql } from "kysely";
import { AccessStore } from "../authz/store.js";
import type { EventRow, EventsTable, RoomRow } from "../db/schema.js";
import { type Db, Store } from "../db/store.js";
import type { EventKind } from "./kinds/index.js";
import { lockForSenders, type SenderView, type SenderWant } from "./store-senders.js";

export type { SenderView, SenderWant, StoredEvent } from "./store-senders.js";

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

/** Events for `appendToRooms`: several appends may go to one room, stored in the order given. */
export interface Append {
  room: RoomRow;
  events: NewEvent[];
  /** As for `append`: this member's read marker moves to the seq of the append's last event. */
  reader?: string;
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

/** Where a history page starts: after `afterSeq` (exclusive), in the page's direction. */
export interface HistoryPage {
  roomId: string;
  forward: boolean;
  afterSeq?: number;
  limit: number;
}

/** A search page: `after` is the (server time, seq, id) of the last event of the previous page. */
export interface SearchPage {
  profileId: string;
  query: string;
  roomId?: string;
  after?: { serverTs: Date; seq: number; id: string };
  limit: number;
}

/**
 * Events: the room lock, seq assignment and the outbox (one event row and one outbox row per
 * event, nothing per member), edits and redactions, history and search.
 */
export class EventStore extends Store {
  readonly access: AccessStore;

  constructor(db: Db) {
    super(db);
    this.access = new AccessStore(db);
  }

  /**
   * Locks a live room for the rest of the transaction and returns it. Every writer of a room takes
   * this lock first, so seq assignment and membership changes of one room are serialised.
   */
  lockRoom(roomId: string): Promise<RoomRow | undefined> {
    return this.db
      .selectFrom("rooms")
      .selectAll()
      .where("id", "=", roomId)
      .where("deleted_at", "is", null)
      .forUpdate()
      .executeTakeFirst();
  }

  /** `lockRoom`, answering not_found for a room that does not exist (or no longer). */
  async lockOrNotFound(roomId: string): Promise<RoomRow> {
    const room = await this.lockRoom(roomId);
    if (!room) throw notFound("room");
    return room;
  }

  /** Locks the rooms of a batch of sends and reads what their checks need (store-senders.ts). */
  lockForSenders(wants: SenderWant[]): Promise<(SenderView | undefined)[]> {
    return lockForSenders(this.db, wants);
  }

  /**
   * Stores events in a room locked by `lockRoom`: seqs follow `room.last_seq` with no gap, and each
   * event gets one row in room_events and one in outbox — nothing per member.
   */
  async append(
    room: RoomRow,
    events: NewEvent[],
    /** A member whose read marker moves to the new last seq (the sender: what you send, you have read). */
    reader?: string,
  ): Promise<EventRow[]> {
    const [rows] = await this.appendToRooms([{ room, events, ...(reader ? { reader } : {}) }]);
    return rows ?? [];
  }

  /**
   * `append` for many rooms, all locked, in one round trip whatever their number: the events,
   * their outbox rows, each room's seqs and each reader's marker. A room's object is updated
   * (last_seq, members_seq), so the appends to one room must share it. Returns the rows of each append.
   */
  async appendToRooms(appends: Append[]): Promise<EventRow[][]> {
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
    const rows = await this.db
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
  async find(roomId: string, ids: string[]): Promise<Map<string, EventRow>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .selectFrom("room_events")
      .select(EVENT_COLUMNS)
      .where("room_id", "=", roomId)
      .where("id", "in", ids)
      .execute();
    return new Map(rows.map((r) => [r.id, r]));
  }

  /** An edit: the event's content and search text become the new ones, and it shows as edited. */
  async replaceContent(eventId: string, content: Record<string, unknown>, searchText: string): Promise<void> {
    await this.db
      .updateTable("room_events")
      .set({ content: JSON.stringify(content), edited: true, search: sql`to_tsvector('simple', ${searchText})` })
      .where("id", "=", eventId)
      .execute();
  }

  /**
   * A redaction: the event and every event of the room whose content repeats it (edits, of the
   * `repeating` kinds) are emptied, so no version of the text stays readable, and marked redacted.
   */
  async redact(roomId: string, eventId: string, repeating: readonly EventKind[]): Promise<void> {
    await this.db
      .updateTable("room_events")
      .set({ content: "{}", redacted: true, search: null })
      .where((eb) =>
        eb.or([
          eb("id", "=", eventId),
          ...(repeating.length > 0
            ? [
                eb.and([
                  eb("room_id", "=", roomId),
                  eb("type", "in", repeating),
                  eb(sql`content->>'targetEventId'`, "=", eventId),
                ]),
              ]
            : []),
        ]),
      )
      .execute();
  }

  /** One page of a room's history, plus one row to tell whether there is more. */
  history(q: HistoryPage): Promise<EventRow[]> {
    let query = this.db
      .selectFrom("room_events")
      .select(EVENT_COLUMNS)
      .where("room_id", "=", q.roomId)
      .orderBy("seq", q.forward ? "asc" : "desc")
      .limit(q.limit + 1);
    if (q.afterSeq !== undefined) query = query.where("seq", q.forward ? ">" : "<", q.afterSeq);
    return query.execute();
  }

  /**
   * One page of full-text matches in the rooms `profileId` is an active member of, newest first,
   * plus one row to tell whether there is more.
   */
  async search(q: SearchPage): Promise<EventRow[]> {
    let query = this.db
      .selectFrom("room_events as e")
      .innerJoin("room_subscriptions as s", (j) =>
        j.onRef("s.room_id", "=", "e.room_id").on("s.profile_id", "=", q.profileId).on("s.state", "=", "active"),
      )
      .innerJoin("rooms as r", (j) => j.onRef("r.id", "=", "e.room_id").on("r.deleted_at", "is", null))
      .select(EVENT_COLUMNS.map((c) => `e.${c}` as const))
      .where(sql<boolean>`e.search @@ websearch_to_tsquery('simple', ${q.query})`)
      // Server time, then seq: ids of one millisecond are in random order.
      .orderBy("e.server_ts", "desc")
      .orderBy("e.seq", "desc")
      .orderBy("e.id", "desc")
      .limit(q.limit + 1);
    if (q.roomId) query = query.where("e.room_id", "=", q.roomId);
    if (q.after) {
      const { serverTs, seq, id } = q.after;
      const after = sql`(${serverTs}::timestamptz, ${seq}::bigint, ${id}::text)`;
      query = query.where(sql<boolean>`(e.server_ts, e.seq, e.id) < ${after}`);
    }
    return (await query.execute()) as EventRow[];
  }
}
