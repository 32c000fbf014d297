import type { Kysely, Transaction } from "kysely";
import type { Schema } from "./schema.js";

/** The database as the stores see it: the pool, or one transaction (a Transaction is a Kysely). */
export type Db = Kysely<Schema>;
export type Tx = Transaction<Schema>;

/**
 * The base of every store (`<area>/store.ts`): SQL in, rows out, over a `Db`. Services never see
 * the `Db`; they call the store's methods. A service that needs several statements in one
 * transaction calls `transaction`, which hands it the same store bound to that transaction
 * (docs/persistence.md, "Stores"). A store that writes another area's rows in its transactions
 * holds that area's store, built over the same `Db` in its constructor.
 */
export abstract class Store {
  constructor(protected readonly db: Db) {}

  /**
   * Runs `work` in one transaction, with a copy of this store bound to it; commits when it
   * resolves, then tells that copy (`afterCommit`).
   */
  async transaction<T>(work: (tx: this) => Promise<T>): Promise<T> {
    let bound: this | undefined;
    const result = await this.db.transaction().execute((trx) => {
      bound = this.bind(trx);
      return work(bound);
    });
    bound?.afterCommit();
    return result;
  }

  /** This store over `tx`; a store with more to its constructor than the `Db` says how. */
  protected bind(tx: Db): this {
    const Bound = this.constructor as new (db: Db) => this;
    return new Bound(tx);
  }

  /** Called on a transaction's copy of the store once that transaction committed. */
  afterCommit(): void {}
}

/** An ILIKE pattern matching `q` anywhere: `%` and `_` in a user's query match themselves, not any text. */
export const likePattern = (q: string) => `%${q.replace(/[\\%_]/g, "\\$&")}%`;
