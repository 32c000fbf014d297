import { type Database, migrate, openDatabase } from "@service-chat/core";
import { freshDatabase, TEST_DB } from "@service-chat/testing";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATION_STEPS, MIGRATIONS } from "../../src/app.js";
import { allowedKinds, KINDS_CHECK } from "../../src/db/event-kinds.js";
import type { Schema } from "../../src/db/schema.js";
import { KIND_NAMES } from "../../src/events/kinds/index.js";

// The database's CHECK on room_events.type is derived from the list of kinds
// (events/kinds/index.ts) by a step the migrator runs after the SQL files, at every start.

let database: Database<Schema>;
let uri: string;
let drop: () => Promise<void>;
beforeAll(async () => {
  ({ uri, drop } = await freshDatabase());
  database = await openDatabase<Schema>(uri);
  await migrate(database.db, MIGRATIONS, MIGRATION_STEPS);
  await sql`insert into rooms (id, type, metadata, creator_id) values ('kinds-room', 'group', '{}', 'x')`.execute(
    database.db,
  );
});
afterAll(async () => {
  await database.close();
  await drop();
});

let seq = 0;
/** Stores an event of `type` with a raw INSERT, as nothing in the service would; answers the SQLSTATE of a refusal. */
async function insertKind(type: string): Promise<string | undefined> {
  seq++;
  return sql`insert into room_events (id, room_id, seq, sender_id, type, content, sent_at)
    values (${`kinds-${seq}`}, 'kinds-room', ${seq}, 'x', ${type}, '{}', now())`
    .execute(database.db)
    .then(
      () => undefined,
      (err: { code?: string }) => err.code ?? "?",
    );
}

const CHECK_VIOLATION = "23514";

/** Puts the CHECK back as an older release left it: these kinds only. */
async function checkAllows(kinds: string[]): Promise<void> {
  const list = kinds.map((k) => `'${k}'`).join(", ");
  await sql
    .raw(
      `alter table room_events drop constraint ${KINDS_CHECK}, add constraint ${KINDS_CHECK} check (type in (${list})) not valid`,
    )
    .execute(database.db);
}

describe("the CHECK on room_events.type", () => {
  it("allows every kind of the list and refuses a kind that is not in it", async () => {
    expect(await allowedKinds(database.db)).toEqual([...KIND_NAMES]);
    for (const kind of KIND_NAMES) expect(await insertKind(kind), kind).toBeUndefined();
    expect(await insertKind("poll")).toBe(CHECK_VIOLATION);
    expect(await insertKind("Text")).toBe(CHECK_VIOLATION);
  });

  it("has nothing to change on a database that allows every kind", async () => {
    expect(await migrate(database.db, MIGRATIONS, MIGRATION_STEPS)).toEqual([]);
  });

  it("gains a kind added to the list, once, with several instances migrating at once", async () => {
    const older = KIND_NAMES.filter((k) => k !== "call");
    await checkAllows(older);
    expect(await insertKind("call")).toBe(CHECK_VIOLATION);
    // Several instances start together: each with a database handle of its own (on PGlite there is
    // only the one, so they share it).
    const instances =
      TEST_DB === "postgres" ? await Promise.all([1, 2, 3].map(() => openDatabase<Schema>(uri))) : [database];
    try {
      const applied = await Promise.all(
        [0, 1, 2].map((i) => migrate((instances[i] ?? database).db, MIGRATIONS, MIGRATION_STEPS)),
      );
      // One of them changed the CHECK; the others, waiting for the migration lock, found it done.
      expect(applied.flat()).toEqual(["room_events.type allows every event kind"]);
    } finally {
      for (const d of instances) if (d !== database) await d.close();
    }
    expect(await allowedKinds(database.db)).toEqual([...older, "call"]);
    expect(await insertKind("call")).toBeUndefined();
    expect(await insertKind("poll")).toBe(CHECK_VIOLATION);
  });

  it("keeps a kind the list no longer has: taking one away is a numbered migration's job", async () => {
    await checkAllows([...KIND_NAMES, "legacy"]);
    expect(await migrate(database.db, MIGRATIONS, MIGRATION_STEPS)).toEqual([]);
    expect(await insertKind("legacy")).toBeUndefined();
  });

  it("is made again, checked against every row, when it is missing", async () => {
    await sql.raw(`alter table room_events drop constraint ${KINDS_CHECK}`).execute(database.db);
    expect(await insertKind("poll")).toBeUndefined();
    // A row of a kind outside the list stops the start rather than going unnoticed.
    await expect(migrate(database.db, MIGRATIONS, MIGRATION_STEPS)).rejects.toMatchObject({ code: CHECK_VIOLATION });
    await sql`delete from room_events where type in ('poll', 'legacy')`.execute(database.db);
    expect(await migrate(database.db, MIGRATIONS, MIGRATION_STEPS)).toEqual([
      "room_events.type allows every event kind",
    ]);
    expect(await allowedKinds(database.db)).toEqual([...KIND_NAMES]);
    expect(await insertKind("poll")).toBe(CHECK_VIOLATION);
  });
});
