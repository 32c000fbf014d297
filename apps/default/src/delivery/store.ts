import type { JsonValue } from "@bufbuild/protobuf";
import { newId } from "@service-chat/core";
import { sql } from "kysely";
import { AccessStore } from "../authz/store.js";
import type { EventRow, RoomRow } from "../db/schema.js";
import { type Db, Store } from "../db/store.js";
import { EVENT_COLUMNS } from "../events/store.js";

/** A room of a member, as Sync sees it from one device. */
export interface SyncRoom {
  room_id: string;
  joined_seq: number;
  last_seq: number;
  /** The room's first stored seq (retention deletes before it). */
  first_seq: number;
  /** What the device acknowledged (null: nothing yet, or no device). */
  delivered_seq: number | null;
}

/** Whose rooms a Sync reads: a profile, and the device whose acknowledged cursors count (none: none). */
export interface SyncReader {
  profileId: string;
  deviceId?: string | undefined;
}

/** Events of one room with `after < seq <= upTo`. */
export interface SeqRange {
  roomId: string;
  after: number;
  upTo: number;
}

/** An outbox row waiting to be published, with its event. */
export type OutboxRow = EventRow & { outbox_id: number; trace: string | null };

export interface DeadLetter {
  id: string;
  room_id: string;
  event_id: string;
  payload: JsonValue;
  attempts: number;
  last_error: string;
  created_at: Date;
}

/**
 * The delivery pipeline's SQL: device cursors and read markers, Sync's reads, who shares rooms
 * with whom, the outbox, fan-out's membership reads and the push dead letters.
 */
export class DeliveryStore extends Store {
  readonly access: AccessStore;

  constructor(db: Db) {
    super(db);
    this.access = new AccessStore(db);
  }

  // --- cursors, read markers, Sync ---

  /** The live rooms among `roomIds` that `profileId` is an active member of, with their last seq. */
  async activeRooms(profileId: string, roomIds: string[]): Promise<Map<string, Pick<RoomRow, "id" | "last_seq">>> {
    const rows = await this.db
      .selectFrom("room_subscriptions as s")
      .innerJoin("rooms as r", "r.id", "s.room_id")
      .select(["r.id", "r.last_seq"])
      .where("s.profile_id", "=", profileId)
      .where("s.state", "=", "active")
      .where("r.deleted_at", "is", null)
      .where("r.id", "in", roomIds)
      .execute();
    return new Map(rows.map((r) => [r.id, r]));
  }

  /** Moves a device's delivered cursors forward, never back; answers the cursors as stored. */
  moveCursors(
    profileId: string,
    deviceId: string,
    seqs: ReadonlyMap<string, number>,
  ): Promise<{ room_id: string; delivered_seq: number }[]> {
    return this.db
      .insertInto("device_cursors")
      .values(
        [...seqs].map(([room_id, seq]) => ({
          profile_id: profileId,
          device_id: deviceId,
          room_id,
          delivered_seq: seq,
        })),
      )
      .onConflict((oc) =>
        oc.columns(["profile_id", "device_id", "room_id"]).doUpdateSet({
          delivered_seq: sql`greatest(device_cursors.delivered_seq, excluded.delivered_seq)`,
          updated_at: sql`now()`,
        }),
      )
      .returning(["room_id", "delivered_seq"])
      .execute();
  }

  /** Moves a member's read marker forward, never back; answers the marker as stored. */
  async moveReadMarker(roomId: string, profileId: string, seq: number): Promise<number> {
    const row = await this.db
      .updateTable("room_subscriptions")
      .set({ read_seq: sql`greatest(read_seq, ${seq})`, updated_at: sql`now()` })
      .where("room_id", "=", roomId)
      .where("profile_id", "=", profileId)
      .returning(["read_seq"])
      .executeTakeFirstOrThrow();
    return row.read_seq;
  }

