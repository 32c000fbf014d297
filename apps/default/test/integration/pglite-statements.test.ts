import { openDatabase } from "@service-chat/core";
import { TEST_DB } from "@service-chat/testing";
import { sql } from "kysely";
import { expect, it } from "vitest";

// On PGlite each distinct parameterised SQL text becomes a named prepared statement, the least
// recently used closed beyond a bound (packages/core/src/db/pglite-statements.ts).

it.runIf(TEST_DB === "pglite")("runs statements prepared once, past the cache's bound, with typed values", async () => {
  const database = await openDatabase<any>("pglite://memory");
  try {
    const { db } = database;
    await sql`create table t (id int8 primary key, at timestamptz, tags text[], doc jsonb, ok boolean)`.execute(db);
    const at = new Date("2026-01-02T03:04:05.678Z");
    for (let i = 0; i < 300; i++) {
      // A different text each time: 300 statements, more than the cache holds.
      await sql`insert into t (id, at, tags, doc, ok) values (${i}, ${at}, ${["a", `b${i}`]}, ${JSON.stringify({ i })}, ${i % 2 === 0}) returning id as ${sql.ref(`n${i}`)}`.execute(
        db,
      );
    }
    const read = (id: number) =>
      sql<{
        id: number;
        at: Date;
        tags: string[];
        doc: { i: number };
        ok: boolean;
      }>`select * from t where id = ${id}`.execute(db);
    const [first, again] = [await read(0), await read(299)];
    // Prepared on the server, once per text, and no more than the bound kept (plus the one dropped
    // last, whose close goes with the next statement prepared).
    const prepared = async () =>
      (await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(db)).rows.map(
        (r) => r.statement,
      );
    expect((await prepared()).filter((t) => t === "select * from t where id = $1")).toHaveLength(1);
    expect((await prepared()).length).toBeLessThanOrEqual(257);
    expect(first.rows[0]).toEqual({ id: 0, at, tags: ["a", "b0"], doc: { i: 0 }, ok: true });
    expect(again.rows[0]).toMatchObject({ id: 299, tags: ["a", "b299"], ok: false });
    // The first texts were closed and are prepared again when they come back.
    await sql`insert into t (id, at, tags, doc, ok) values (${1000}, ${at}, ${["a", "b0"]}, ${"{}"}, ${true}) returning id as ${sql.ref("n0")}`.execute(
      db,
    );
    expect((await read(1000)).rows).toHaveLength(1);
    // A refused statement reports the database's error and leaves the connection usable.
    await expect(sql`insert into t (id) values (${0})`.execute(db)).rejects.toMatchObject({ code: "23505" });
    await expect(sql`select * from no_such_table where id = ${1}`.execute(db)).rejects.toThrow(/no_such_table/);
    expect((await read(0)).rows).toHaveLength(1);
  } finally {
    await database.close();
  }
});
