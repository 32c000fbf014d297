import { randomBytes } from "node:crypto";
import pg from "pg";

/** The database the integration tests run on: the project sets TEST_DB (PGlite when unset). */
export const TEST_DB = (process.env.TEST_DB ?? "pglite") as "pglite" | "postgres";
/** The PostgreSQL server; it defaults to the local one with trust auth. */
export const POSTGRES_SERVER = process.env.TEST_POSTGRES_URI ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export interface FreshDatabase {
  uri: string;
  drop(): Promise<void>;
}

/**
 * A database of the test's own: an in-memory PGlite, or a new database on the PostgreSQL server
 * (dropped by `drop`). `kind` defaults to the project's TEST_DB.
 */
export async function freshDatabase(kind: "pglite" | "postgres" = TEST_DB): Promise<FreshDatabase> {
  if (kind === "pglite") return { uri: "pglite://memory", drop: async () => {} };
  const name = `chat_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = async (statement: string) => {
    const c = new pg.Client({ connectionString: POSTGRES_SERVER });
    await c.connect();
    try {
      await c.query(statement);
    } finally {
      await c.end();
    }
  };
  await admin(`create database ${name}`);
  const uri = new URL(POSTGRES_SERVER);
  uri.pathname = `/${name}`;
  return { uri: uri.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) };
}
