import type { Logger } from "../logger.js";

/**
 * The queue ports of the delivery pipeline. Each has an in-memory implementation (`mem://`) and
 * real ones (`nats://`, `redis://`), chosen by URI; all pass one contract suite
 * (packages/core/test/queue-contract.ts).
 */

/** What every backend is opened with, besides its URI. */
export interface QueueOptions {
  /** Stream name (NATS stream, Redis key prefix). */
  name: string;
  partitions: number;
  /** How long a consumer may hold an entry before it is handed to another (NATS ack wait, Redis lease). */
  redeliveryMs?: number;
  /** Where the client library's connection errors go (one warning per outage). */
  logger?: Logger;
}

/** One message of the durable stream, as a consumer sees it. */
export interface StreamEntry {
  data: Uint8Array;
  /** 1 on the first delivery, more when a consumer died or failed before acknowledging it. */
  deliveries: number;
}

/**
 * A durable, partitioned, ordered stream (outbox relay → fan-out workers).
 *
 * Guarantees, per (group, partition):
 * - order: entries are handled in publish order;
 * - at least once: an entry is handed out again until a handler call for it resolves, including
 *   after the consuming process dies (then after the backend's redelivery delay);
 * - exclusive: at most one handler call is in flight, across every process consuming as `group`,
 *   so a redelivered entry is always handled before any later one.
 * Different groups see every entry independently.
 */
export interface EventStream {
  readonly partitions: number;
  /** Appends entries to one partition in order; resolves once they are durably stored. */
  publish(partition: number, entries: Uint8Array[]): Promise<void>;
  /**
   * Hands the partition's entries to `handler` one at a time until `signal` aborts. A handler that
   * throws leaves its entry unacknowledged: it comes back. Resolves once consumption stopped.
   */
  consume(
    group: string,
    partition: number,
    handler: (entry: StreamEntry) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void>;
  /** Entries of the partition that `group` has not acknowledged yet. */
  lag(group: string, partition: number): Promise<number>;
  /** Resolves when the backend answers a round trip now; rejects (or hangs) while it cannot. For /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Live subjects (fan-out → gateways): at most once, as fast as the backend goes. A message reaches
 * the subscribers of the subject at the time it is published; nobody else, never later.
 */
export interface LiveBus {
  /** Sends `data` to each subject. Fire and forget: never awaited on the hot path. */
  publish(subjects: readonly string[], data: Uint8Array): void;
  /** Resolves once the subscription is active; the returned function ends it. */
  subscribe(subject: string, handler: (data: Uint8Array) => void): Promise<() => Promise<void>>;
  /** Resolves once what was published so far has left this process. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Which partition a room's events travel in: stable for a given partition count. */
export function partitionOf(roomId: string, partitions: number): number {
  let h = 2166136261;
  for (let i = 0; i < roomId.length; i++) {
    h ^= roomId.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % partitions;
}

/** Refuses a partition number the stream does not have. */
export function checkPartition(partition: number, partitions: number): number {
  if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
    throw new RangeError(`partition ${partition} is not between 0 and ${partitions - 1}`);
  }
  return partition;
}
