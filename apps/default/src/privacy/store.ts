import { sql } from "kysely";
import { AuditStore } from "../audit/store.js";
import type { EventRow, RoomRow, SubscriptionRow } from "../db/schema.js";
import { type Db, Store } from "../db/store.js";
import { EVENT_COLUMNS, EventStore, type OutboxSink } from "../events/store.js";

export interface ErasureRow {
  profile_id: string;
  requested_by: string;
  requested_at: Date;
  completed_at: Date | null;
  events_redacted: number;
  rooms_left: number;
  direct_rooms_closed: number;
}

/** A position in a person's events: they are walked by (room, seq). */
export interface EventPosition {
  roomId: string;
  seq: number;
}

export type Membership = SubscriptionRow & Pick<RoomRow, "type" | "name" | "deleted_at">;

/**
 * The SQL of a person's data: what an erasure changes and deletes, and what an export reads.
 * Every write is idempotent (it finds nothing left to do the second time), so an erasure that
 * stopped half way is finished by running it again.
 */
export class PersonStore extends Store {
  /** The room lock and the membership system events, in this store's transaction. */
  readonly events: EventStore;
  /** The audit log, in this store's transaction. */
  readonly audit: AuditStore;

  constructor(
    db: Db,
    private readonly sink?: OutboxSink,
  ) {
    super(db);
    this.events = new EventStore(db, sink);
    this.audit = new AuditStore(db);
  }

  protected override bind(tx: Db): this {
    return new PersonStore(tx, this.sink) as this;
  }

  override afterCommit(): void {
    this.events.afterCommit();
  }

  // --- the erasure record ---

  /** The person's erasure record, made by this call if there was none (then answers true too). */
  async startErasure(profileId: string, requestedBy: string): Promise<{ record: ErasureRow; made: boolean }> {
    const made = await this.db
      .insertInto("erasures")
      .values({ profile_id: profileId, requested_by: requestedBy })
      .onConflict((oc) => oc.column("profile_id").doNothing())
      .executeTakeFirst();
    return {
      record: (await this.erasure(profileId)) as ErasureRow,
      made: Number(made.numInsertedOrUpdatedRows ?? 0n) > 0,
    };
  }

  erasure(profileId: string): Promise<ErasureRow | undefined> {
    return this.db.selectFrom("erasures").selectAll().where("profile_id", "=", profileId).executeTakeFirst();
  }

  /** Adds this step's counts to the record. */
  async countErasure(profileId: string, counts: { events?: number; rooms?: number; direct?: number }): Promise<void> {
    await this.db
      .updateTable("erasures")
      .set((eb) => ({
        events_redacted: eb("events_redacted", "+", counts.events ?? 0),
        rooms_left: eb("rooms_left", "+", counts.rooms ?? 0),
        direct_rooms_closed: eb("direct_rooms_closed", "+", counts.direct ?? 0),
      }))
      .where("profile_id", "=", profileId)
      .execute();
  }

  /** Erasures requested more than `graceSec` ago and not completed, oldest first. */
  unfinishedErasures(graceSec: number, limit: number): Promise<ErasureRow[]> {
    return this.db
      .selectFrom("erasures")
      .selectAll()
      .where("completed_at", "is", null)
      .where(sql<boolean>`requested_at < now() - make_interval(secs => ${graceSec})`)
      .orderBy("requested_at")
      .limit(limit)
      .execute();
  }

