import { newId, notFound } from "@service-chat/core";
import { sql } from "kysely";
import { AccessStore } from "../authz/store.js";
import type { EventRow, Role, RoomRow } from "../db/schema.js";
import { type Db, Store } from "../db/store.js";
import type { EventKind } from "./kinds/index.js";

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

/** An event just committed, with its outbox row: what the outbox relay publishes. */
export interface CommittedEvent {
  outboxId: number;
  row: EventRow;
  /** The traceparent of the transaction that stored it (tracing on): the relay's span continues it. */
  trace?: string;
}

/**
 * The outbox relay of this process (delivery/outbox-relay.ts): told of the events of each
 * transaction once it committed, in commit order, it publishes them without reading them back.
 * The rows it is told of carry its `origin`, so that it knows which NOTIFYs are its own. The
 * outbox rows stay the durable record: whatever the relay misses it finds in the table.
 */
export interface OutboxSink {
  readonly origin: string;
  committed(events: CommittedEvent[]): void;
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

type SenderRow = RoomRow & {
  n: number;
  member_role: Role | null;
  seen_seq: number;
  stored: Record<string, [string, number]> | null;
};

/** The columns of the events of one append statement, one array each (see `appendToRooms`). */
function newColumns() {
  return {
    id: [] as string[],
    roomId: [] as string[],
    seq: [] as number[],
    senderId: [] as string[],
    senderContactId: [] as string[],
    type: [] as string[],
    content: [] as string[],
    parentId: [] as (string | null)[],
    clientId: [] as (string | null)[],
    sentAt: [] as string[],
    search: [] as (string | null)[],
  };
}

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
  /** What this transaction appended, for the sink once it commits. */
  private appended: CommittedEvent[] = [];
  /** The traceparent of this transaction's span, handed to the relay with what it appends. */
  trace: string | undefined;

  constructor(
    db: Db,
    private readonly sink?: OutboxSink,
  ) {
    super(db);
    this.access = new AccessStore(db);
  }

  protected override bind(tx: Db): this {
    return new EventStore(tx, this.sink) as this;
  }

