import { newId } from "@service-chat/core";
import type { Insertable } from "kysely";
import { AuditStore } from "../audit/store.js";
import type { AccessStore } from "../authz/store.js";
import type { RoomRow, SubscriptionsTable } from "../db/schema.js";
import { type Db, likePattern, Store } from "../db/store.js";
import { EventStore, type OutboxSink } from "../events/store.js";

/** A new room's fields, metadata as JSON text. */
export type RoomFields = Pick<RoomRow, "type" | "name" | "description" | "creator_id"> & { metadata: string };
export type RoomChanges = Partial<
  Pick<RoomRow, "name" | "description" | "retention_max_age_sec" | "retention_max_events">
> & { metadata?: string };
export type NewMember = Insertable<SubscriptionsTable>;

export interface RoomSearchPage {
  profileId: string;
  /** Matched anywhere in the name or description, case-insensitively. */
  query?: string;
  /** The last id of the previous page: ids are time-ordered, pages go newest first. */
  beforeId?: string;
  limit: number;
}

/** Rooms: the room rows, and the first memberships of a room made with its members. */
export class RoomStore extends Store {
  /** The room lock and the room's system events, in this store's transaction. */
  readonly events: EventStore;
  readonly access: AccessStore;
  /** The audit log, in this store's transaction. */
  readonly audit: AuditStore;

  constructor(
    db: Db,
    private readonly sink?: OutboxSink,
  ) {
    super(db);
    this.events = new EventStore(db, sink);
    this.access = this.events.access;
    this.audit = new AuditStore(db);
  }

  protected override bind(tx: Db): this {
    return new RoomStore(tx, this.sink) as this;
  }

  override afterCommit(): void {
    this.events.afterCommit();
  }

  /** A new room (with a fresh id); `member_count` counts the members inserted with it. */
  insert(fields: RoomFields, memberCount: number): Promise<RoomRow> {
    return this.db
      .insertInto("rooms")
      .values({ id: newId(), ...fields, direct_key: null, member_count: memberCount })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** A new direct room of the pair `key`; undefined when the pair already has a live one. */
  insertDirect(fields: RoomFields, key: string): Promise<RoomRow | undefined> {
    return this.db
      .insertInto("rooms")
      .values({ id: newId(), ...fields, direct_key: key, member_count: 2 })
      .onConflict((oc) => oc.column("direct_key").doNothing())
      .returningAll()
      .executeTakeFirst();
  }

  /** The live direct room of the pair `key`. */
  findDirect(key: string): Promise<RoomRow | undefined> {
    return this.db
      .selectFrom("rooms")
      .selectAll()
      .where("direct_key", "=", key)
      .where("deleted_at", "is", null)
      .executeTakeFirst();
  }

  async insertMembers(members: NewMember[]): Promise<void> {
    await this.db.insertInto("room_subscriptions").values(members).execute();
  }

  /**
   * A page of the live rooms `profileId` is a member of and of every public channel, newest first,
   * each with the member's read marker (null where not a member); one row more than `limit`.
   */
  search(q: RoomSearchPage): Promise<(RoomRow & { read_seq: number | null })[]> {
    let query = this.db
      .selectFrom("rooms as r")
      .leftJoin("room_subscriptions as s", (j) =>
        j.onRef("s.room_id", "=", "r.id").on("s.profile_id", "=", q.profileId).on("s.state", "=", "active"),
      )
      .selectAll("r")
      .select("s.read_seq")
      .where("r.deleted_at", "is", null)
      .where((eb) => eb.or([eb("r.type", "=", "channel"), eb("s.profile_id", "is not", null)]))
      .orderBy("r.id", "desc")
      .limit(q.limit + 1);
    if (q.query) {
      const like = likePattern(q.query);
      query = query.where((eb) => eb.or([eb("r.name", "ilike", like), eb("r.description", "ilike", like)]));
    }
    if (q.beforeId) query = query.where("r.id", "<", q.beforeId);
    return query.execute();
  }

  update(roomId: string, changes: RoomChanges): Promise<RoomRow> {
    return this.db
      .updateTable("rooms")
      .set({ ...changes, updated_at: new Date() })
      .where("id", "=", roomId)
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** Deleted for everyone; the pair of a direct room may open a new one. */
  async markDeleted(roomId: string): Promise<void> {
    await this.db
      .updateTable("rooms")
      .set({ deleted_at: new Date(), direct_key: null, updated_at: new Date() })
      .where("id", "=", roomId)
      .execute();
  }
}