  /**
   * For each reader (a profile, and the device whose cursors count), every live room it is an
   * active member of, in id order, with the device's cursor in it: one statement for all of them.
   * `reader` is the reader's index in `readers`.
   */
  async syncRooms(readers: readonly SyncReader[]): Promise<(SyncRoom & { reader: number })[]> {
    if (readers.length === 0) return [];
    // One index lookup per reader (LATERAL … OFFSET 0 keeps the planner from flattening it): the
    // same plan with statistics or without them (a fresh database, PGlite), where the flat join
    // once scanned every room's members for each reader (28 s for 200 readers among 5,000 rooms).
    const { rows } = await sql<SyncRoom & { reader: number }>`
      select (q.n - 1)::int as reader, x.room_id, x.joined_seq, x.last_seq, x.first_seq, x.delivered_seq
      from unnest(${readers.map((r) => r.profileId)}::text[], ${readers.map((r) => r.deviceId ?? "")}::text[])
        with ordinality as q(profile_id, device_id, n)
      cross join lateral (
        select s.room_id, s.joined_seq, r.last_seq, r.first_seq, d.delivered_seq
        from room_subscriptions s
        join rooms r on r.id = s.room_id and r.deleted_at is null
        left join device_cursors d on d.profile_id = s.profile_id and d.device_id = q.device_id and d.room_id = s.room_id
        where s.profile_id = q.profile_id and s.state = 'active'
        offset 0) x
      order by q.n, x.room_id`.execute(this.db);
    return rows;
  }

  /** The events of these ranges (which must not overlap), in one statement, in no particular order. */
  async eventsIn(ranges: readonly SeqRange[]): Promise<EventRow[]> {
    if (ranges.length === 0) return [];
    // One index range scan per range, with statistics or without them (see syncRooms).
    const { rows } = await sql<EventRow>`
      select ${sql.join(EVENT_COLUMNS.map((c) => sql.ref(`x.${c}`)))}
      from unnest(${ranges.map((g) => g.roomId)}::text[], ${ranges.map((g) => g.after)}::int8[],
        ${ranges.map((g) => g.upTo)}::int8[]) as g(room_id, after, up_to)
      cross join lateral (
        select ${sql.join(EVENT_COLUMNS.map((c) => sql.ref(`e.${c}`)))}
        from room_events e
        where e.room_id = g.room_id and e.seq > g.after and e.seq <= g.up_to
        offset 0) x`.execute(this.db);
    return rows;
  }

  // --- who is in which room ---

  /** The room's active members. */
  async memberIds(roomId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom("room_subscriptions")
      .select("profile_id")
      .where("room_id", "=", roomId)
      .where("state", "=", "active")
      .execute();
    return rows.map((r) => r.profile_id);
  }

  /**
   * The profiles sharing at least one room that is not deleted with `profileId` (both active
   * members), limited to `among` when given; `profileId` itself only when given in `among`.
   */
  async coMembers(profileId: string, among?: string[]): Promise<string[]> {
    let query = this.db
      .selectFrom("room_subscriptions as mine")
      .innerJoin("room_subscriptions as other", "other.room_id", "mine.room_id")
      .innerJoin("rooms", "rooms.id", "mine.room_id")
      .select("other.profile_id")
      .distinct()
      .where("mine.profile_id", "=", profileId)
      .where("mine.state", "=", "active")
      .where("other.state", "=", "active")
      .where("rooms.deleted_at", "is", null);
    query = among ? query.where("other.profile_id", "in", among) : query.where("other.profile_id", "!=", profileId);
    return (await query.execute()).map((r) => r.profile_id);
  }

  /** The room's active members' profile ids. */
  async activeMembers(roomId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom("room_subscriptions")
      .select("profile_id")
      .where("room_id", "=", roomId)
      .where("state", "=", "active")
      .execute();
    return rows.map((r) => r.profile_id);
  }

  /** The room's first stored seq (retention deletes before it); 1 for a room not found. */
  async firstSeq(roomId: string): Promise<number> {
    const row = await this.db.selectFrom("rooms").select("first_seq").where("id", "=", roomId).executeTakeFirst();
    return row?.first_seq ?? 1;
  }

  /** The room's system events from `seq` on, newest first (the membership changes are among them). */
  systemEventsFrom(roomId: string, seq: number): Promise<EventRow[]> {
    return this.db
      .selectFrom("room_events")
      .select(EVENT_COLUMNS)
      .where("room_id", "=", roomId)
      .where("seq", ">=", seq)
      .where("type", "=", "system")
      .orderBy("seq", "desc")
      .execute();
  }