  override afterCommit(): void {
    const appended = this.appended;
    this.appended = [];
    if (appended.length > 0) this.sink?.committed(appended);
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

  /**
   * Locks the live rooms of a batch of sends in id order, as `lockRoom` does (every batch takes
   * them in the same order, so two batches cannot deadlock on rooms), and reads for each want the
   * sender's role and the events already stored under its client ids (idempotent resend): one
   * round trip. Answers per want, in order; undefined for a room that does not exist (or no longer).
   */
  async lockForSenders(wants: SenderWant[]): Promise<(SenderView | undefined)[]> {
    let rows = await readSenders(this.db, wants);
    // Under READ COMMITTED a statement that waited for a lock gets the room row as the lock holder
    // left it, but its joins and subqueries still see the snapshot taken before the wait: a role or
    // a client id that holder changed would be missed. Every such holder moves last_seq, so compare
    // with the snapshot's last_seq and, if one moved, read again (holding the locks: no wait now).
    if (rows.some((r) => r.seen_seq !== r.last_seq)) rows = await readSenders(this.db, wants);
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
    const e = newColumns();
    const ids: string[][] = [];
    const seqs = new Map<RoomRow, { last: number; members: number }>();
    const readers = new Map<string, { roomId: string; profileId: string; seq: number }>();
    for (const { room, events, reader } of appends) {
      const mine = events.map(() => newId());
      ids.push(mine);
      if (events.length === 0) continue;
      const seq = seqs.get(room) ?? { last: room.last_seq, members: room.members_seq };
      for (const [i, event] of events.entries()) {
        seq.last++;
        if (event.changesMembers) seq.members = seq.last;
        e.id.push(mine[i] as string);
        e.roomId.push(room.id);
        e.seq.push(seq.last);
        e.senderId.push(event.senderId);
        e.senderContactId.push(event.senderContactId ?? "");
        e.type.push(event.kind);
        e.content.push(JSON.stringify(event.content));
        e.parentId.push(event.parentId ?? null);
        e.clientId.push(event.clientId ?? null);
        e.sentAt.push((event.sentAt ?? now).toISOString());
        e.search.push(event.searchText || null);
      }
      seqs.set(room, seq);
      if (reader) readers.set(`${room.id} ${reader}`, { roomId: room.id, profileId: reader, seq: seq.last });
    }
    if (e.id.length === 0) return ids.map(() => []);
    const moved = [...seqs].map(([room, seq]) => ({ id: room.id, ...seq }));
    const marks = [...readers.values()];
    // One statement text whatever the number of events, rooms and readers (arrays, not a VALUES
    // list): PostgreSQL parses and plans it once per connection (db/prepared statements).
    const { rows } = await sql<EventRow & { outbox_id: number }>`
      with e as (
        insert into room_events (id, room_id, seq, sender_id, sender_contact_id, type, content, parent_id,
          client_id, sent_at, server_ts, search)
        select v.id, v.room_id, v.seq, v.sender_id, v.sender_contact_id, v.type, v.content::jsonb, v.parent_id,
          v.client_id, v.sent_at, ${now.toISOString()}::timestamptz,
          case when v.search is null then null else to_tsvector('simple', v.search) end
        from unnest(${e.id}::text[], ${e.roomId}::text[], ${e.seq}::int8[], ${e.senderId}::text[],
          ${e.senderContactId}::text[], ${e.type}::text[], ${e.content}::text[], ${e.parentId}::text[],
          ${e.clientId}::text[], ${e.sentAt}::timestamptz[], ${e.search}::text[])
          as v(id, room_id, seq, sender_id, sender_contact_id, type, content, parent_id, client_id, sent_at, search)
        returning ${sql.raw(EVENT_COLUMNS.join(", "))}
      ), o as (
        insert into outbox (event_id, room_id, seq, origin, trace)
        select e.id, e.room_id, e.seq, ${this.sink?.origin ?? ""}::text, ${this.trace ?? null}::text from e order by e.seq
        returning id, event_id
      ), r as (
        update rooms set last_seq = v.last_seq, members_seq = v.members_seq
        from unnest(${moved.map((m) => m.id)}::text[], ${moved.map((m) => m.last)}::int8[],
          ${moved.map((m) => m.members)}::int8[]) as v(id, last_seq, members_seq)
        where rooms.id = v.id
      ), s as (
        update room_subscriptions as m set read_seq = v.seq
        from unnest(${marks.map((m) => m.roomId)}::text[], ${marks.map((m) => m.profileId)}::text[],
          ${marks.map((m) => m.seq)}::int8[]) as v(room_id, profile_id, seq)
        where m.room_id = v.room_id and m.profile_id = v.profile_id and m.read_seq < v.seq
      )
      select e.*, o.id as outbox_id from e join o on o.event_id = e.id`.execute(this.db);
    for (const [room, seq] of seqs) {
      room.last_seq = seq.last;
      room.members_seq = seq.members;
    }
    const byId = new Map<string, EventRow>();
    const committed: CommittedEvent[] = [];
    for (const { outbox_id, ...row } of rows) {
      byId.set(row.id, row as EventRow);
      committed.push(
        this.trace
          ? { outboxId: outbox_id, row: row as EventRow, trace: this.trace }
          : { outboxId: outbox_id, row: row as EventRow },
      );
    }
    if (this.sink) {
      committed.sort((a, b) => a.outboxId - b.outboxId);
      if (this.db.isTransaction) this.appended.push(...committed);
      else this.sink.committed(committed);
    }
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

// One lookup per client id: `client_id = any(...)` of a whole array let the planner search all of a
// sender's events in the room and filter them, slow for a sender of many messages.
async function readSenders(db: Db, wants: SenderWant[]): Promise<SenderRow[]> {
  const json = JSON.stringify(
    wants.map((w, n) => ({ n, room_id: w.roomId, sender_id: w.senderId, client_ids: w.clientIds })),
  );
  const { rows } = await sql<SenderRow>`
    select w.n, r.*, s.role as member_role,
      (select seen.last_seq from rooms seen where seen.id = r.id) as seen_seq,
      (select jsonb_strip_nulls(jsonb_object_agg(c.id, (select jsonb_build_array(e.id, e.seq) from room_events e
          where e.room_id = r.id and e.sender_id = w.sender_id and e.client_id = c.id)))
        from unnest(w.client_ids) as c(id)) as stored
    from jsonb_to_recordset(${json}::jsonb) as w(n int, room_id text, sender_id text, client_ids text[])
    join rooms r on r.id = w.room_id and r.deleted_at is null
    left join room_subscriptions s on s.room_id = r.id and s.profile_id = w.sender_id and s.state = 'active'
    order by r.id
    for update of r`.execute(db);
  return rows;
}
