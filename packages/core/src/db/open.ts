import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { pglitePool } from "./pglite-pool.js";

export interface Database<Schema> {
  readonly db: Kysely<Schema>;
  readonly kind: "postgres" | "pglite";
  /** Resolves when the database answers a query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Connections in the pool (PostgreSQL only). */
  poolSize?: number;
}

const INT8 = 20;
const parseInt8 = (v: string) => Number(v);

/**
 * Opens the database named by `uri`:
 * - `postgresql://user@host:port/db` (or `postgres://`): a pg pool;
 * - `pglite://memory`: an embedded in-memory PGlite;
 * - `pglite://./data` or `pglite:///abs/dir`: an embedded PGlite persisted to that folder.
 * int8 columns come back as numbers on both (every int8 here is a count or seq below 2^53).
 */
export async function openDatabase<Schema>(uri: string, options: DatabaseOptions = {}): Promise<Database<Schema>> {
  if (uri.startsWith("pglite://")) {
    const location = uri.slice("pglite://".length);
    const dataDir = location === "" || location === "memory" ? undefined : location;
    const embedded = await PGlite.create({ ...(dataDir ? { dataDir } : {}), parsers: { [INT8]: parseInt8 } });
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: pglitePool(embedded) }) });
    return wrap(db, "pglite");
  }
  if (uri.startsWith("postgresql://") || uri.startsWith("postgres://")) {
    const pool = new pg.Pool({
      connectionString: uri,
      max: options.poolSize ?? 10,
      types: {
        getTypeParser: ((oid: number, format?: "text" | "binary") =>
          oid === INT8 ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client that loses its server must not crash the process; the next query reports it.
    pool.on("error", () => {});
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
    return wrap(db, "postgres");
  }
  throw new Error(`unsupported database URI scheme: ${uri.split(":")[0]}`);
}

function wrap<Schema>(db: Kysely<Schema>, kind: "postgres" | "pglite"): Database<Schema> {
  return {
    db,
    kind,
    async ping() {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}
