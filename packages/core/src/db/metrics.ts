import type { Meter } from "@opentelemetry/api";
import type { Database, PoolStats } from "./open.js";

/** Statement durations: 0.1 ms to 5 s. */
const QUERY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Names remembered per SQL text; cleared when full (statements with `in (…)` lists vary in text). */
const NAME_CACHE_MAX = 2000;

const TABLE_AFTER: Record<string, RegExp> = {
  select: /\bfrom\s+"?(\w+)/i,
  with: /\b(?:from|into|update)\s+"?(\w+)/i,
  insert: /\binto\s+"?(\w+)/i,
  update: /^update\s+"?(\w+)/i,
  delete: /\bfrom\s+"?(\w+)/i,
  lock: /^lock\s+(?:table\s+)?"?(\w+)/i,
};

/**
 * A statement's name for the metrics: its verb and its first table ("select rooms", "insert
 * room_events", "update rooms"); the verb alone for the rest ("create", "begin"). A few dozen
 * names in all.
 */
export function statementName(sql: string): string {
  const text = sql.trimStart();
  const verb = /^[a-z]+/i.exec(text)?.[0].toLowerCase();
  if (!verb) return "other";
  const table = TABLE_AFTER[verb]?.exec(text)?.[1];
  return table ? `${verb} ${table}` : verb;
}

/**
 * The database's metrics: `chat_db_query_duration_seconds` by statement name and outcome
 * (`onQuery`, handed to openDatabase), and the pool's connections and waiting callers
 * (`watch`, once the database is open).
 */
export class DatabaseMetrics {
  private readonly duration;
  private readonly names = new Map<string, { statement: string; outcome: string }[]>();
  private stats: (() => PoolStats) | undefined;

  constructor(meter: Meter) {
    this.duration = meter.createHistogram("chat_db_query_duration_seconds", {
      description: "Time a statement took, by statement (verb and first table) and outcome",
      unit: "s",
      advice: { explicitBucketBoundaries: QUERY_BUCKETS },
    });
    meter
      .createObservableGauge("chat_db_pool_connections", {
        description: "Database connections, by state (in_use, idle)",
      })
      .addCallback((r) => {
        const s = this.stats?.();
        if (!s) return;
        r.observe(s.total - s.idle, { state: "in_use" });
        r.observe(s.idle, { state: "idle" });
      });
    meter
      .createObservableGauge("chat_db_pool_waiting", { description: "Callers waiting for a database connection" })
      .addCallback((r) => {
        const s = this.stats?.();
        if (s) r.observe(s.waiting);
      });
  }

  readonly onQuery = (sql: string, ms: number, failed: boolean): void => {
    let attrs = this.names.get(sql);
    if (!attrs) {
      if (this.names.size >= NAME_CACHE_MAX) this.names.clear();
      const statement = statementName(sql);
      attrs = [
        { statement, outcome: "ok" },
        { statement, outcome: "error" },
      ];
      this.names.set(sql, attrs);
    }
    this.duration.record(ms / 1000, attrs[failed ? 1 : 0]);
  };

  watch(database: Pick<Database<unknown>, "poolStats">): void {
    this.stats = () => database.poolStats();
  }
}
