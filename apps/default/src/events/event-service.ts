import { create } from "@bufbuild/protobuf";
import { type AckEvent, AckEventSchema, Direction, type RoomEvent } from "@service-chat/api";
import {
  checkCount,
  checkId,
  checkLimit,
  checkText,
  decodeCursor,
  encodeCursor,
  type Identity,
  invalid,
} from "@service-chat/core";
import { sql } from "kysely";
import { requireAccess } from "../authz/access.js";
import type { EventRow } from "../db/schema.js";
import { GroupCommitter } from "./committer.js";
import { presentEvent } from "./present.js";
import { fail, type Indexed, type SendJob, storeSends } from "./send-batch.js";
import { type Db, EVENT_COLUMNS } from "./store.js";
import { MAX_EVENTS_PER_CALL, validateEvent } from "./validate.js";

export const MAX_PAGE = 100;
const DEFAULT_PAGE = 50;

export interface HistoryQuery {
  roomId: string;
  cursor: string;
  limit: number;
  direction: Direction;
}

export interface SearchQuery {
  query: string;
  roomId: string;
  cursor: string;
  limit: number;
}

export interface Page<T> {
  items: T[];
  nextCursor: string;
}

/** Messages: sending (validated, authorised, idempotent, dense seq), history and search. */
export class EventService {
  private readonly committer: GroupCommitter<SendJob, AckEvent[]>;

  constructor(private readonly db: Db) {
    this.committer = new GroupCommitter(db, storeSends);
  }

  /** The group committer's batches running and calls' jobs waiting (tests watch calls pile up with it). */
  get sendLoad(): { running: number; queued: number } {
    return this.committer.load;
  }

  /**
   * Stores up to 100 events and answers each with its own ack, in order. An event that is
   * refused gets an ack with an error; the others are stored all the same. The events of each
   * room are one job of the group committer: stored in a transaction shared with other calls.
   */
  async send(caller: Identity, events: RoomEvent[]): Promise<AckEvent[]> {
    checkCount("event", events.length, MAX_EVENTS_PER_CALL, 1);
    const acks: AckEvent[] = events.map((e) => create(AckEventSchema, { roomId: e.roomId, clientId: e.clientId }));
    const byRoom = new Map<string, Indexed[]>();
    events.forEach((e, index) => {
      try {
        const event = validateEvent(`event[${index}]`, e, caller.profileId);
        const group = byRoom.get(event.roomId) ?? [];
        group.push({ index, event });
        byRoom.set(event.roomId, group);
      } catch (err) {
        fail(acks[index] as AckEvent, err);
      }
    });
    await Promise.all(
      [...byRoom].map(async ([roomId, group]) => {
        const stored = await this.committer.run(roomId, group.length, { caller, roomId, group });
        group.forEach((g, i) => {
          acks[g.index] = stored[i] as AckEvent;
        });
      }),
    );
    return acks;
  }

  /** A page of a room's history, newest first unless `direction` is forward. */
  async history(caller: Identity, q: HistoryQuery): Promise<Page<RoomEvent>> {
    checkId("room_id", q.roomId);
    const limit = checkLimit("limit", q.limit, DEFAULT_PAGE, MAX_PAGE);
    if (!(q.direction in Direction)) throw invalid("direction", `${q.direction} is not a known value`);
    const forward = q.direction === Direction.FORWARD;
    const cursor = decodeCursor("cursor", q.cursor, { r: "string", d: "string", s: "number" });
    if (cursor && (cursor.r !== q.roomId || cursor.d !== (forward ? "f" : "b"))) {
      throw invalid("cursor", "was issued for another room or direction");
    }
    await requireAccess(this.db, q.roomId, caller.profileId, "room.read");
    let query = this.db
      .selectFrom("room_events")
      .select(EVENT_COLUMNS)
      .where("room_id", "=", q.roomId)
      .orderBy("seq", forward ? "asc" : "desc")
      .limit(limit + 1);
    if (cursor) query = query.where("seq", forward ? ">" : "<", cursor.s);
    const rows = await query.execute();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(presentEvent),
      nextCursor: rows.length > limit && last ? encodeCursor({ r: q.roomId, d: forward ? "f" : "b", s: last.seq }) : "",
    };
  }

  /** Full-text search over text in the rooms the caller belongs to, newest first. */
  async search(caller: Identity, q: SearchQuery): Promise<Page<RoomEvent>> {
    checkText("query", q.query, { maxBytes: 256, required: true });
    const limit = checkLimit("limit", q.limit, DEFAULT_PAGE, MAX_PAGE);
    const cursor = decodeCursor("cursor", q.cursor, { t: "number", s: "number", id: "string" });
    if (q.roomId) {
      checkId("room_id", q.roomId);
      await requireAccess(this.db, q.roomId, caller.profileId, "room.read");
    }
    let query = this.db
      .selectFrom("room_events as e")
      .innerJoin("room_subscriptions as s", (j) =>
        j.onRef("s.room_id", "=", "e.room_id").on("s.profile_id", "=", caller.profileId).on("s.state", "=", "active"),
      )
      .innerJoin("rooms as r", (j) => j.onRef("r.id", "=", "e.room_id").on("r.deleted_at", "is", null))
      .select(EVENT_COLUMNS.map((c) => `e.${c}` as const))
      .where(sql<boolean>`e.search @@ websearch_to_tsquery('simple', ${q.query})`)
      // Server time, then seq: ids of one millisecond are in random order.
      .orderBy("e.server_ts", "desc")
      .orderBy("e.seq", "desc")
      .orderBy("e.id", "desc")
      .limit(limit + 1);
    if (q.roomId) query = query.where("e.room_id", "=", q.roomId);
    if (cursor) {
      const after = sql`(${new Date(cursor.t)}::timestamptz, ${cursor.s}::bigint, ${cursor.id}::text)`;
      query = query.where(sql<boolean>`(e.server_ts, e.seq, e.id) < ${after}`);
    }
    const rows = (await query.execute()) as EventRow[];
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(presentEvent),
      nextCursor:
        rows.length > limit && last ? encodeCursor({ t: last.server_ts.getTime(), s: last.seq, id: last.id }) : "",
    };
  }
}
