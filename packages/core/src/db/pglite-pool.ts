import type { PGlite } from "@electric-sql/pglite";
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";
import type { PoolStats } from "./open.js";
import { preparedStatements } from "./pglite-statements.js";

/**
 * Lets Kysely's PostgreSQL dialect drive an embedded PGlite. PGlite is one connection, so the
 * "pool" hands it to one borrower at a time: a transaction owns it from BEGIN to COMMIT and other
 * queries wait their turn, exactly as they would for a pool of size one.
 *
 * PGlite runs each statement synchronously and answers through promises only, so a chain of
 * borrowers would run back to back in microtasks and the event loop would read no socket until
 * the chain ran dry: each request would be served alone, and group commit would never see two
 * sends together. The connection therefore passes to the next borrower on a new turn of the event
 * loop (setImmediate), after pending I/O has been read.
 */
export function pglitePool(pg: PGlite): PostgresPool & { stats(): PoolStats } {
  let tail: Promise<void> = Promise.resolve();
  const prepared = preparedStatements(pg);
  /** Borrowers waiting for the connection, and whether one holds it (for the pool metrics). */
  let waiting = 0;
  let inUse = 0;

  const client = (release: () => void): PostgresPoolClient =>
    ({
      async query<R>(sql: unknown, parameters?: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
        if (typeof sql !== "string") throw new Error("cursors are not supported on PGlite");
        const command = sql.trimStart().slice(0, 8).split(/\s/)[0]?.toUpperCase() as PostgresQueryResult<R>["command"];
        if (!parameters || parameters.length === 0) {
          // The simple protocol: allows several statements (migrations) in one call.
          const results = await pg.exec(sql);
          const last = results[results.length - 1];
          return { command, rowCount: last?.affectedRows ?? 0, rows: (last?.rows ?? []) as R[] };
        }
        const result = await prepared<R>(sql, parameters);
        return { command, rowCount: result.affectedRows, rows: result.rows };
      },
      release,
    }) as PostgresPoolClient;

  return {
    connect() {
      let release!: () => void;
      const turn = new Promise<void>((resolve) => {
        release = () => {
          inUse = 0;
          resolve();
        };
      });
      const ready = tail.then(nextTurn);
      tail = ready.then(() => turn);
      waiting++;
      return ready.then(() => {
        waiting--;
        inUse = 1;
        return client(release);
      });
    },
    stats: () => ({ total: 1, idle: 1 - inUse, waiting }),
    async end() {
      await tail;
      await pg.close();
    },
  };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
