import { toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { type RoomEvent, RoomEventSchema } from "@service-chat/api";
import {
  currentTraceParent,
  type Database,
  type DbSession,
  type EventStream,
  type Logger,
  linkTo,
  partitionOf,
  raceAbort,
  type Service,
  SpanKind,
  sleep,
  type Tracing,
} from "@service-chat/core";
import type { Schema } from "../db/schema.js";
import { presentEvent } from "../events/present.js";
import type { CommittedEvent } from "../events/store.js";
import type { PipelineMetrics } from "./metrics.js";
import type { DeliveryStore } from "./store.js";

/** Any constant shared by every instance: one relay publishes per database at a time. */
const RELAY_LOCK = 0x72656c61;
/** Stream entries stay well under NATS's default 1 MiB payload limit. */
const MAX_ENTRY_BYTES = 512 * 1024;
/** Rooms whose last published seq the relay remembers (the oldest are forgotten first). */
const REMEMBERED_ROOMS = 100_000;

/** Settings of the relay (OUTBOX_* in docs/configuration.md). */
export interface RelaySettings {
  /** Outbox rows per round (OUTBOX_RELAY_BATCH_SIZE). */
  batchSize: number;
  /** Fallback poll when no NOTIFY arrives, and the leadership retry period (OUTBOX_RELAY_POLL_MS). */
  pollMs: number;
  /** How long the relay lets commits of other processes gather once woken while busy (OUTBOX_RELAY_LINGER_MS). */
  lingerMs: number;
  /** How long published rows are kept before they are pruned (OUTBOX_RETENTION_SEC). */
  retentionMs: number;
}

export interface RelayOptions extends RelaySettings {
  /** What this process's event store writes into its outbox rows when it hands them to this relay. */
  origin?: string;
  /** For the session that holds the leadership lock and listens for NOTIFY. */
  database: Database<Schema>;
  store: DeliveryStore;
  stream: EventStream;
  logger: Logger;
  metrics?: PipelineMetrics;
  /** Present when tracing is on: a publish of traced events is an `outbox.publish` span. */
  tracing?: Tracing;
}

/**
 * Publishes committed outbox rows to the durable stream, in order, in batches, and marks them
 * published. One relay per database is active (a session advisory lock); the others wait to take
 * over. A crash between publish and mark publishes those rows again on restart: consumers are
 * idempotent by (room, seq).
 *
 * Two ways in, one order:
 * - Events committed by this process are handed over the moment they commit (`handoff`, from the
 *   event store) and published without being read back. A room's handed events are published
 *   directly only when they follow, seq for seq, what this relay last published for the room;
 *   otherwise (another process wrote in between, or the room is new to this relay) the relay
 *   reads the table instead.
 * - Everything else — other processes' commits (a NOTIFY at commit names the writer: the relay
 *   ignores its own), rows left by a crash, anything handed while the relay was not leading — is
 *   read from the outbox table in id order, which for a room is seq order.
 *
 * Leadership is held honestly: the lock lives in one database session; the moment that session is
 * lost (a server restart, a broken connection, or a check on an idle poll that gets no answer) the
 * relay stops publishing, and leads again only with a fresh session, lock and LISTEN.
 */
export class OutboxRelay implements Service {
  readonly name = "outbox-relay";
  /** Events this process committed, waiting to be published; only while leading. */
  private handed: CommittedEvent[] = [];
  /** The table must be read: something was committed that the handed events do not cover. */
  private readTable = true;
  private leading = false;
  private wake: () => void = () => {};
  /** Per room, the seq this relay published last during its current leadership. */
  private readonly published = new Map<string, number>();
  /** Outbox rows published to the stream, waiting for the next mark (one UPDATE for all of them). */
  private unmarked: number[] = [];
  /** The UPDATE marking rows published, while one runs. */
  private marking: Promise<void> | undefined;

  constructor(private readonly o: RelayOptions) {}

  /** This process committed these events (in commit order): published at once while leading. */
  handoff(events: CommittedEvent[]): void {
    if (!this.leading) return;
    if (this.handed.length >= this.o.batchSize * 10) {
      // Publishing is behind (the stream is slow or down): the table holds them all anyway.
      this.handed = [];
      this.readTable = true;
    } else {
      for (const e of events) this.handed.push(e);
    }
    this.wake();
  }

  async run(signal: AbortSignal): Promise<void> {
    let failing = false;
    while (!signal.aborted) {
      try {
        await this.lead(signal, () => {
          if (failing) this.o.logger.info("outbox relay reaches the database again");
          failing = false;
        });
      } catch (err) {
        // One warning per outage, not one per retry.
        if (!failing) this.o.logger.warn({ err }, "outbox relay cannot reach the database; retrying");
        failing = true;
        await sleep(this.o.pollMs, signal);
      }
    }
  }

  /** Waits for the leadership, then publishes until stopped or the session is lost. */
  private async lead(signal: AbortSignal, connected: () => void): Promise<void> {
    const session = await this.o.database.session();
    connected();
    const stop = AbortSignal.any([signal, session.lost]);
    try {
      while (!stop.aborted && !(await session.tryLock(RELAY_LOCK))) await sleep(this.o.pollMs, stop);
      if (stop.aborted) return;
      await session.listen("outbox", (origin) => {
        if (origin !== "" && origin === this.o.origin) return; // handed over already
        this.readTable = true;
        this.wake();
      });
      this.published.clear();
      this.readTable = true;
      this.leading = true;
      this.o.logger.info("outbox relay active");
      await this.publishWhileLeading(session, stop);
      if (session.lost.aborted && !signal.aborted) {
        this.o.logger.warn({ err: session.lost.reason }, "outbox relay lost its database session; leading again");
      }
    } finally {
      this.leading = false;
      this.handed = [];
      await this.marked().catch(() => {}); // rows left unmarked are published again: consumers dedupe
      this.unmarked = [];
      await session.close().catch(() => {});
    }
  }

  private async publishWhileLeading(session: DbSession, stop: AbortSignal): Promise<void> {
    let lastPrune = 0;
    while (!stop.aborted) {
      if (this.handed.length > 0) {
        await this.publishHanded();
        continue;
      }
      if (this.readTable) {
        this.readTable = false;
        const published = await this.publishBatch();
        if (published === this.o.batchSize) this.readTable = true;
        else if (published > 0 && this.o.lingerMs > 0) await sleep(this.o.lingerMs, stop);
        continue;
      }
      if (Date.now() - lastPrune > this.o.retentionMs / 2) {
        lastPrune = Date.now();
        await this.prune();
        continue;
      }
      let polled = false;
      const woken = new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      const timer = setTimeout(() => {
        polled = true;
        this.wake();
      }, this.o.pollMs);
      await raceAbort(woken, stop);
      clearTimeout(timer);
      this.wake = () => {};
      if (polled) {
        // Quiet for a poll period: make sure the session (and so the lock) is still there, and
        // look at the table in case a NOTIFY went missing.
        await session.check().catch(() => {}); // a failed check aborts `stop`: the loop ends
        this.readTable = true;
      }
    }
  }

  /** Publishes the handed events if each room's follow on from what was published; else reads the table. */
  private async publishHanded(): Promise<void> {
    const handed = this.handed;
    this.handed = [];
    const next = new Map<string, number>();
    const fresh: CommittedEvent[] = [];
    for (const e of handed) {
      const room = e.row.room_id;
      const last = next.get(room) ?? this.published.get(room);
      if (last !== undefined && e.row.seq <= last) continue; // the table round already published it
      if (last === undefined || e.row.seq !== last + 1) {
        this.readTable = true; // something in between is in the table only: read it, in order
        return;
      }
      next.set(room, e.row.seq);
      fresh.push(e);
    }
    if (fresh.length === 0) return;
    await this.publish(
      fresh.map((e) =>
        e.trace
          ? { event: presentEvent(e.row), outboxId: e.outboxId, trace: e.trace }
          : { event: presentEvent(e.row), outboxId: e.outboxId },
      ),
    );
  }

  /** Publishes the oldest unpublished rows of the table; returns how many. */
  async publishBatch(): Promise<number> {
    // Rows published but not marked yet would be read again: mark them first.
    await this.marked();
    const rows = await this.o.store.unpublished(this.o.batchSize);
    if (rows.length === 0) {
      this.o.metrics?.outboxBacklog(0);
      return 0;
    }
    await this.publish(
      rows.map(({ outbox_id, trace, ...row }) =>
        trace
          ? { event: presentEvent(row), outboxId: outbox_id, trace }
          : { event: presentEvent(row), outboxId: outbox_id },
      ),
    );
    return rows.length;
  }

  /**
   * Events in outbox order to the stream (by partition), then marked published. When tracing is
   * on and some were traced, in an `outbox.publish` span (a child of the first one's commit, linked
   * to the others) whose traceparent travels in the stream entries.
   */
  private publish(items: Published[]): Promise<void> {
    const tracing = this.o.tracing;
    if (!tracing) return this.publishNow(items);
    const traces = [...new Set(items.flatMap((i) => (i.trace ? [i.trace] : [])))];
    if (traces.length === 0) return this.publishNow(items);
    const links = traces.slice(1).flatMap((t) => linkTo(t) ?? []);
    return tracing.span(
      "outbox.publish",
      { parent: traces[0] as string, links, kind: SpanKind.PRODUCER, attributes: { "chat.events": items.length } },
      () => this.publishNow(items, currentTraceParent()),
    );
  }

  private async publishNow(items: Published[], trace?: string): Promise<void> {
    const byPartition = new Map<number, RoomEvent[]>();
    for (const { event } of items) {
      const p = partitionOf(event.roomId, this.o.stream.partitions);
      const list = byPartition.get(p);
      if (list) list.push(event);
      else byPartition.set(p, [event]);
    }
    await Promise.all([...byPartition].map(([p, events]) => this.o.stream.publish(p, encodeBatches(events, trace))));
    for (const i of items) this.unmarked.push(i.outboxId);
    this.markSoon();
    for (const { event } of items) this.remember(event.roomId, Number(event.seq));
    const oldest = items[0]?.event.serverTs;
    this.o.metrics?.published(items.length, oldest ? Number(oldest.seconds) * 1000 + oldest.nanos / 1e6 : undefined);
  }

  /**
   * Marks the published rows in the background, one UPDATE at a time: the next events are
   * published meanwhile, and the rows published while an UPDATE runs are marked by the next one.
   * A failed mark leaves its rows for the next (or for a table read after a restart, which
   * publishes them again: consumers are idempotent by room and seq).
   */
  private markSoon(): void {
    if (this.marking || this.unmarked.length === 0) return;
    const ids = this.unmarked;
    this.unmarked = [];
    this.marking = this.o.store
      .markPublished(ids)
      .catch((err: unknown) => {
        this.unmarked = ids.concat(this.unmarked);
        throw err;
      })
      .finally(() => {
        this.marking = undefined;
      });
    this.marking.then(
      () => this.markSoon(),
      () => {}, // seen by whoever waits for `marked`, or retried with the next publish
    );
  }

  /** Resolves once every row published so far is marked; rejects when a mark fails. */
  private async marked(): Promise<void> {
    while (this.marking || this.unmarked.length > 0) {
      if (!this.marking) this.markSoon();
      await this.marking;
    }
  }

  private remember(roomId: string, seq: number): void {
    this.published.delete(roomId);
    this.published.set(roomId, seq);
    if (this.published.size > REMEMBERED_ROOMS) this.published.delete(this.published.keys().next().value as string);
  }

  private async prune(): Promise<void> {
    const backlog = await this.o.store.prunePublished(new Date(Date.now() - this.o.retentionMs));
    this.o.metrics?.outboxBacklog(backlog);
  }
}

/** EventBatch.traceparent (proto/chat/v1/delivery.proto). */
const BATCH_TRACEPARENT = 3;

/** An event to publish, with its outbox row and the trace of its commit (tracing on). */
interface Published {
  event: RoomEvent;
  outboxId: number;
  trace?: string;
}

/**
 * Packs events into EventBatch stream entries of bounded size, keeping their order. Each event is
 * serialised once; an entry is the concatenation of its events as field 1 (`repeated events`).
 */
export function encodeBatches(events: RoomEvent[], trace?: string): Uint8Array[] {
  const entries: Uint8Array[] = [];
  let writer = new BinaryWriter();
  let size = 0;
  const finish = () =>
    (trace ? writer.tag(BATCH_TRACEPARENT, WireType.LengthDelimited).string(trace) : writer).finish();
  for (const event of events) {
    const bytes = toBinary(RoomEventSchema, event);
    if (size > 0 && size + bytes.length > MAX_ENTRY_BYTES) {
      entries.push(finish());
      writer = new BinaryWriter();
      size = 0;
    }
    writer.tag(1, WireType.LengthDelimited).bytes(bytes);
    size += bytes.length + 8;
  }
  if (size > 0) entries.push(finish());
  return entries;
}
