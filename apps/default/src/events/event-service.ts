import { Direction, type RoomEvent } from "@service-chat/api";
import {
  checkCount,
  checkId,
  checkLimit,
  checkText,
  currentTraceParent,
  type Identity,
  invalid,
  isDatabaseUnavailable,
  type Logger,
  linkTo,
  type Tracing,
} from "@service-chat/core";
import { requireAccess } from "../authz/access.js";
import { type CommitterLimits, GroupCommitter } from "./committer.js";
import { historyCursor, pageOf, readHistoryCursor, readSearchCursor, searchCursor } from "./cursors.js";
import type { SendMetrics } from "./metrics.js";
import { presentEvent } from "./present.js";
import { fail, type Indexed, type SendAck, type SendJob, storeSends, unsent } from "./send-batch.js";
import type { EventStore } from "./store.js";
import { MAX_EVENTS_PER_CALL, type ValidEvent, validateEvent } from "./validate.js";

export type { SendAck } from "./send-batch.js";

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

/** A history page, with where the room's stored events begin (retention deletes before it). */
export interface HistoryPage extends Page<RoomEvent> {
  firstSeq: number;
}

export interface EventServiceOptions {
  /** The group committer's limits (SEND_BATCH_*). */
  limits: CommitterLimits;
  logger: Logger;
  metrics?: SendMetrics;
  /** Present when tracing is on: each batch is a `send.commit` span. */
  tracing?: Tracing;
}

/** Messages: sending (validated, authorised, idempotent, dense seq), history and search. */
export class EventService {
  private readonly committer: GroupCommitter<EventStore, SendJob, SendAck[]>;
  private readonly tracing: Tracing | undefined;

  constructor(
    private readonly store: EventStore,
    options: EventServiceOptions,
  ) {
    const { logger, metrics, tracing } = options;
    this.tracing = tracing;
    this.committer = new GroupCommitter(store, tracing ? tracedStoreSends(tracing) : storeSends, {
      limits: options.limits,
      onBatchFailure(err, jobs) {
        // A database that is down is reported once per outage where the calls are answered.
        if (!isDatabaseUnavailable(err)) {
          logger.warn({ err, jobs }, "send batch failed and rolled back; its calls run again one by one");
        }
        metrics?.batchFailed();
      },
    });
  }

  /** The group committer's batches running and calls' jobs waiting (tests watch calls pile up with it). */
  get sendLoad(): { running: number; queued: number } {
    return this.committer.load;
  }

  /**
   * Stores up to 100 events and answers each with its own ack, in order. An event that is
   * refused gets an ack with the domain error; the others are stored all the same. The events of
   * each room are one job of the group committer: stored in a transaction shared with other calls.
   */
  async send(caller: Identity, events: RoomEvent[]): Promise<SendAck[]> {
    checkCount("event", events.length, MAX_EVENTS_PER_CALL, 1);
    if (events.length === 1) return this.sendOne(caller, events[0] as RoomEvent);
    const acks: SendAck[] = events.map((e) => unsent(e.roomId, e.clientId));
    const byRoom = new Map<string, Indexed[]>();
    events.forEach((e, index) => {
      try {
        const event = validateEvent(`event[${index}]`, e, caller.profileId);
        const group = byRoom.get(event.roomId) ?? [];
        group.push({ index, event });
        byRoom.set(event.roomId, group);
      } catch (err) {
        fail(acks[index] as SendAck, err);
      }
    });
    await Promise.all(
      [...byRoom].map(async ([roomId, group]) => {
        const trace = this.tracing ? currentTraceParent() : undefined;
        const job: SendJob = trace ? { caller, roomId, group, trace } : { caller, roomId, group };
        const stored = await this.committer.run(roomId, group.length, job);
        group.forEach((g, i) => {
          acks[g.index] = stored[i] as SendAck;
        });
      }),
    );
    return acks;
  }

  /** `send` of a single event (most calls): the same job, without grouping by room. */
  private async sendOne(caller: Identity, e: RoomEvent): Promise<SendAck[]> {
    let event: ValidEvent;
    try {
      event = validateEvent("event[0]", e, caller.profileId);
    } catch (err) {
      const ack = unsent(e.roomId, e.clientId);
      fail(ack, err);
      return [ack];
    }
    const group: Indexed[] = [{ index: 0, event }];
    const trace = this.tracing ? currentTraceParent() : undefined;
    const job: SendJob = trace
      ? { caller, roomId: event.roomId, group, trace }
      : { caller, roomId: event.roomId, group };
    const [ack] = await this.committer.run(event.roomId, 1, job);
    return [ack as SendAck];
  }

  /** A page of a room's history, newest first unless `direction` is forward. */
  async history(caller: Identity, q: HistoryQuery): Promise<HistoryPage> {
    checkId("room_id", q.roomId);
    const limit = checkLimit("limit", q.limit, DEFAULT_PAGE, MAX_PAGE);
    if (!(q.direction in Direction)) throw invalid("direction", `${q.direction} is not a known value`);
    const forward = q.direction === Direction.FORWARD;
    const { afterSeq } = readHistoryCursor(q.cursor, q.roomId, forward);
    const { room } = await requireAccess(this.store.access, q.roomId, caller.profileId, "room.read");
    const rows = await this.store.history({
      roomId: q.roomId,
      forward,
      limit,
      ...(afterSeq !== undefined ? { afterSeq } : {}),
    });
    const { page, nextCursor } = pageOf(rows, limit, (last) => historyCursor(q.roomId, forward, last.seq));
    return { items: page.map(presentEvent), nextCursor, firstSeq: room.first_seq };
  }

  /** Full-text search over text in the rooms the caller belongs to, newest first. */
  async search(caller: Identity, q: SearchQuery): Promise<Page<RoomEvent>> {
    checkText("query", q.query, { maxBytes: 256, required: true });
    const limit = checkLimit("limit", q.limit, DEFAULT_PAGE, MAX_PAGE);
    const after = readSearchCursor(q.cursor);
    if (q.roomId) {
      checkId("room_id", q.roomId);
      await requireAccess(this.store.access, q.roomId, caller.profileId, "room.read");
    }
    const rows = await this.store.search({
      profileId: caller.profileId,
      query: q.query,
      limit,
      ...(q.roomId ? { roomId: q.roomId } : {}),
      ...(after ? { after } : {}),
    });
    const { page, nextCursor } = pageOf(rows, limit, (last) =>
      searchCursor({ serverTs: last.server_ts, seq: last.seq, id: last.id }),
    );
    return { items: page.map(presentEvent), nextCursor };
  }
}

/**
 * `storeSends` in a `send.commit` span: a child of the first traced call of the batch, linked to
 * the others; the events it stores carry the span to the outbox relay.
 */
function tracedStoreSends(tracing: Tracing) {
  return (tx: EventStore, jobs: SendJob[]): Promise<SendAck[][]> => {
    const traced = jobs.filter((j) => j.trace);
    if (traced.length === 0) return storeSends(tx, jobs);
    const links = traced.slice(1).flatMap((j) => linkTo(j.trace as string) ?? []);
    const options = { parent: traced[0]?.trace as string, links, attributes: { "chat.jobs": jobs.length } };
    return tracing.span("send.commit", options, async () => {
      tx.trace = currentTraceParent();
      return storeSends(tx, jobs);
    });
  };
}
