import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type AuditEntry, AuditEntrySchema, type PushDeadLetter, PushDeadLetterSchema } from "@service-chat/api";
import {
  checkCount,
  checkId,
  checkLimit,
  checkProfileId,
  decodeCursor,
  denied,
  encodeCursor,
  type Identity,
  invalid,
  precondition,
} from "@service-chat/core";
import type { AuditStore } from "../audit/store.js";
import { pageOf } from "../events/cursors.js";
import type { Page } from "../events/event-service.js";
import type { PushNotifier, PushPayload } from "./push.js";
import type { DeliveryStore } from "./store.js";

export interface AuditFilter {
  cursor: string;
  limit: number;
  roomId: string;
  actorId: string;
  action: string;
}

/** Operations for the profiles of ADMIN_PROFILE_IDS: the push dead letters and the audit log. */
export class AdminService {
  constructor(
    private readonly store: DeliveryStore,
    private readonly audit: AuditStore,
    private readonly admins: ReadonlySet<string>,
    private readonly push?: PushNotifier,
  ) {}

  /** The audit log, newest first, optionally of one room, actor or action. */
  async listAudit(caller: Identity, f: AuditFilter): Promise<Page<AuditEntry>> {
    this.assertAdmin(caller);
    const n = checkLimit("limit", f.limit, 50, 500);
    if (f.roomId) checkId("room_id", f.roomId);
    if (f.actorId) checkProfileId("actor_id", f.actorId);
    if (f.action && !/^[a-z_]+\.[a-z_]+$/.test(f.action)) {
      throw invalid("action", "must be an action name like room.created (docs/operability.md)");
    }
    const before = decodeCursor("cursor", f.cursor, { id: "string" });
    const rows = await this.audit.page({
      limit: n,
      ...(before ? { beforeId: before.id } : {}),
      ...(f.roomId ? { roomId: f.roomId } : {}),
      ...(f.actorId ? { actorId: f.actorId } : {}),
      ...(f.action ? { action: f.action } : {}),
    });
    const { page, nextCursor } = pageOf(rows, n, (last) => encodeCursor({ id: last.id }));
    return {
      items: page.map((r) =>
        create(AuditEntrySchema, {
          id: r.id,
          createdAt: timestampFromDate(r.created_at),
          actorId: r.actor_id,
          action: r.action,
          roomId: r.room_id ?? "",
          targets: r.targets,
          detailsJson: JSON.stringify(r.details),
          requestId: r.request_id,
        }),
      ),
      nextCursor,
    };
  }

  async listDeadLetters(caller: Identity, cursor: string, limit: number): Promise<Page<PushDeadLetter>> {
    this.assertAdmin(caller);
    const n = checkLimit("limit", limit, 50, 100);
    const after = decodeCursor("cursor", cursor, { id: "string" });
    const rows = await this.store.deadLetters(after?.id, n);
    const { page, nextCursor } = pageOf(rows, n, (last) => encodeCursor({ id: last.id }));
    return {
      items: page.map((r) =>
        create(PushDeadLetterSchema, {
          id: r.id,
          roomId: r.room_id,
          eventId: r.event_id,
          recipients: (r.payload as unknown as PushPayload).recipients,
          attempts: r.attempts,
          lastError: r.last_error,
          createdAt: timestampFromDate(r.created_at),
        }),
      ),
      nextCursor,
    };
  }

  /** Takes dead letters out of the table and sends them again; answers the ids found. */
  async replayDeadLetters(caller: Identity, ids: string[]): Promise<string[]> {
    this.assertAdmin(caller);
    checkCount("ids", ids.length, 1000, 1);
    for (const [i, id] of ids.entries()) checkId(`ids[${i}]`, id);
    const push = this.push;
    if (!push) throw precondition("push notifications are not configured here (PUSH_WEBHOOK_URL)");
    const rows = await this.store.takeDeadLetters(ids);
    if (rows.length > 0) {
      await this.audit.record([
        { actorId: caller.profileId, action: "push.dead_letters_replayed", targets: rows.map((r) => r.id) },
      ]);
    }
    push.replay(rows.map((r) => r.payload as unknown as PushPayload));
    return rows.map((r) => r.id);
  }

  private assertAdmin(caller: Identity): void {
    if (!this.admins.has(caller.profileId)) throw denied("only the profiles in ADMIN_PROFILE_IDS may do this");
  }
}
