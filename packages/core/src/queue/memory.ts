import { raceAbort } from "../lifecycle.js";
import { checkPartition, type EventStream, type LiveBus, type StreamEntry } from "./ports.js";

/** Acknowledged entries are dropped in chunks of this many (a splice per entry would cost more). */
const TRIM_CHUNK = 1024;

/**
 * In-process stream: the embedded default and fast tests. Durable for the life of the process
 * (shared by every consumer in it), which is what "embedded" promises. Bounded: an entry every
 * consumer group of its partition has acknowledged is dropped (in chunks of TRIM_CHUNK), so memory
 * follows the backlog, not everything ever published. A group that starts later begins at the
 * oldest entry kept.
 */
export class MemoryStream implements EventStream {
  private readonly logs: Uint8Array[][];
  /** Per partition, the position (since the stream opened) of the first entry kept in `logs`. */
  private readonly base: number[];
  /** Per group and partition: position of the next entry to acknowledge, deliveries of it so far. */
  private readonly groups = new Map<string, { partition: number; acked: number; deliveries: number; busy: boolean }>();
  private readonly waiters = new Set<() => void>();

  constructor(readonly partitions: number) {
    this.logs = Array.from({ length: partitions }, () => []);
    this.base = Array.from({ length: partitions }, () => 0);
  }

  async publish(partition: number, entries: Uint8Array[]): Promise<void> {
    this.log(partition).push(...entries);
    for (const wake of this.waiters) wake();
  }

  /** Entries of a partition held in memory now (published and not yet trimmed). */
  retained(partition: number): number {
    return this.log(partition).length;
  }

  async consume(
    group: string,
    partition: number,
    handler: (entry: StreamEntry) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const log = this.log(partition);
    const key = `${group}\u0000${partition}`;
    const state = this.groups.get(key) ?? {
      partition,
      acked: this.base[partition] as number,
      deliveries: 0,
      busy: false,
    };
    this.groups.set(key, state);
    while (!signal.aborted) {
      const base = this.base[partition] as number;
      if (state.busy || state.acked >= base + log.length) {
        await this.wait(signal);
        continue;
      }
      state.busy = true;
      const position = state.acked;
      state.deliveries++;
      // A consumer that stops mid-handler is a consumer that died: its entry is not acknowledged.
      const outcome = await raceAbort(
        handler({ data: log[position - base] as Uint8Array, deliveries: state.deliveries }).then(
          () => "done",
          () => "failed",
        ),
        signal,
      );
      if (outcome.done && outcome.value === "done" && state.acked === position) {
        state.acked++;
        state.deliveries = 0;
        this.trim(partition);
      }
      state.busy = false;
      for (const wake of this.waiters) wake();
    }
  }

  async lag(group: string, partition: number): Promise<number> {
    const base = this.base[checkPartition(partition, this.partitions)] as number;
    return base + this.log(partition).length - (this.groups.get(`${group}\u0000${partition}`)?.acked ?? base);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    for (const wake of this.waiters) wake();
  }

  /** Drops the entries every group of the partition has acknowledged, once there are enough of them. */
  private trim(partition: number): void {
    let slowest = Number.POSITIVE_INFINITY;
    for (const g of this.groups.values()) if (g.partition === partition) slowest = Math.min(slowest, g.acked);
    const base = this.base[partition] as number;
    const done = slowest - base;
    if (done < TRIM_CHUNK) return;
    this.log(partition).splice(0, done);
    this.base[partition] = slowest;
  }

  private log(partition: number): Uint8Array[] {
    return this.logs[checkPartition(partition, this.partitions)] as Uint8Array[];
  }

  private async wait(signal: AbortSignal): Promise<void> {
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
      this.waiters.add(wake);
    });
    await raceAbort(woken, signal);
    this.waiters.delete(wake);
  }
}

/** In-process live subjects. */
export class MemoryBus implements LiveBus {
  private readonly subs = new Map<string, Set<(data: Uint8Array) => void>>();

  publish(subjects: readonly string[], data: Uint8Array): void {
    for (const subject of subjects) {
      const handlers = this.subs.get(subject);
      if (!handlers) continue;
      for (const handler of handlers) queueMicrotask(() => handler(data));
    }
  }

  async subscribe(subject: string, handler: (data: Uint8Array) => void): Promise<() => Promise<void>> {
    const handlers = this.subs.get(subject) ?? new Set();
    this.subs.set(subject, handlers);
    const h = (d: Uint8Array) => handler(d);
    handlers.add(h);
    return async () => {
      handlers.delete(h);
      if (handlers.size === 0) this.subs.delete(subject);
    };
  }

  async flush(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
  }

  async close(): Promise<void> {
    this.subs.clear();
  }
}
