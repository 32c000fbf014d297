import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../src/db/open.js";

const server = process.env.TEST_POSTGRES_URI ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const name = `chat_test_prepared_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;

async function admin(statement: string, connectionString = server) {
  const c = new pg.Client({ connectionString });
  await c.connect();
  try {
    await c.query(statement);
  } finally {
    await c.end();
  }
}

/** The statements prepared on the pool's one connection, by text. */
async function prepared(db: Database<unknown>): Promise<string[]> {
  const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(db.db);
  return rows.map((r) => r.statement);
}

describe("prepared statements (PostgreSQL)", () => {
  let uri: string;
  beforeAll(async () => {
    await admin(`create database ${name}`);
    const u = new URL(server);
    u.pathname = `/${name}`;
    uri = u.toString();
  });
  afterAll(() => admin(`drop database if exists ${name} with (force)`));

  it("prepares a statement that recurs, not one seen once, and keeps answering after a migration changed its columns", async () => {
    const db = await openDatabase<unknown>(uri, { poolSize: 1 });
    try {
      await sql`create table notes (id int primary key, body text)`.execute(db.db);
      await sql`insert into notes values (1, 'one'), (2, 'two')`.execute(db.db);
      const read = (id: number) =>
        sql<{ id: number; body: string }>`select * from notes where id = ${id}`.execute(db.db);
      await sql`select * from notes where id = ${1} and body is not null`.execute(db.db);
      for (let i = 0; i < 5; i++) expect((await read(1 + (i % 2))).rows[0]?.id).toBe(1 + (i % 2));
      const texts = await prepared(db);
      expect(texts).toContain("select * from notes where id = $1");
      expect(texts).not.toContain("select * from notes where id = $1 and body is not null");

      // Another process migrates: the prepared `select *` now has a column more.
      await admin(`alter table notes add column extra int default 7`, uri);
      await expect(read(1)).rejects.toThrow(/cached plan must not change result type/);
      // Prepared again under a new name: the new column is there.
      for (let i = 0; i < 4; i++) expect((await read(2)).rows[0]).toEqual({ id: 2, body: "two", extra: 7 });
    } finally {
      await db.close();
    }
  });

  it("prepares nothing when turned off", async () => {
    const db = await openDatabase<unknown>(uri, { poolSize: 1, preparedStatements: false });
    try {
      for (let i = 0; i < 5; i++) await sql`select ${i}::int as n`.execute(db.db);
      expect(await prepared(db)).toEqual([]);
    } finally {
      await db.close();
    }
  });
});
