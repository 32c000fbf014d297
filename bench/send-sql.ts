/**
 * The send transaction's SQL alone, on a migrated database of 200 rooms × 10 members: batches of
 * B one-event sends, each one transaction of the event store's two statements (lock the rooms and
 * read the senders, then append), as the group committer runs them. No server, no RPC.
 *
 *   node --conditions=@service-chat/source --import tsx bench/send-sql.ts [URI=pglite://memory] [B,…=1,10,40] [N=3000]
 *
 * URI is a database to create the tables in (e.g. pglite:///tmp/new-folder; a PostgreSQL one must
 * be empty). Prints, per batch size, CPU per message of this process (PGlite runs in it) and, on
 * PostgreSQL, of its one server process, and messages per second, after a first round as warm-up.
 */
import { readFileSync } from "node:fs";
import { migrate, openDatabase } from "@service-chat/core";
import { sql } from "kysely";
import { MIGRATION_STEPS, MIGRATIONS } from "../apps/default/src/app.js";
import type { Schema } from "../apps/default/src/db/schema.js";
import type { EventKind } from "../apps/default/src/events/kinds/index.js";
import { EventStore } from "../apps/default/src/events/store.js";

const uri = process.argv[2] ?? "pglite://memory";
const sizes = (process.argv[3] ?? "1,10,40").split(",").map(Number);
const total = Number(process.argv[4] ?? 3000);

const database = await openDatabase<Schema>(uri, { poolSize: 1 });
await migrate(database.db, MIGRATIONS, MIGRATION_STEPS);
await sql`insert into rooms (id, type, creator_id)
  select 'r' || g, 'group', 'u' || g || '-0' from generate_series(0, 199) g`.execute(database.db);
await sql`insert into room_subscriptions (room_id, profile_id, role)
  select 'r' || g, 'u' || g || '-' || m, 'member' from generate_series(0, 199) g, generate_series(0, 9) m`.execute(
  database.db,
);
await sql`analyze`.execute(database.db);

/** CPU ms of the PostgreSQL server process of the pool's one connection (0 on PGlite). */
const backend =
  database.kind === "postgres"
    ? (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(database.db)).rows[0]?.pid
    : undefined;
const backendMs = () => {
  if (backend === undefined) return 0;
  const fields = readFileSync(`/proc/${backend}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in ticks of 10 ms
};

const store = new EventStore(database.db);
const body = `B|${"x".repeat(90)}`;
let sent = 0;

/** One batch: consecutive messages go to different rooms, each room's members in turn. */
async function batch(size: number): Promise<void> {
  const wants = Array.from({ length: size }, () => {
    sent++;
    const room = sent % 200;
    return { roomId: `r${room}`, senderId: `u${room}-${Math.floor(sent / 200) % 10}`, clientIds: [`c${sent}`] };
  });
  wants.sort((a, b) => (a.roomId < b.roomId ? -1 : 1));
  await store.transaction(async (tx) => {
    const views = await tx.lockForSenders(wants);
    await tx.appendToRooms(
      wants.map((w, i) => ({
        room: views[i]?.room ?? (undefined as never),
        reader: w.senderId,
        events: [
          {
            senderId: w.senderId,
            kind: "text" as EventKind,
            content: { body },
            clientId: w.clientIds[0],
            searchText: body,
          },
        ],
      })),
    );
  });
}

for (const round of ["warm-up", "measured"]) {
  for (const size of sizes) {
    const cpu = process.cpuUsage();
    const server = backendMs();
    const started = performance.now();
    for (let i = 0; i < total / size; i++) await batch(size);
    const used = process.cpuUsage(cpu);
    const seconds = (performance.now() - started) / 1000;
    if (round === "measured") {
      const ms = (used.user + used.system) / 1000 / total;
      const db = backend === undefined ? "" : ` + ${((backendMs() - server) / total).toFixed(3)} ms in PostgreSQL`;
      console.log(`batch ${size}: ${ms.toFixed(3)} ms CPU per message${db}, ${Math.round(total / seconds)} messages/s`);
    }
  }
}
await database.close();