  async completeErasure(profileId: string): Promise<ErasureRow> {
    return this.db
      .updateTable("erasures")
      .set({ completed_at: new Date() })
      .where("profile_id", "=", profileId)
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  // --- memberships ---

  /** Up to `limit` rooms (live ones) the person is an active member of. */
  async activeRoomIds(profileId: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom("room_subscriptions as s")
      .innerJoin("rooms as r", "r.id", "s.room_id")
      .select("s.room_id")
      .where("s.profile_id", "=", profileId)
      .where("s.state", "=", "active")
      .where("r.deleted_at", "is", null)
      .orderBy("s.room_id")
      .limit(limit)
      .execute();
    return rows.map((r) => r.room_id);
  }

  async isActiveMember(roomId: string, profileId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom("room_subscriptions")
      .select("profile_id")
      .where("room_id", "=", roomId)
      .where("profile_id", "=", profileId)
      .where("state", "=", "active")
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Marks the membership removed (its removal event is the room's next seq) and counts it out. */
  async removeMember(room: RoomRow, profileId: string): Promise<void> {
    await this.db
      .updateTable("room_subscriptions")
      .set({ state: "removed", left_seq: room.last_seq + 1, updated_at: new Date() })
      .where("room_id", "=", room.id)
      .where("profile_id", "=", profileId)
      .execute();
    await this.db
      .updateTable("rooms")
      .set((eb) => ({ member_count: eb("member_count", "-", 1) }))
      .where("id", "=", room.id)
      .execute();
  }

  /**
   * When the room has active members but no owner left: the one to become owner — the highest
   * role, then the longest in the room. Undefined when an owner remains or nobody does.
   */
  async successor(roomId: string): Promise<{ profile_id: string; role: string } | undefined> {
    const { rows } = await sql<{ profile_id: string; role: string }>`
      select profile_id, role from room_subscriptions
      where room_id = ${roomId} and state = 'active'
        and not exists (select 1 from room_subscriptions o where o.room_id = ${roomId} and o.state = 'active' and o.role = 'owner')
      order by array_position(array['admin', 'moderator', 'member', 'guest'], role), joined_at, profile_id
      limit 1`.execute(this.db);
    return rows[0];
  }

  async makeOwner(roomId: string, profileId: string): Promise<void> {
    await this.db
      .updateTable("room_subscriptions")
      .set({ role: "owner", updated_at: new Date() })
      .where("room_id", "=", roomId)
      .where("profile_id", "=", profileId)
      .execute();
  }

  /** Deleted for both people, as DeleteRoom does: the pair may open a new one. */
  async closeRoom(roomId: string): Promise<void> {
    await this.db
      .updateTable("rooms")
      .set({ deleted_at: new Date(), direct_key: null, updated_at: new Date() })
      .where("id", "=", roomId)
      .execute();
  }

  // --- events ---

  /** The ids of the person's events after `after`, by (room, seq), at most `limit`. */
  async eventIdsAfter(
    profileId: string,
    after: EventPosition | undefined,
    limit: number,
  ): Promise<(EventPosition & { id: string })[]> {
    let query = this.db
      .selectFrom("room_events")
      .select(["id", "room_id", "seq"])
      .where("sender_id", "=", profileId)
      .orderBy("room_id")
      .orderBy("seq")
      .limit(limit);
    if (after) query = query.where(sql<boolean>`(room_id, seq) > (${after.roomId}, ${after.seq}::int8)`);
    const rows = await query.execute();
    return rows.map((r) => ({ id: r.id, roomId: r.room_id, seq: r.seq }));
  }

  /**
   * Empties these events to tombstones: no content, no search entry, no contact id, no client id;
   * id, room, seq, sender, kind and times stay, so seqs, replies and reactions still hold. System
   * events (room changes the person made) keep their content: it is ids and roles, and fan-out
   * rebuilds memberships from it. Answers how many were not tombstones yet.
   */
  async redactEvents(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.db
      .updateTable("room_events")
      .set({ content: "{}", redacted: true, search: null, sender_contact_id: "", client_id: null })
      .where("id", "in", ids)
      .where("type", "!=", "system")
      .where((eb) =>
        eb.or([
          eb("redacted", "=", false),
          eb(sql`content::text`, "!=", "{}"),
          eb("sender_contact_id", "!=", ""),
          eb("client_id", "is not", null),
        ]),
      )
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  // --- what is deleted outright ---

  /**
   * Deletes the person's memberships (read markers, contact id and name with them), device
   * cursors, devices (push tokens) and the push dead letters of their events; takes them off the
   * recipients of the others' dead letters.
   */
  async deleteRows(profileId: string): Promise<void> {
    await this.db.deleteFrom("room_subscriptions").where("profile_id", "=", profileId).execute();
    await this.db.deleteFrom("device_cursors").where("profile_id", "=", profileId).execute();
    await this.db.deleteFrom("devices").where("profile_id", "=", profileId).execute();
    await this.db.deleteFrom("push_dead_letters").where(sql<boolean>`payload->>'sender' = ${profileId}`).execute();
    await sql`update push_dead_letters
      set payload = jsonb_set(payload, '{recipients}', (payload->'recipients') - ${profileId}::text)
      where payload->'recipients' ? ${profileId}::text`.execute(this.db);
    await sql`delete from push_dead_letters where jsonb_array_length(payload->'recipients') = 0`.execute(this.db);
  }

  // --- export ---

  /** Every membership of the person (active or removed), with its room's kind and name. */
  memberships(profileId: string): Promise<Membership[]> {
    return this.db
      .selectFrom("room_subscriptions as s")
      .innerJoin("rooms as r", "r.id", "s.room_id")
      .selectAll("s")
      .select(["r.type", "r.name", "r.deleted_at"])
      .where("s.profile_id", "=", profileId)
      .orderBy("s.room_id")
      .execute();
  }

  roomsCreated(profileId: string): Promise<RoomRow[]> {
    return this.db.selectFrom("rooms").selectAll().where("creator_id", "=", profileId).orderBy("id").execute();
  }

  /** A page of the person's events after `after`, by (room, seq). */
  async eventsAfter(profileId: string, after: EventPosition | undefined, limit: number): Promise<EventRow[]> {
    let query = this.db
      .selectFrom("room_events")
      .select(EVENT_COLUMNS)
      .where("sender_id", "=", profileId)
      .orderBy("room_id")
      .orderBy("seq")
      .limit(limit);
    if (after) query = query.where(sql<boolean>`(room_id, seq) > (${after.roomId}, ${after.seq}::int8)`);
    return query.execute();
  }

  devices(profileId: string) {
    return this.db.selectFrom("devices").selectAll().where("profile_id", "=", profileId).orderBy("device_id").execute();
  }

  cursors(profileId: string) {
    return this.db
      .selectFrom("device_cursors")
      .selectAll()
      .where("profile_id", "=", profileId)
      .orderBy("device_id")
      .orderBy("room_id")
      .execute();
  }

  /** Dead letters of the person's events or addressed to them. */
  async deadLetters(profileId: string) {
    const { rows } = await sql<{ id: string; room_id: string; event_id: string; created_at: Date; sender: boolean }>`
      select id, room_id, event_id, created_at, payload->>'sender' = ${profileId} as sender
      from push_dead_letters
      where payload->>'sender' = ${profileId} or payload->'recipients' ? ${profileId}::text
      order by id`.execute(this.db);
    return rows;
  }
}
