import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate, migrationScript, openDatabase, pendingMigrations } from "@service-chat/core";
import { TEST_DB } from "@service-chat/testing";
import { sql } from "kysely";
import { expect, it } from "vitest";
import { MIGRATION_STEPS, MIGRATIONS } from "../../src/app.js";
import type { Schema } from "../../src/db/schema.js";

// A new embedded database folder is created and migrated by a short-lived process of its own
// (its memory leaves with it); the service then opens a database with every SQL migration applied.

it.runIf(TEST_DB === "pglite")("creates a new embedded folder with its migrations applied", async () => {
  const dir = await mkdtemp(join(tmpdir(), "chat-embedded-"));
  try {
    const uri = `pglite://${join(dir, "data")}`;
    const first = await openDatabase<Schema>(uri, { embeddedSetup: () => migrationScript(MIGRATIONS) });
    expect(await pendingMigrations(first.db, MIGRATIONS)).toEqual([]);
    // Commits are synced to the disk (PGlite's own default is fsync off).
    const setting = async (name: string) =>
      (await sql.raw<Record<string, string>>(`show ${name}`).execute(first.db)).rows[0]?.[name];
    expect([await setting("fsync"), await setting("wal_sync_method")]).toEqual(["on", "fsync"]);
    const steps = MIGRATION_STEPS.map((s) => s.name);
    expect((await migrate(first.db, MIGRATIONS, MIGRATION_STEPS)).every((v) => steps.includes(v))).toBe(true);
    await sql`insert into rooms (id, type, metadata, creator_id) values ('r1', 'group', '{}', 'x')`.execute(first.db);
    await first.close();
    // An existing folder is opened as it is: the setup is not run again.
    const again = await openDatabase<Schema>(uri, { embeddedSetup: () => Promise.reject(new Error("not again")) });
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from rooms`.execute(again.db);
    expect(rows[0]?.n).toBe(1);
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it.runIf(TEST_DB === "pglite")("reports a setup that fails, with the database's error", async () => {
  const dir = await mkdtemp(join(tmpdir(), "chat-embedded-"));
  try {
    const uri = `pglite://${join(dir, "data")}`;
    await expect(openDatabase(uri, { embeddedSetup: async () => "select * from no_such_table;" })).rejects.toThrow(
      /no_such_table/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
