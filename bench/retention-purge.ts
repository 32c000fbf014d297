/**
 * The retention worker on a fresh database: one room of N stored events and a policy keeping the
 * newest 1,000, purged in steps of B, while a writer of the same room takes its lock every 5 ms
 * (what a send does first); then how long finding nothing to purge takes over R rooms.
 *
 *   node --import tsx bench/retention-purge.ts [postgres|pglite] [N=200000] [B=1000] [R=100000]
 *
 * Prints events deleted per second, each step's duration, the writer's waits for the lock, and
 * the time of one pass that finds nothing, with an age policy and with a count policy.
 */
import { createLogger, createMetrics, migrate, openDatabase } from "@service-chat/core";
import { freshDatabase } from "@service-chat/testing";
import { sql } from "kysely";
import { MIGRATION_STEPS, MIGRATIONS } from "../apps/default/src/app.js";
import type { Schema } from "../apps/default/src/db/schema.js";
import { RetentionWorker } from "../apps/default/src/lifecycle/retention-worker.js";
import { RetentionStore } from "../apps/default/src/lifecycle/store.js";

const kind = (process.argv[2] ?? "postgres") as "postgres" | "pglite";
const n = Number(process.argv[3] ?? 200_000);
const batch = Number(process.argv[4] ?? 1000);
const rooms = Number(process.argv[5] ?? 100_000);

const { uri, drop } = await freshDatabase(kind);
const database = await openDatabase<Schema>(uri, { poolSize: 4 });
const db = database.db;
await migrate(db, MIGRATIONS, MIGRATION_STEPS);

const pct = (a: number[], f: number) =>
  (a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * f))] ?? 0).toFixed(1);

// One room of n events with their search entries, keeping the newest 1,000.
await sql`insert into rooms (id, type, name, creator_id, last_seq, retention_max_events)
  values ('big', 'group', 'big', 'a', ${n}, 1000)`.execute(db);
await sql`insert into room_events (id, room_id, seq, sender_id, type, content, sent_at, server_ts, search)
  select 'e' || g, 'big', g, 'a', 'text', jsonb_build_object('body', 'message ' || g), now(), now(),
    to_tsvector('simple', 'message ' || g)
  from generate_series(1, ${n}) g`.execute(db);
await sql`analyze room_events`.execute(db);

const store = new RetentionStore(db);
const steps: number[] = [];
const transaction = store.transaction.bind(store);
store.transaction = async (work) => {
  const start = performance.now();
  try {
    return await transaction(work);
  } finally {
    steps.push(performance.now() - start);
  }
};
const waits: number[] = [];
let writing = true;
const writer = (async () => {
  while (writing) {
    const start = performance.now();
    await db.transaction().execute((tx) => sql`select last_seq from rooms where id = 'big' for update`.execute(tx));
    waits.push(performance.now() - start);
    await new Promise((r) => setTimeout(r, 5));
  }
})();
const settings = { defaults: { maxAgeSec: 0, maxEvents: 0 }, intervalMs: 60_000, batchSize: batch };
const worker = new RetentionWorker(store, settings, createLogger("silent"), createMetrics("bench").meter);
const start = performance.now();
const deleted = await worker.pass();
const ms = performance.now() - start;
writing = false;
await writer;
console.log(
  `${kind}: ${deleted} of ${n} events deleted in ${Math.round(ms)} ms (${Math.round(deleted / (ms / 1000))}/s), ` +
    `${steps.length} transactions of at most ${batch}: p50 ${pct(steps, 0.5)} ms, p99 ${pct(steps, 0.99)} ms, max ${pct(steps, 1)} ms`,
);
console.log(
  `${kind}: a writer of the room waited for its lock (${waits.length} times) p50 ${pct(waits, 0.5)} ms, ` +
    `p99 ${pct(waits, 0.99)} ms, max ${pct(waits, 1)} ms`,
);

// Finding nothing: `rooms` rooms of 20 fresh events each.
await sql`insert into rooms (id, type, name, creator_id, last_seq)
  select 'r' || lpad(g::text, 7, '0'), 'group', 'r', 'a', 20 from generate_series(1, ${rooms}) g`.execute(db);
await sql`insert into room_events (id, room_id, seq, sender_id, type, content, sent_at, server_ts)
  select 'e' || g || '-' || s, 'r' || lpad(g::text, 7, '0'), s, 'a', 'text', '{}', now(), now()
  from generate_series(1, ${rooms}) g, generate_series(1, 20) s`.execute(db);
await sql`analyze`.execute(db);
for (const defaults of [
  { maxAgeSec: 3600, maxEvents: 0 },
  { maxAgeSec: 0, maxEvents: 1000 },
]) {
  const quiet = new RetentionWorker(
    new RetentionStore(db),
    { ...settings, defaults },
    createLogger("silent"),
    createMetrics("bench").meter,
  );
  const t0 = performance.now();
  await quiet.pass();
  console.log(
    `${kind}: a pass over ${rooms} rooms with nothing to delete, default ${JSON.stringify(defaults)}: ${Math.round(performance.now() - t0)} ms`,
  );
}
await database.close();
await drop();
