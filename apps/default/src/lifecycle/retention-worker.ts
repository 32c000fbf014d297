import type { Logger, Meter, Service } from "@service-chat/core";
import { sleep } from "@service-chat/core";
import { effectivePolicy, purgeUpTo, type RetentionDefaults, type StoredPolicy } from "./retention.js";
import type { RetentionStore } from "./store.js";

export interface RetentionSettings {
  defaults: RetentionDefaults;
  /** Time between passes over the rooms (RETENTION_INTERVAL_MS). */
  intervalMs: number;
  /** Events deleted per transaction at most (RETENTION_BATCH_SIZE). */
  batchSize: number;
}

/** Rooms looked at per query of a pass. */
const ROOMS_PER_QUERY = 100;

/**
 * The retention worker: every interval it finds the rooms holding events their policy no longer
 * keeps and deletes them from the start of each room, `batchSize` at a time, one short
 * transaction per step under the room's lock (sends to that room wait for one step, never for a
 * whole purge). Each step moves the room's first_seq, which history, Sync and devices read:
 * nothing is renumbered, nothing disappears without the readers being told where the room now
 * starts. Several processes may run it: the room lock makes a second purger find nothing to do.
 */
export class RetentionWorker implements Service {
  readonly name = "retention";
  private readonly deleted;

  constructor(
    private readonly store: RetentionStore,
    private readonly settings: RetentionSettings,
    private readonly logger: Logger,
    meter: Meter,
  ) {
    this.deleted = meter.createCounter("chat_retention_events_deleted_total", {
      description: "Events deleted by the retention policies",
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.pass(signal);
      } catch (err) {
        this.logger.warn({ err }, "retention pass failed; retrying at the next interval");
      }
      await sleep(this.settings.intervalMs, signal).catch(() => undefined);
    }
  }

  /** One pass over every room with something to delete; answers how many events went. */
  async pass(signal?: AbortSignal): Promise<number> {
    const { defaults } = this.settings;
    let total = 0;
    let after = "";
    for (;;) {
      const rooms = await this.store.roomsToPurge(defaults, after, ROOMS_PER_QUERY);
      for (const roomId of rooms) {
        if (signal?.aborted) return total;
        total += await this.purgeRoom(roomId, signal);
      }
      if (rooms.length < ROOMS_PER_QUERY) break;
      after = rooms[rooms.length - 1] as string;
    }
    if (total > 0) this.logger.info({ deleted: total }, "retention removed expired events");
    return total;
  }

  private async purgeRoom(roomId: string, signal?: AbortSignal): Promise<number> {
    let total = 0;
    while (!signal?.aborted) {
      const step = await this.store.transaction(async (tx) => {
        const policyOf = (r: StoredPolicy) => effectivePolicy(r, this.settings.defaults);
        const view = await tx.lockForPurge(roomId, (r) => policyOf(r).maxAgeSec);
        if (!view) return { deleted: 0, more: false };
        const { room } = view;
        const policy = policyOf(room);
        const upTo = purgeUpTo({
          firstSeq: room.first_seq,
          lastSeq: room.last_seq,
          policy,
          firstYoungSeq: view.firstYoungSeq,
          firstUnpublishedSeq: view.firstUnpublishedSeq,
          batch: this.settings.batchSize,
        });
        if (upTo < room.first_seq) return { deleted: 0, more: false };
        const deleted = await tx.deleteUpTo(room, upTo);
        return { deleted, more: upTo - room.first_seq + 1 >= this.settings.batchSize };
      });
      total += step.deleted;
      if (step.deleted > 0) this.deleted.add(step.deleted);
      if (!step.more) break;
    }
    return total;
  }
}
