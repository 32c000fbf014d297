import type { Logger, Service } from "@service-chat/core";
import { sleep } from "@service-chat/core";
import type { UpkeepStore } from "./store.js";

export interface UpkeepSettings {
  /** Time between looks at how much was written (DB_UPKEEP_INTERVAL_MS). */
  intervalMs: number;
  /** Also VACUUM the tables each message updates: on the embedded database, which has no autovacuum. */
  vacuum: boolean;
}

/** Events written before statistics are refreshed: this many, plus a share of the table's rows. */
const ANALYZE_BASE = 500;
const ANALYZE_SHARE = 0.1;
/** Events written between two VACUUMs of the churned tables. */
const VACUUM_EVERY = 2000;
/**
 * Looks between two ANALYZEs (after the first two: at start, and once the first events are in)
 * and between two VACUUMs, at least: on the embedded database each holds its only connection, so
 * a fast-growing table must not have them back to back (30 s and 60 s at the default interval).
 */
const ANALYZE_GAP = 15;
const VACUUM_GAP = 30;

/**
 * Keeps the planner's statistics fresh as events are written, and, on the embedded database
 * (PGlite runs no autovacuum), the tables each message updates vacuumed. Without statistics the
 * planner cannot tell the unique client-id index from the by-sender index, and every send would
 * read all of its sender's events in the room (docs/persistence.md, "Table upkeep"). It counts
 * events by the outbox's id sequence, so what other processes write counts too; on PostgreSQL,
 * autovacuum does the same later (a fresh database gets statistics within seconds instead of a
 * minute), and a second ANALYZE is cheap.
 */
export class UpkeepWorker implements Service {
  readonly name = "table-upkeep";

  constructor(
    private readonly store: UpkeepStore,
    private readonly settings: UpkeepSettings,
    private readonly logger: Logger,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    let analyzedAt = -1;
    let vacuumedAt = -1;
    let rows = 0;
    let analyses = 0;
    let lastAnalyze = 0;
    let lastVacuum = Date.now();
    const { intervalMs } = this.settings;
    while (!signal.aborted) {
      try {
        const written = await this.store.eventsWritten();
        if (analyzedAt < 0) {
          // Statistics already there (another process, an earlier run): due once enough is written.
          const estimate = await this.store.eventRowsEstimate();
          if (estimate >= 0) [analyzedAt, rows] = [written, estimate];
        }
        const analyzeDue = analyses < 2 || Date.now() - lastAnalyze >= ANALYZE_GAP * intervalMs;
        if (analyzedAt < 0 || (analyzeDue && written - analyzedAt >= ANALYZE_BASE + ANALYZE_SHARE * rows)) {
          await this.timed("analyze", () => this.store.analyze());
          rows = Math.max(0, await this.store.eventRowsEstimate());
          analyzedAt = written;
          analyses++;
          lastAnalyze = Date.now();
        }
        if (vacuumedAt < 0) vacuumedAt = written;
        const vacuumDue = Date.now() - lastVacuum >= VACUUM_GAP * intervalMs;
        if (this.settings.vacuum && vacuumDue && written - vacuumedAt >= VACUUM_EVERY) {
          await this.timed("vacuum", () => this.store.vacuum());
          vacuumedAt = written;
          lastVacuum = Date.now();
        }
      } catch (err) {
        this.logger.warn({ err }, "table upkeep failed; retrying at the next interval");
      }
      await sleep(this.settings.intervalMs, signal).catch(() => undefined);
    }
  }

  private async timed(what: string, work: () => Promise<void>): Promise<void> {
    const t0 = performance.now();
    await work();
    this.logger.debug({ ms: Math.round(performance.now() - t0) }, `table upkeep: ${what}`);
  }
}
