import { clone, create, toJson } from "@bufbuild/protobuf";
import { type AckEvent, AckEventSchema, Direction, ErrorDetailSchema, type RoomEvent } from "@service-chat/api";
import {
  AppError,
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
import { lockWithAccess, requireAccess } from "../authz/access.js";
import { can } from "../authz/permissions.js";
import type { EventRow, Role } from "../db/schema.js";
import { KINDS } from "./content.js";
import { presentEvent } from "./present.js";
import { appendEvents, type Db, EVENT_COLUMNS, findByClientIds, findEvents, type NewEvent, type Tx } from "./store.js";
import { MAX_EVENTS_PER_CALL, type ValidEvent, validateEvent } from "./validate.js";

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
  constructor(private readonly db: Db) {}

  /**
   * Stores up to 100 events and answers each with its own ack, in order. An event that is
   * refused gets an ack with an error; the others are stored all the same.
   */
  async send(caller: Identity, events: RoomEvent[]): Promise<AckEvent[]> {
    checkCount("event", events.length, MAX_EVENTS_PER_CALL, 1);
    const acks: AckEvent[] = events.map((e) => create(AckEventSchema, { roomId: e.roomId, clientId: e.clientId }));
    const byRoom = new Map<string, { index: number; event: ValidEvent }[]>();
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
    for (const [roomId, group] of byRoom) {
      await this.db.transaction().execute((trx) => this.sendToRoom(trx, caller, roomId, group, acks));
    }
    return acks;
  }

  private async sendToRoom(
    trx: Tx,
    caller: Identity,
    roomId: string,
    group: { index: number; event: ValidEvent }[],
    acks: AckEvent[],
  ): Promise<void> {
    try {
      const { room, role } = await lockWithAccess(trx, roomId, caller.profileId, "event.send");
      const clientIds = group.flatMap((g) => (g.event.clientId ? [g.event.clientId] : []));
      const earlier = await findByClientIds(trx, roomId, caller.profileId, clientIds);
      const referenced = group.flatMap((g) => [g.event.targetId, g.event.parentId].filter((x): x is string => !!x));
      const targets = await findEvents(trx, roomId, referenced);

      const toStore: { index: number; event: ValidEvent }[] = [];
      const sameAs = new Map<number, number>(); // a client id repeated inside the call
      const firstWithClientId = new Map<string, number>();
      for (const g of group) {
        const ack = acks[g.index] as AckEvent;
        const { clientId } = g.event;
        const stored = clientId ? earlier.get(clientId) : undefined;
        if (stored) {
          setStored(ack, stored);
          continue;
        }
        if (clientId && firstWithClientId.has(clientId)) {
          sameAs.set(g.index, firstWithClientId.get(clientId) as number);
          continue;
        }
        try {
          checkReferences(`event[${g.index}]`, g.event, caller.profileId, role, targets);
        } catch (err) {
          fail(ack, err);
          continue;
        }
        if (clientId) firstWithClientId.set(clientId, g.index);
        toStore.push(g);
        const redacted = g.event.kind === "redaction" ? targets.get(g.event.targetId as string) : undefined;
        if (redacted) targets.set(redacted.id, { ...redacted, redacted: true }); // later events of the call see it
      }

      const rows = await appendEvents(
        trx,
        room,
        toStore.map(({ event }) => toNewEvent(event, caller)),
        caller.profileId,
      );
      for (const [i, row] of rows.entries()) setStored(acks[(toStore[i] as { index: number }).index] as AckEvent, row);
      for (const [dup, first] of sameAs) acks[dup] = clone(AckEventSchema, acks[first] as AckEvent);
      await applyEffects(
        trx,
        toStore.map((g) => g.event),
      );
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      for (const g of group) fail(acks[g.index] as AckEvent, err);
    }
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

function fail(ack: AckEvent, err: unknown): void {
  if (!(err instanceof AppError)) throw err;
  ack.error = create(ErrorDetailSchema, { code: err.code, message: err.message });
}

function setStored(ack: AckEvent, row: EventRow): void {
  ack.eventId = row.id;
  ack.roomId = row.room_id;
  ack.seq = BigInt(row.seq);
  ack.clientId = row.client_id ?? "";
}

/** Rules for events that point at another event of the room. */
function checkReferences(f: string, e: ValidEvent, callerId: string, role: Role, events: Map<string, EventRow>): void {
  if (e.parentId && !events.has(e.parentId)) throw invalid(`${f}.parent_id`, "is not an event of this room");
  if (!e.targetId) return;
  const target = events.get(e.targetId);
  const field = `${f}.${e.kind}.target_event_id`;
  if (!target) throw invalid(field, "is not an event of this room");
  if (target.type === "system") throw invalid(field, "system events cannot be edited, redacted or reacted to");
  if (target.redacted) throw new AppError("failed_precondition", "the target event was redacted", field);
  if (e.kind === "edit") {
    if (target.type !== "text") throw invalid(field, "only text messages can be edited");
    if (target.sender_id !== callerId)
      throw new AppError("permission_denied", "only the sender can edit a message", field);
  }
  if (e.kind === "redaction" && target.sender_id !== callerId && !can(role, "event.redact_any")) {
    throw new AppError("permission_denied", "only the sender or a moderator can redact a message", field);
  }
}

function toNewEvent(e: ValidEvent, caller: Identity): NewEvent {
  const c = e.content;
  const searchText = c.case === "text" ? c.value.body : c.case === "attachment" ? attachmentText(c.value) : undefined;
  return {
    senderId: caller.profileId,
    senderContactId: caller.contactId,
    kind: e.kind,
    content: toJson(KINDS[e.kind].schema, c.value) as Record<string, unknown>,
    ...(e.parentId ? { parentId: e.parentId } : {}),
    ...(e.clientId ? { clientId: e.clientId } : {}),
    ...(e.sentAt ? { sentAt: e.sentAt } : {}),
    ...(searchText?.trim() ? { searchText } : {}),
  };
}

/** The filename whole and as words ("budget-2024.pdf" is one token to the parser), and the caption. */
function attachmentText(a: { filename: string; caption: string }): string {
  return `${a.filename} ${a.filename.replace(/[^\p{L}\p{N}]+/gu, " ")} ${a.caption}`;
}

/**
 * Edits replace the target's text; redactions empty the target and every edit of it, so no
 * version of the text stays readable. Both mark what they changed so history shows it.
 */
async function applyEffects(trx: Tx, events: ValidEvent[]): Promise<void> {
  for (const e of events) {
    if (e.content.case === "edit" && e.content.value.text) {
      const text = e.content.value.text;
      await trx
        .updateTable("room_events")
        .set({
          content: JSON.stringify(toJson(KINDS.text.schema, text)),
          edited: true,
          search: sql`to_tsvector('simple', ${text.body})`,
        })
        .where("id", "=", e.targetId as string)
        .execute();
    } else if (e.content.case === "redaction") {
      const target = e.targetId as string;
      await trx
        .updateTable("room_events")
        .set({ content: "{}", redacted: true, search: null })
        .where((eb) =>
          eb.or([
            eb("id", "=", target),
            eb.and([
              eb("room_id", "=", e.roomId),
              eb("type", "=", "edit"),
              eb(sql`content->>'targetEventId'`, "=", target),
            ]),
          ]),
        )
        .execute();
    }
  }
}
