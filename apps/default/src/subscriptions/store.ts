import { type Insertable, sql } from "kysely";
import { AuditStore } from "../audit/store.js";
import type { AccessStore } from "../authz/store.js";
import type { Role, SubscriptionRow, SubscriptionsTable } from "../db/schema.js";
import { type Db, likePattern, Store } from "../db/store.js";
import { EventStore, type OutboxSink } from "../events/store.js";

export type NewSubscription = Insertable<SubscriptionsTable>;

export interface MemberSearchPage {
  roomId: string;
  /** Matched anywhere in the profile id, contact id or name, case-insensitively. */
  query?: string;
  /** The last profile id of the previous page. */
  afterProfileId?: string;
  limit: number;
}

/** Memberships (room_subscriptions) and each room's member count. */
export class SubscriptionStore extends Store {
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
    return new SubscriptionStore(tx, this.sink) as this;
  }

  override afterCommit(): void {
    this.events.afterCommit();
  }

  /** The memberships (active or removed) of these profiles in the room, by profile id. */
  async byProfiles(roomId: string, profileIds: string[]): Promise<Map<string, SubscriptionRow>> {
    if (profileIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom("room_subscriptions")
      .selectAll()
      .where("room_id", "=", roomId)
      .where("profile_id", "in", profileIds)
      .execute();
    return new Map(rows.map((r) => [r.profile_id, r]));
  }

  /** Makes these memberships active: new rows, or removed ones coming back with the values given. */
  upsertActive(rows: NewSubscription[]): Promise<SubscriptionRow[]> {
    return this.db
      .insertInto("room_subscriptions")
      .values(rows)
      .onConflict((oc) =>
        oc.columns(["room_id", "profile_id"]).doUpdateSet((eb) => ({
          state: "active",
          role: eb.ref("excluded.role"),
          contact_id: eb.ref("excluded.contact_id"),
          profile_name: eb.ref("excluded.profile_name"),
          joined_at: sql`now()`,
          joined_seq: eb.ref("excluded.joined_seq"),
          left_seq: null,
          read_seq: eb.ref("excluded.read_seq"),
          updated_at: sql`now()`,
        })),
      )
      .returningAll()
      .execute();
  }

  /** Marks memberships removed; `leftSeq` is the last event delivered to them (their removal). */
  async markRemoved(roomId: string, profileIds: string[], leftSeq: number): Promise<void> {
    await this.db
      .updateTable("room_subscriptions")
      .set({ state: "removed", left_seq: leftSeq, updated_at: new Date() })
      .where("room_id", "=", roomId)
      .where("profile_id", "in", profileIds)
      .execute();
  }

  async addToMemberCount(roomId: string, delta: number): Promise<void> {
    await this.db
      .updateTable("rooms")
      .set((eb) => ({ member_count: eb("member_count", "+", delta) }))
      .where("id", "=", roomId)
      .execute();
  }

  setRole(roomId: string, profileId: string, role: Role): Promise<SubscriptionRow> {
    return this.db
      .updateTable("room_subscriptions")
      .set({ role, updated_at: new Date() })
      .where("room_id", "=", roomId)
      .where("profile_id", "=", profileId)
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  async countOwners(roomId: string): Promise<number> {
    const row = await this.db
      .selectFrom("room_subscriptions")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("room_id", "=", roomId)
      .where("role", "=", "owner")
      .where("state", "=", "active")
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** A page of the room's active members by profile id, plus one row to tell whether there is more. */
  search(q: MemberSearchPage): Promise<SubscriptionRow[]> {
    let query = this.db
      .selectFrom("room_subscriptions")
      .selectAll()
      .where("room_id", "=", q.roomId)
      .where("state", "=", "active")
      .orderBy("profile_id")
      .limit(q.limit + 1);
    if (q.query) {
      const like = likePattern(q.query);
      query = query.where((eb) =>
        eb.or([eb("profile_id", "ilike", like), eb("contact_id", "ilike", like), eb("profile_name", "ilike", like)]),
      );
    }
    if (q.afterProfileId) query = query.where("profile_id", ">", q.afterProfileId);
    return query.execute();
  }
}
