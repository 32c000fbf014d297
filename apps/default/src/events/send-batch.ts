import { clone, create, toJson } from "@bufbuild/protobuf";
import { type AckEvent, AckEventSchema, ErrorDetailSchema } from "@service-chat/api";
import { AppError, type Identity, invalid, notFound } from "@service-chat/core";
import { sql } from "kysely";
import { assertMemberCan } from "../authz/access.js";
import { can } from "../authz/permissions.js";
import type { EventRow, Role } from "../db/schema.js";
import { KINDS } from "./content.js";
import { lockForSenders, type SenderView, type StoredEvent } from "./lock-senders.js";
import { type Append, appendToRooms, findEvents, type NewEvent, type Tx } from "./store.js";
import type { ValidEvent } from "./validate.js";

/** A validated event of a SendEvent call and its place in the call. */
export interface Indexed {
  index: number;
  event: ValidEvent;
}

/** One caller's events for one room: a job of the group committer. */
export interface SendJob {
  caller: Identity;
  roomId: string;
  group: Indexed[];
}

/** What the jobs of a batch decided so far, so that each sees the ones before it. */
interface BatchState {
  /** Events that a redaction earlier in the batch redacts. */
  redacted: Set<string>;
  /** The ack of the first event to store under each (room, sender, client id). */
  firstWithClientId: Map<string, AckEvent>;
  /** Acks to copy from another once the events are stored: a client id repeated in the batch. */
  copies: { acks: AckEvent[]; at: number; from: AckEvent }[];
}

/** A job's events to store, as validated and as stored, and the acks they answer. */
interface Planned extends Append {
  valid: ValidEvent[];
  acks: AckEvent[];
}

/**
 * Stores the jobs of a batch in `trx` and answers each with its acks, in `group` order: one
 * statement locks every room and reads what the checks need, one stores every event (plus one per
 * referenced lookup, edit and redaction). All that can refuse a job or an event is decided before
 * that second statement, so a refusal writes nothing and the other jobs are stored all the same.
 */
export async function storeSends(trx: Tx, jobs: SendJob[]): Promise<AckEvent[][]> {
  const views = await lockForSenders(
    trx,
    jobs.map(({ caller, roomId, group }) => ({ roomId, senderId: caller.profileId, clientIds: clientIdsOf(group) })),
  );
  const state: BatchState = { redacted: new Set(), firstWithClientId: new Map(), copies: [] };
  const answers = jobs.map(({ roomId, group }) =>
    group.map(({ event }) => create(AckEventSchema, { roomId, clientId: event.clientId ?? "" })),
  );
  const planned: Planned[] = [];
  for (const [i, job] of jobs.entries()) {
    const acks = answers[i] as AckEvent[];
    try {
      planned.push(await planJob(trx, job, views[i], acks, state));
    } catch (err) {
      for (const ack of acks) fail(ack, err); // a refusal of the whole job; other errors go on up
    }
  }
  const rows = await appendToRooms(trx, planned);
  for (const [i, { acks }] of planned.entries()) {
    for (const [n, row] of (rows[i] as EventRow[]).entries()) setStored(acks[n] as AckEvent, row);
  }
  for (const { acks, at, from } of state.copies) acks[at] = clone(AckEventSchema, from);
  await applyEffects(
    trx,
    planned.flatMap((p) => p.valid),
  );
  return answers;
}

const clientIdsOf = (group: Indexed[]) => group.flatMap((g) => (g.event.clientId ? [g.event.clientId] : []));

/**
 * Decides, without writing, what happens to each event of a job: answered from an earlier send,
 * the same as an event before it in the batch, refused (its ack gets the error), or stored.
 * Throws, before deciding anything, when the whole job is refused.
 */
async function planJob(
  trx: Tx,
  job: SendJob,
  view: SenderView | undefined,
  acks: AckEvent[],
  state: BatchState,
): Promise<Planned> {
  const { caller, roomId, group } = job;
  if (!view) throw notFound("room");
  const role = assertMemberCan(view.room, view.role, "event.send");
  const referenced = group.flatMap((g) => [g.event.targetId, g.event.parentId].filter((x): x is string => !!x));
  const targets = await findEvents(trx, roomId, referenced);
  for (const [id, target] of targets) if (state.redacted.has(id)) targets.set(id, { ...target, redacted: true });

  const planned: Planned = { room: view.room, events: [], reader: caller.profileId, valid: [], acks: [] };
  for (const [i, { index, event }] of group.entries()) {
    const ack = acks[i] as AckEvent;
    const key = event.clientId ? `${roomId} ${caller.profileId} ${event.clientId}` : undefined;
    const stored = event.clientId ? view.earlier.get(event.clientId) : undefined;
    const first = key ? state.firstWithClientId.get(key) : undefined;
    if (stored) {
      setStored(ack, stored);
    } else if (first) {
      state.copies.push({ acks, at: i, from: first });
    } else {
      try {
        checkReferences(`event[${index}]`, event, caller.profileId, role, targets);
      } catch (err) {
        fail(ack, err);
        continue;
      }
      if (key) state.firstWithClientId.set(key, ack);
      planned.events.push(toNewEvent(event, caller));
      planned.valid.push(event);
      planned.acks.push(ack);
      const redacted = event.kind === "redaction" ? targets.get(event.targetId as string) : undefined;
      if (redacted) {
        targets.set(redacted.id, { ...redacted, redacted: true }); // later events of the job see it
        state.redacted.add(redacted.id); // and those of later jobs
      }
    }
  }
  return planned;
}

export function fail(ack: AckEvent, err: unknown): void {
  if (!(err instanceof AppError)) throw err;
  ack.error = create(ErrorDetailSchema, { code: err.code, message: err.message });
}

function setStored(ack: AckEvent, row: StoredEvent): void {
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
