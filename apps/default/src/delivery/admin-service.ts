import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type PushDeadLetter, PushDeadLetterSchema } from "@service-chat/api";
import {
  checkCount,
  checkId,
  checkLimit,
  decodeCursor,
  denied,
  encodeCursor,
  type Identity,
  precondition,
} from "@service-chat/core";
import { pageOf } from "../events/cursors.js";
import type { Page } from "../events/event-service.js";
import type { PushNotifier, PushPayload } from "./push.js";
import type { DeliveryStore } from "./store.js";

/** Operations for the profiles of ADMIN_PROFILE_IDS: the push dead letters. */
export class AdminService {
  constructor(
    private readonly store: DeliveryStore,
    private readonly admins: ReadonlySet<string>,
    private readonly push?: PushNotifier,
  ) {}

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
    push.replay(rows.map((r) => r.payload as unknown as PushPayload));
    return rows.map((r) => r.id);
  }

  private assertAdmin(caller: Identity): void {
    if (!this.admins.has(caller.profileId)) throw denied("only the profiles in ADMIN_PROFILE_IDS may do this");
  }
}
