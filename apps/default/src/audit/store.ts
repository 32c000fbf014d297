import { newId, requestContext } from "@service-chat/core";
import type { Selectable } from "kysely";
import type { AuditLogTable } from "../db/schema.js";
import { Store } from "../db/store.js";

export type AuditRow = Selectable<AuditLogTable>;

/** One administrative action, as the service that performed it describes it. */
export interface AuditRecord {
  actorId: string;
  /** What happened, e.g. `room.created` (docs/operability.md lists every action). */
  action: string;
  roomId?: string;
  /** The profiles (or other ids) the action was about. */
  targets?: string[];
  details?: Record<string, unknown>;
}

export interface AuditQuery {
  /** The last id of the previous page: pages go newest first. */
  beforeId?: string;
  roomId?: string;
  actorId?: string;
  action?: string;
  limit: number;
}

/**
 * The audit log (audit_log): written in the transaction of the action it records, read by
 * AdminService. Each row carries the request id of the call that caused it.
 */
export class AuditStore extends Store {
  async record(entries: AuditRecord[]): Promise<void> {
    if (entries.length === 0) return;
    const requestId = requestContext()?.requestId ?? "";
    await this.db
      .insertInto("audit_log")
      .values(
        entries.map((e) => ({
          id: newId(),
          actor_id: e.actorId,
          action: e.action,
          room_id: e.roomId ?? null,
          targets: JSON.stringify(e.targets ?? []),
          details: JSON.stringify(e.details ?? {}),
          request_id: requestId,
        })),
      )
      .execute();
  }

  /** A page of entries, newest first, one more than `limit`. */
  page(q: AuditQuery): Promise<AuditRow[]> {
    let query = this.db
      .selectFrom("audit_log")
      .selectAll()
      .orderBy("id", "desc")
      .limit(q.limit + 1);
    if (q.beforeId) query = query.where("id", "<", q.beforeId);
    if (q.roomId) query = query.where("room_id", "=", q.roomId);
    if (q.actorId) query = query.where("actor_id", "=", q.actorId);
    if (q.action) query = query.where("action", "=", q.action);
    return query.execute();
  }
}
