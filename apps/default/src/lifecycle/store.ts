import { sql } from "kysely";
import type { RoomRow } from "../db/schema.js";
import { Store } from "../db/store.js";
import type { RetentionDefaults } from "./retention.js";

/** One room's state as a purge step sees it, under the room's lock. */
export interface PurgeView {
  room: RoomRow;
  firstYoungSeq?: number;
  firstUnpublishedSeq?: number;
}

/** The SQL of retention: which rooms have something to delete, and deleting it in bounded steps. */
export class RetentionStore extends Store {
  /**
   * Rooms (deleted ones included) holding events their policy no longer keeps, in id order after
   * `afterId`: more stored than `maxEvents`, or a first stored event older than `maxAgeSec`.
   */
  async roomsToPurge(defaults: RetentionDefaults, afterId: string, limit: number): Promise<string[]> {
    const { rows } = await sql<{ id: string }>`
      select r.id from rooms r
      where r.id > ${afterId} and r.first_seq <= r.last_seq and (
        (coalesce(r.retention_max_events, ${defaults.maxEvents}::int8) > 0
          and r.last_seq - r.first_seq + 1 > coalesce(r.retention_max_events, ${defaults.maxEvents}::int8))
        or (coalesce(r.retention_max_age_sec, ${defaults.maxAgeSec}::int8) > 0 and exists (
          select 1 from room_events e where e.room_id = r.id and e.seq = r.first_seq
            and e.server_ts < now() - make_interval(secs => coalesce(r.retention_max_age_sec, ${defaults.maxAgeSec}::int8)))))
      order by r.id
      limit ${limit}`.execute(this.db);
    return rows.map((r) => r.id);
  }

  /**
   * Locks the room (every writer of the room waits for it, so the range cannot move meanwhile) and
   * reads what `purgeUpTo` needs: the first event younger than the room's maximum age (when it has
   * one) and the first one not yet published.
   */
  async lockForPurge(roomId: string, maxAgeOf: (room: RoomRow) => number): Promise<PurgeView | undefined> {
    const room = await this.db.selectFrom("rooms").selectAll().where("id", "=", roomId).forUpdate().executeTakeFirst();
    if (!room) return undefined;
    const maxAgeSec = maxAgeOf(room);
    const young =
      maxAgeSec > 0
        ? await this.db
            .selectFrom("room_events")
            .select("seq")
            .where("room_id", "=", roomId)
            .where("seq", ">=", room.first_seq)
            .where(sql<boolean>`server_ts >= now() - make_interval(secs => ${maxAgeSec}::int8)`)
            .orderBy("seq")
            .limit(1)
            .executeTakeFirst()
        : undefined;
    const waiting = await this.db
      .selectFrom("outbox")
      .select((eb) => eb.fn.min<number | null>("seq").as("seq"))
      .where("room_id", "=", roomId)
      .where("published_at", "is", null)
      .executeTakeFirst();
    return {
      room,
      ...(young ? { firstYoungSeq: young.seq } : {}),
      ...(waiting?.seq != null ? { firstUnpublishedSeq: Number(waiting.seq) } : {}),
    };
  }

  /** Deletes the room's events up to `upTo` (their search entries are in the same rows) and moves first_seq past them. */
  async deleteUpTo(room: RoomRow, upTo: number): Promise<number> {
    const deleted = await this.db
      .deleteFrom("room_events")
      .where("room_id", "=", room.id)
      .where("seq", ">=", room.first_seq)
      .where("seq", "<=", upTo)
      .executeTakeFirst();
    await this.db
      .updateTable("rooms")
      .set({ first_seq: upTo + 1 })
      .where("id", "=", room.id)
      .execute();
    return Number(deleted.numDeletedRows);
  }
}

/** Tables whose planner statistics the send, Sync and history queries depend on. */
const ANALYZED = [
  // The columns the plans depend on: content and the search vector are the costly ones to sample.
  "room_events (id, room_id, seq, sender_id, client_id, server_ts)",
  "rooms",
  "room_subscriptions",
  "device_cursors",
  "devices",
] as const;

/**
 * Tables every message updates or deletes rows of (the room's last seq, the sender's read marker,
 * the outbox row, cursors): vacuumed where nothing else does it (the embedded database).
 */
const CHURNED = ["outbox", "rooms", "room_subscriptions", "device_cursors", "devices", "push_retries"] as const;

/** The SQL of table upkeep: how much was written, and ANALYZE / VACUUM. */
export class UpkeepStore extends Store {
  /** Events stored so far: the outbox's id sequence, one per event (never goes back). */
  async eventsWritten(): Promise<number> {
    const { rows } = await sql<{ n: string }>`select last_value as n from outbox_id_seq`.execute(this.db);
    return Number(rows[0]?.n ?? 0);
  }

  /** The planner's row count of room_events: -1 while it was never analyzed. */
  async eventRowsEstimate(): Promise<number> {
    const { rows } = await sql<{ n: number }>`
      select reltuples::float8 as n from pg_class where oid = 'room_events'::regclass`.execute(this.db);
    return Number(rows[0]?.n ?? -1);
  }

  async analyze(): Promise<void> {
    await sql`analyze ${sql.raw(ANALYZED.join(", "))}`.execute(this.db);
  }

  async vacuum(): Promise<void> {
    await sql`vacuum ${sql.raw(CHURNED.join(", "))}`.execute(this.db);
  }
}