  // --- the outbox ---

  /** The oldest unpublished outbox rows, in outbox order. */
  unpublished(limit: number): Promise<OutboxRow[]> {
    return this.db
      .selectFrom("outbox as o")
      .innerJoin("room_events as e", "e.id", "o.event_id")
      .select(["o.id as outbox_id", "o.trace", ...EVENT_COLUMNS.map((c) => `e.${c}` as const)])
      .where("o.published_at", "is", null)
      .orderBy("o.id")
      .limit(limit)
      .execute();
  }

  async markPublished(outboxIds: number[]): Promise<void> {
    // One array parameter: the same statement text whatever the number of rows.
    await this.db
      .updateTable("outbox")
      .set({ published_at: sql`now()` })
      .where("id", "=", sql<number>`any(${outboxIds}::int8[])`)
      .execute();
  }

  /** Deletes rows published before `before`; answers how many rows wait to be published. */
  async prunePublished(before: Date): Promise<number> {
    await this.db.deleteFrom("outbox").where("published_at", "<", before).execute();
    const backlog = await this.db
      .selectFrom("outbox")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("published_at", "is", null)
      .executeTakeFirstOrThrow();
    return Number(backlog.n);
  }

  // --- push retries ---

  /** Keeps a notification for another attempt at `dueAt`; `id` given: the claimed row, updated. */
  async savePushRetry(retry: {
    id?: string;
    room_id: string;
    event_id: string;
    payload: unknown;
    attempts: number;
    last_error: string;
    dueAt: Date;
  }): Promise<void> {
    const { id, dueAt, payload, ...rest } = retry;
    const values = { ...rest, payload: JSON.stringify(payload), due_at: dueAt };
    if (id) await this.db.updateTable("push_retries").set(values).where("id", "=", id).execute();
    else
      await this.db
        .insertInto("push_retries")
        .values({ id: newId(), ...values })
        .execute();
  }

  /**
   * Claims up to `limit` retries that are due, for `leaseMs`: their due time moves that far ahead,
   * so no other process takes them meanwhile and a process that dies leaves them to come due again.
   */
  async claimPushRetries(
    limit: number,
    leaseMs: number,
  ): Promise<{ id: string; payload: unknown; attempts: number }[]> {
    const due = this.db
      .selectFrom("push_retries")
      .select("id")
      .where("due_at", "<=", new Date())
      .orderBy("due_at")
      .limit(limit)
      .forUpdate()
      .skipLocked();
    return this.db
      .updateTable("push_retries")
      .set({ due_at: new Date(Date.now() + leaseMs) })
      .where("id", "in", due)
      .returning(["id", "payload", "attempts"])
      .execute();
  }

  async deletePushRetry(id: string): Promise<void> {
    await this.db.deleteFrom("push_retries").where("id", "=", id).execute();
  }

  // --- push dead letters ---

  /** Keeps a notification given up on; answers how many are kept now. */
  async addDeadLetter(
    letter: Pick<DeadLetter, "room_id" | "event_id" | "attempts" | "last_error"> & { payload: unknown },
  ): Promise<number> {
    await this.db
      .insertInto("push_dead_letters")
      .values({ id: newId(), ...letter, payload: JSON.stringify(letter.payload) })
      .execute();
    const count = await this.db
      .selectFrom("push_dead_letters")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(count.n);
  }

  /** A page of dead letters by id, after `afterId`, plus one row to tell whether there is more. */
  deadLetters(afterId: string | undefined, limit: number): Promise<DeadLetter[]> {
    let query = this.db
      .selectFrom("push_dead_letters")
      .selectAll()
      .orderBy("id")
      .limit(limit + 1);
    if (afterId) query = query.where("id", ">", afterId);
    return query.execute() as Promise<DeadLetter[]>;
  }

  /** Deletes these dead letters and answers them (those found). */
  takeDeadLetters(ids: string[]): Promise<DeadLetter[]> {
    return this.db.deleteFrom("push_dead_letters").where("id", "in", ids).returningAll().execute() as Promise<
      DeadLetter[]
    >;
  }
}
