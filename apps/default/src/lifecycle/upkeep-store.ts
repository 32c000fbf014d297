import { sql } from "kysely";
import { Store } from "../db/store.js";

/** Tables whose planner statistics the send, Sync and history queries depend on. */
const ANALYZED = ["room_events", "outbox", "rooms", "room_subscriptions", "device_cursors", "devices"] as const;

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
