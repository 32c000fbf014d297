import type { PostgresPool, PostgresPoolClient } from "kysely";
import type pg from "pg";

/**
 * Names for the statement texts that recur. A named statement is parsed once per connection and
 * then only bound and executed; once PostgreSQL settles on a generic plan it is not planned again
 * either. Unnamed, every call of the send path's statements was parsed and planned anew: most of
 * PostgreSQL's CPU for a small transaction.
 *
 * A text gets a name the `after`-th time it is seen, and at most `max` texts get one: a text built
 * for one call (an IN list of that call's length) stays unnamed, and a connection holds at most
 * `max` prepared statements. Statements without parameters (BEGIN, COMMIT, migrations) stay on the
 * simple protocol.
 */
export class StatementNames {
  private readonly names = new Map<string, string>();
  private readonly seen = new Map<string, number>();
  private generation = 0;

  constructor(
    private readonly max = 256,
    private readonly after = 3,
  ) {}

  nameOf(text: string): string | undefined {
    const known = this.names.get(text);
    if (known !== undefined || this.names.size >= this.max) return known;
    const count = (this.seen.get(text) ?? 0) + 1;
    if (count < this.after) {
      // Texts seen once or twice are counted in a map that starts over when it fills up.
      if (this.seen.size >= 8 * this.max) this.seen.clear();
      this.seen.set(text, count);
      return undefined;
    }
    this.seen.delete(text);
    const name = `sc${this.generation}_${this.names.size}`;
    this.names.set(text, name);
    return name;
  }

  /**
   * Forgets every name: the next uses prepare again under new names. For "cached plan must not
   * change result type", which a prepared `select *` answers after a migration changed the table.
   */
  reset(): void {
    this.generation++;
    this.names.clear();
    this.seen.clear();
  }
}

/** PostgreSQL's answer when a prepared statement's result columns changed under it (SQLSTATE 0A000). */
const isStalePlan = (err: unknown) =>
  (err as { code?: unknown })?.code === "0A000" && /cached plan/.test(String((err as Error).message));

/**
 * The pool as Kysely's PostgreSQL dialect sees it, with recurring statements prepared (see
 * `StatementNames`). A statement that fails because its plan went stale fails once (its
 * transaction is aborted anyway); the names are then reset, so the next run prepares it afresh.
 */
export function preparingPool(pool: pg.Pool, names = new StatementNames()): PostgresPool {
  const wrap = (client: pg.PoolClient): PostgresPoolClient =>
    ({
      query(text: unknown, values?: unknown[]) {
        const name = typeof text === "string" && values && values.length > 0 ? names.nameOf(text) : undefined;
        if (name === undefined) return client.query(text as string, values);
        return client.query({ name, text: text as string, values }).catch((err: unknown) => {
          if (isStalePlan(err)) names.reset();
          throw err;
        });
      },
      release: (destroy?: boolean) => client.release(destroy),
    }) as unknown as PostgresPoolClient;
  return {
    connect: async () => wrap(await pool.connect()),
    end: () => pool.end(),
  };
}
