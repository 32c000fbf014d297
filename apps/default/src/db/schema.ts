import type { ColumnType, Generated, Insertable, Selectable } from "kysely";
import type { EventKind } from "../events/kinds/index.js";

export type { EventKind };

/** The tables of migrations/, as Kysely sees them. */
export interface Schema {
  rooms: RoomsTable;
  room_subscriptions: SubscriptionsTable;
  room_events: EventsTable;
  outbox: OutboxTable;
  device_cursors: DeviceCursorsTable;
  devices: DevicesTable;
  push_dead_letters: DeadLettersTable;
  erasures: ErasuresTable;
  audit_log: AuditLogTable;
  push_retries: PushRetriesTable;
}

export type RoomKind = "direct" | "group" | "channel";
export type Role = "owner" | "admin" | "moderator" | "member" | "guest";
type Json = ColumnType<Record<string, unknown>, string | Record<string, unknown>, string | Record<string, unknown>>;
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface RoomsTable {
  id: string;
  type: RoomKind;
  name: Generated<string>;
  description: Generated<string>;
  metadata: Json;
  creator_id: string;
  direct_key: string | null;
  last_seq: Generated<number>;
  member_count: Generated<number>;
  members_seq: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: Date | null;
  /** The room's own retention (null: the deployment's default; 0: for ever): migration 0008. */
  retention_max_age_sec: number | null;
  retention_max_events: number | null;
  /** The first seq still stored (retention deletes from the start). */
  first_seq: Generated<number>;
}

export interface SubscriptionsTable {
  room_id: string;
  profile_id: string;
  contact_id: Generated<string>;
  profile_name: Generated<string>;
  role: Role;
  state: Generated<"active" | "removed">;
  joined_at: Timestamp;
  joined_seq: Generated<number>;
  read_seq: Generated<number>;
  settings: Json;
  updated_at: Timestamp;
  left_seq: number | null;
}

export interface EventsTable {
  id: string;
  room_id: string;
  seq: number;
  sender_id: string;
  sender_contact_id: Generated<string>;
  type: EventKind;
  content: Json;
  parent_id: string | null;
  client_id: string | null;
  edited: Generated<boolean>;
  redacted: Generated<boolean>;
  sent_at: Timestamp;
  server_ts: Timestamp;
  search: ColumnType<unknown, unknown, unknown>;
}

export interface OutboxTable {
  id: Generated<number>;
  event_id: string;
  room_id: string;
  seq: number;
  /** The relay of the process that wrote the row ('' when it has none): see migration 0005. */
  origin: Generated<string>;
  created_at: Timestamp;
  published_at: Date | null;
  /** The traceparent of the storing transaction (tracing on): see migration 0009. */
  trace: Generated<string | null>;
}

export interface DeviceCursorsTable {
  profile_id: string;
  device_id: string;
  room_id: string;
  delivered_seq: number;
  updated_at: Timestamp;
}

export interface DevicesTable {
  profile_id: string;
  device_id: string;
  last_seen: Timestamp;
  push: Json;
}

export interface DeadLettersTable {
  id: string;
  room_id: string;
  event_id: string;
  payload: Json;
  attempts: number;
  last_error: string;
  created_at: Timestamp;
}

/** A person erased (migration 0008): the record, and where a resumed erasure finds its counts. */
export interface ErasuresTable {
  profile_id: string;
  requested_by: string;
  requested_at: Timestamp;
  completed_at: Date | null;
  events_redacted: Generated<number>;
  rooms_left: Generated<number>;
  direct_rooms_closed: Generated<number>;
}

export interface AuditLogTable {
  id: string;
  created_at: Generated<Date>;
  actor_id: string;
  action: string;
  room_id: string | null;
  targets: ColumnType<string[], string, never>;
  details: ColumnType<Record<string, unknown>, string, never>;
  request_id: string;
}

export interface PushRetriesTable {
  id: string;
  room_id: string;
  event_id: string;
  payload: Json;
  attempts: number;
  last_error: string;
  due_at: Timestamp;
}

export type RoomRow = Selectable<RoomsTable>;
export type SubscriptionRow = Selectable<SubscriptionsTable>;
export type EventRow = Omit<Selectable<EventsTable>, "search">;
export type NewEventRow = Insertable<EventsTable>;
