import { toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { type RoomEvent, RoomEventSchema } from "@service-chat/api";
import {
  type Database,
  type EventStream,
  type Logger,
  partitionOf,
  raceAbort,
  type Service,
  sleep,
} from "@service-chat/core";
import type { Schema } from "../db/schema.js";
import { presentEvent } from "../events/present.js";
import type { PipelineMetrics } from "./metrics.js";
import type { DeliveryStore } from "./store.js";

/** Any constant shared by every instance: one relay publishes per database at a time. */
const RELAY_LOCK = 0x72656c61;
/** Stream entries stay well under NATS's default 1 MiB payload limit. */
const MAX_ENTRY_BYTES = 512 * 1024;

/** Settings of the relay (OUTBOX_* in docs/configuration.md). */
export interface RelaySettings {
  /** Outbox rows per round (OUTBOX_RELAY_BATCH_SIZE). */
  batchSize: number;
  /** Fallback poll when no NOTIFY arrives, and the leadership retry period (OUTBOX_RELAY_POLL_MS). */
  pollMs: number;
  /** How long the relay lets commits gather once woken while busy (OUTBOX_RELAY_LINGER_MS). */
  lingerMs: number;
  /** How long published rows are kept before they are pruned (OUTBOX_RETENTION_SEC). */
  retentionMs: number;
}

export interface RelayOptions extends RelaySettings {
  /** For the session that holds the leadership lock and listens for NOTIFY. */
  database: Database<Schema>;
  store: DeliveryStore;
  stream: EventStream;
  logger: Logger;
  metrics?: PipelineMetrics;
}

/**
 * Publishes committed outbox rows to the durable stream, in outbox order, in batches, and marks
 * them published. Woken by NOTIFY at commit, with a polling fallback. One relay per database is
 * active (a session advisory lock); the others wait to take over. A crash between publish and
 * mark publishes those rows again on restart: consumers are idempotent by (room, seq).
 */
export class OutboxRelay implements Service {
  readonly name = "outbox-relay";

  constructor(private readonly o: RelayOptions) {}

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.lead(signal);
      } catch (err) {
        this.o.logger.error({ err }, "outbox relay failed; retrying");
        await sleep(this.o.pollMs, signal);
      }
    }
  }

  /** Waits for the leadership, then publishes until stopped or the session fails. */
  private async lead(signal: AbortSignal): Promise<void> {
    const session = await this.o.database.session();
    try {
      while (!signal.aborted && !(await session.tryLock(RELAY_LOCK))) await sleep(this.o.pollMs, signal);
      if (signal.aborted) return;
      this.o.logger.info("outbox relay active");
      let wake: () => void = () => {};
      let pending = true;
      await session.listen("outbox", () => {
        pending = true;
        wake();
      });
      let lastPrune = 0;
      while (!signal.aborted) {
        pending = false;
        const published = await this.publishBatch();
        if (Date.now() - lastPrune > this.o.retentionMs / 2) {
          lastPrune = Date.now();
          await this.prune();
        }
        if (published === this.o.batchSize) continue;
        if (pending) {
          // Under steady load, let a few more commits gather instead of one round per commit.
          await sleep(this.o.lingerMs, signal);
          continue;
        }
        const woken = new Promise<void>((resolve) => {
          wake = resolve;
        });
        const timer = setTimeout(wake, this.o.pollMs);
        await raceAbort(woken, signal);
        clearTimeout(timer);
      }
    } finally {
      await session.close().catch(() => {});
    }
  }

  /** Publishes the oldest unpublished rows; returns how many. */
  async publishBatch(): Promise<number> {
    const rows = await this.o.store.unpublished(this.o.batchSize);
    if (rows.length === 0) {
      this.o.metrics?.outboxBacklog(0);
      return 0;
    }
    const byPartition = new Map<number, RoomEvent[]>();
    const membersSeq = new Map<string, number>();
    for (const row of rows) {
      const p = partitionOf(row.room_id, this.o.stream.partitions);
      const list = byPartition.get(p) ?? [];
      list.push(presentEvent(row));
      byPartition.set(p, list);
      membersSeq.set(row.room_id, row.members_seq);
    }
    await Promise.all(
      [...byPartition].map(([p, events]) => this.o.stream.publish(p, encodeBatches(events, membersSeq))),
    );
    await this.o.store.markPublished(rows.map((r) => r.outbox_id));
    this.o.metrics?.published(rows.length);
    return rows.length;
  }

  private async prune(): Promise<void> {
    const backlog = await this.o.store.prunePublished(new Date(Date.now() - this.o.retentionMs));
    this.o.metrics?.outboxBacklog(backlog);
  }
}

/**
 * Packs events into EventBatch stream entries of bounded size, keeping their order, each with the
 * `members_seq` of its rooms. Each event is serialised once; an entry is the concatenation of its
 * events as field 1 (`repeated events`) and the map entries as field 2.
 */
export function encodeBatches(events: RoomEvent[], membersSeq: ReadonlyMap<string, number>): Uint8Array[] {
  const entries: Uint8Array[] = [];
  let writer = new BinaryWriter();
  let rooms = new Set<string>();
  let size = 0;
  const finish = () => {
    for (const room of rooms) {
      writer
        .tag(2, WireType.LengthDelimited)
        .fork()
        .tag(1, WireType.LengthDelimited)
        .string(room)
        .tag(2, WireType.Varint)
        .int64(membersSeq.get(room) ?? 0)
        .join();
    }
    entries.push(writer.finish());
    writer = new BinaryWriter();
    rooms = new Set();
    size = 0;
  };
  for (const event of events) {
    const bytes = toBinary(RoomEventSchema, event);
    if (size > 0 && size + bytes.length > MAX_ENTRY_BYTES) finish();
    writer.tag(1, WireType.LengthDelimited).bytes(bytes);
    rooms.add(event.roomId);
    size += bytes.length + 8;
  }
  if (size > 0) finish();
  return entries;
}
