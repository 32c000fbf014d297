import { toJson } from "@bufbuild/protobuf";
import { AppError, type Identity, notFound } from "@service-chat/core";
import { assertMemberCan } from "../authz/access.js";
import type { EventRow } from "../db/schema.js";
import { kindNamed, REPEATING_KINDS } from "./kinds/index.js";
import { checkReferences } from "./references.js";
import type { Append, EventStore, NewEvent, SenderView, StoredEvent } from "./store.js";
import type { ValidEvent } from "./validate.js";

/**
 * The answer for one sent event: where it was stored, or the domain error that refused it (the
 * RPC layer turns it into the ack's ErrorDetail, server/errors.ts). A refused event has no id and seq 0.
 */
export interface SendAck {
  roomId: string;
  clientId: string;
  eventId: string;
  seq: number;
  error?: AppError;
}

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
  /** The sending call's traceparent, only when tracing is on and the call is sampled. */
  trace?: string;
}

/** What the jobs of a batch decided so far, so that each sees the ones before it. */
interface BatchState {
  /** Events that a redaction earlier in the batch redacts. */
  redacted: Set<string>;
  /** The ack of the first event to store under each (room, sender, client id). */
  firstWithClientId: Map<string, SendAck>;
  /** Acks to copy from another once the events are stored: a client id repeated in the batch. */
  copies: { acks: SendAck[]; at: number; from: SendAck }[];
}

/** A job's events to store, as validated and as stored, and the acks they answer. */
interface Planned extends Append {
  valid: ValidEvent[];
  acks: SendAck[];
}

export const unsent = (roomId: string, clientId: string): SendAck => ({ roomId, clientId, eventId: "", seq: 0 });

/**
 * Stores the jobs of a batch in one transaction (`tx`) and answers each with its acks, in `group`
 * order: one statement locks every room and reads what the checks need, one stores every event
 * (plus one per referenced lookup, edit and redaction). All that can refuse a job or an event is
 * decided before that second statement, so a refusal writes nothing and the other jobs are stored
 * all the same.
 */
export async function storeSends(tx: EventStore, jobs: SendJob[]): Promise<SendAck[][]> {
  const views = await tx.lockForSenders(
    jobs.map(({ caller, roomId, group }) => ({ roomId, senderId: caller.profileId, clientIds: clientIdsOf(group) })),
  );
  const state: BatchState = { redacted: new Set(), firstWithClientId: new Map(), copies: [] };
  const answers = jobs.map(({ roomId, group }) => group.map(({ event }) => unsent(roomId, event.clientId ?? "")));
  const planned: Planned[] = [];
  for (const [i, job] of jobs.entries()) {
    const acks = answers[i] as SendAck[];
    try {
      planned.push(await planJob(tx, job, views[i], acks, state));
    } catch (err) {
      for (const ack of acks) fail(ack, err); // a refusal of the whole job; other errors go on up
    }
  }
  const rows = await tx.appendToRooms(planned);
  for (const [i, { acks }] of planned.entries()) {
    for (const [n, row] of (rows[i] as EventRow[]).entries()) setStored(acks[n] as SendAck, row);
  }
  for (const { acks, at, from } of state.copies) acks[at] = { ...from };
  await applyEffects(
    tx,
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
  tx: EventStore,
  job: SendJob,
  view: SenderView | undefined,
  acks: SendAck[],
  state: BatchState,
): Promise<Planned> {
  const { caller, roomId, group } = job;
  if (!view) throw notFound("room");
  const role = assertMemberCan(view.room, view.role, "event.send");
  const referenced = group.flatMap((g) => [g.event.targetId, g.event.parentId].filter((x): x is string => !!x));
  // Most events reference nothing: no lookup, and no wait for one, in the batch's serial planning.
  const targets = referenced.length > 0 ? await tx.find(roomId, referenced) : new Map<string, EventRow>();
  for (const [id, target] of targets) if (state.redacted.has(id)) targets.set(id, { ...target, redacted: true });

  const planned: Planned = { room: view.room, events: [], reader: caller.profileId, valid: [], acks: [] };
  for (const [i, { index, event }] of group.entries()) {
    const ack = acks[i] as SendAck;
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
      const redacts = event.targetId && kindNamed(event.kind).effect?.(event.content.value) === "redact";
      const redacted = redacts ? targets.get(event.targetId as string) : undefined;
      if (redacted) {
        targets.set(redacted.id, { ...redacted, redacted: true }); // later events of the job see it
        state.redacted.add(redacted.id); // and those of later jobs
      }
    }
  }
  return planned;
}

/** Refuses one event with a domain error; anything else is not a refusal and goes on up. */
export function fail(ack: SendAck, err: unknown): void {
  if (!(err instanceof AppError)) throw err;
  ack.error = err;
}

function setStored(ack: SendAck, row: StoredEvent): void {
  ack.eventId = row.id;
  ack.roomId = row.room_id;
  ack.seq = row.seq;
  ack.clientId = row.client_id ?? "";
}

function toNewEvent(e: ValidEvent, caller: Identity): NewEvent {
  const kind = kindNamed(e.kind);
  const searchText = kind.searchText?.(e.content.value);
  return {
    senderId: caller.profileId,
    senderContactId: caller.contactId,
    kind: e.kind,
    content: toJson(kind.schema, e.content.value) as Record<string, unknown>,
    ...(e.parentId ? { parentId: e.parentId } : {}),
    ...(e.clientId ? { clientId: e.clientId } : {}),
    ...(e.sentAt ? { sentAt: e.sentAt } : {}),
    ...(searchText?.trim() ? { searchText } : {}),
  };
}

/** What stored events do to their targets (their kind's `effect`): edits replace, redactions empty. */
async function applyEffects(tx: EventStore, events: ValidEvent[]): Promise<void> {
  for (const e of events) {
    const effect = e.targetId ? kindNamed(e.kind).effect?.(e.content.value) : undefined;
    if (!effect || !e.targetId) continue;
    if (effect === "redact") await tx.redact(e.roomId, e.targetId, REPEATING_KINDS);
    else await tx.replaceContent(e.targetId, effect.replace, effect.searchText);
  }
}
