import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Kysely, sql } from "kysely";

/** Any constant shared by every instance: migrations of one database run one instance at a time. */
const MIGRATION_LOCK = 0x63686174;

/**
 * A step run after the SQL migrations at every start, in their transaction and under their lock:
 * it brings the database in line with something the code derives (e.g. a CHECK from a list in the
 * code) and answers whether it had to change anything. It must be idempotent.
 */
export interface MigrationStep {
  readonly name: string;
  run(trx: Kysely<any>): Promise<boolean>;
}

/**
 * Applies the `NNNN_name.sql` files of `dir` that the database has not seen, in name order, then
 * runs `steps`, all in one transaction under an advisory lock, so several instances starting
 * together migrate once (the others find nothing to do). Returns the versions applied and the
 * names of the steps that changed something.
 */
export async function migrate(db: Kysely<any>, dir: string, steps: readonly MigrationStep[] = []): Promise<string[]> {
  const files = await migrationFiles(dir);
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`.execute(trx);
    await sql.raw(CREATE_MIGRATIONS_TABLE).execute(trx);
    const done = new Set(
      (await sql<{ version: string }>`select version from schema_migrations`.execute(trx)).rows.map((r) => r.version),
    );
    const applied: string[] = [];
    for (const file of files) {
      const version = file.slice(0, -4);
      if (done.has(version)) continue;
      await sql.raw(await readFile(join(dir, file), "utf8")).execute(trx);
      await sql`insert into schema_migrations (version) values (${version})`.execute(trx);
      applied.push(version);
    }
    for (const step of steps) if (await step.run(trx)) applied.push(step.name);
    return applied;
  });
}

/**
 * The SQL migrations of `dir` as one script, in one transaction, recording each version as
 * `migrate` does: for a database just created, where nothing can run concurrently (an embedded
 * one, set up by a short-lived process of its own). `migrate` then finds them applied and runs
 * only its steps.
 */
export async function migrationScript(dir: string): Promise<string> {
  const parts = ["begin;", `${CREATE_MIGRATIONS_TABLE};`];
  for (const file of await migrationFiles(dir)) {
    parts.push(
      await readFile(join(dir, file), "utf8"),
      `\n;\ninsert into schema_migrations (version) values ('${file.slice(0, -4)}');`,
    );
  }
  parts.push("commit;");
  return parts.join("\n");
}

const CREATE_MIGRATIONS_TABLE = `create table if not exists schema_migrations (
  version text primary key,
  applied_at timestamptz not null default now()
)`;

/** The `NNNN_name.sql` files of `dir`, in name order (a name is also a safe SQL literal). */
const migrationFiles = async (dir: string) => (await readdir(dir)).filter((f) => MIGRATION_FILE.test(f)).sort();
const MIGRATION_FILE = /^\d{4}_[\w-]+\.sql$/;

/** The migrations in `dir` that the database has not applied yet (for readiness checks). */
export async function pendingMigrations(db: Kysely<any>, dir: string): Promise<string[]> {
  const files = (await migrationFiles(dir)).map((f) => f.slice(0, -4));
  const rows = await sql<{ version: string }>`select version from schema_migrations`
    .execute(db)
    .catch(() => ({ rows: [] }));
  const done = new Set(rows.rows.map((r) => r.version));
  return files.filter((v) => !done.has(v));
}
