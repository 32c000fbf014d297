import { type Database, openDatabase } from "@service-chat/core";
import { freshDatabase, TEST_DB } from "@service-chat/testing";
import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sendLimits } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { Schema } from "../../src/db/schema.js";
import type { Tx } from "../../src/db/store.js";
import {
  type CommitterLimits,
  type CommitterOptions,
  GroupCommitter,
  type StoreBatch,
  type Transactional,
} from "../../src/events/committer.js";

// The committer on its own, against the test database: a table of its own, jobs that insert into
// it, and a first job held open so that the next ones queue up behind it. A job here is a function
// of the transaction; a batch runs its jobs one after another.

const LIMITS = sendLimits(loadConfig({}), TEST_DB);
type Probe = (trx: Tx) => Promise<unknown>;
const runEach: StoreBatch<Tx, Probe, unknown> = async (trx, jobs) => {
  const answers = [];
  for (const job of jobs) answers.push(await job(trx));
  return answers;
};

let database: Database<Schema>;
let drop: () => Promise<void>;
/** The committer's view of the database: transactions, handed over as they are. */
const probes: Transactional<Tx> = { transaction: (work) => database.db.transaction().execute(work) };
beforeAll(async () => {
  const fresh = await freshDatabase();
  drop = fresh.drop;
  database = await openDatabase<Schema>(fresh.uri, { poolSize: 4 });
  await sql`create table probe (id text primary key)`.execute(database.db);
});
afterAll(async () => {
  await database.close();
  await drop();
});

const txid = async (trx: Kysely<Schema>) =>
  (await sql<{ tx: string }>`select txid_current()::text as tx`.execute(trx)).rows[0]?.tx;
const insert = (trx: Kysely<Schema>, id: string) => sql`insert into probe (id) values (${id})`.execute(trx);
/** The transaction that stored each probe row. */
async function storedBy(ids: string[]): Promise<Record<string, string>> {
  const { rows } = await sql<{
    id: string;
    tx: string;
  }>`select id, xmin::text as tx from probe where id = any(${ids})`.execute(database.db);
  return Object.fromEntries(rows.map((r) => [r.id, r.tx]));
}

/** A committer with one batch at a time, whose first job waits until `open` is called. */
function heldCommitter(limits: Partial<CommitterLimits> = {}, options: Partial<CommitterOptions> = {}) {
  const committer = new GroupCommitter(probes, runEach, {
    ...options,
    limits: { ...LIMITS, inFlight: 1, ...limits },
  });
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const first = committer.run("held", 1, async (trx: Tx) => {
    await gate;
    return txid(trx);
  });
  return { committer, first, open };
}

it("stores the jobs queued behind a running batch together, in key order, arrival order within a key", async () => {
  const { committer, first, open } = heldCommitter();
  const order: string[] = [];
  const queued = [
    ["c", "order-c1"],
    ["a", "order-a1"],
    ["b", "order-b1"],
    ["a", "order-a2"],
  ].map(([key, id]) =>
    committer.run(key as string, 1, async (trx: Tx) => {
      order.push(id as string);
      await insert(trx, id as string);
      return txid(trx);
    }),
  );
  open();
  const [held, ...txs] = await Promise.all([first, ...queued]);
  expect(order).toEqual(["order-a1", "order-a2", "order-b1", "order-c1"]);
  expect(new Set(txs).size).toBe(1);
  expect(txs[0]).not.toBe(held);
  expect(await storedBy(order)).toEqual(Object.fromEntries(order.map((id) => [id, txs[0]])));
});

it("caps a batch by jobs and by weight; a job heavier than the cap still runs", async () => {
  const { committer, first, open } = heldCommitter({ maxJobs: 2, maxWeight: 10 });
  const jobs = [1, 1, 1, 1, 1, 6, 6, 50].map((weight, i) => committer.run(`k${i}`, weight, (trx: Tx) => txid(trx)));
  open();
  await first;
  const txs = await Promise.all(jobs);
  // [1, 1] [1, 1] [1, 6] [6] [50]
  const batches = txs.map((tx) => txs.indexOf(tx as string));
  expect(batches).toEqual([0, 0, 2, 2, 4, 4, 6, 7]);
});

it("rolls a failed batch back and runs each job alone: the others are stored once, with fresh results", async () => {
  await insert(database.db, "taken");
  const failures: { err: unknown; jobs: number }[] = [];
  const { committer, first, open } = heldCommitter({}, { onBatchFailure: (err, jobs) => failures.push({ err, jobs }) });
  const attempts = new Map<string, number>();
  const job = (key: string, id: string) =>
    committer.run(key, 1, async (trx: Tx) => {
      attempts.set(id, (attempts.get(id) ?? 0) + 1);
      await insert(trx, id);
      return { tx: await txid(trx), attempt: attempts.get(id) };
    });
  const before = job("a", "fb-a");
  const failing = job("b", "taken"); // a unique violation, in the middle of the batch
  const after = job("c", "fb-c");
  open();
  await first;
  const [a, b, c] = await Promise.allSettled([before, failing, after]);
  expect(b).toMatchObject({ status: "rejected", reason: expect.objectContaining({ code: "23505" }) });
  expect(attempts).toEqual(
    new Map([
      ["fb-a", 2],
      ["taken", 2],
      ["fb-c", 1], // not reached before the batch failed
    ]),
  );
  // Each result is that of the transaction that committed, not of the batch rolled back.
  const stored = await storedBy(["fb-a", "fb-c"]);
  expect(a).toEqual({ status: "fulfilled", value: { tx: stored["fb-a"], attempt: 2 } });
  expect(c).toEqual({ status: "fulfilled", value: { tx: stored["fb-c"], attempt: 1 } });
  expect(stored["fb-a"]).not.toBe(stored["fb-c"]);
  // The failed batch was reported once, with its cause; the retries alone are not batches.
  expect(failures).toEqual([{ err: expect.objectContaining({ code: "23505" }), jobs: 3 }]);
});

it("does not run a lone job twice when it fails", async () => {
  const failures: unknown[] = [];
  const committer = new GroupCommitter(probes, runEach, {
    limits: LIMITS,
    onBatchFailure: (err) => failures.push(err),
  });
  let attempts = 0;
  const lone = committer.run("x", 1, async (trx: Tx) => {
    attempts++;
    await insert(trx, "taken");
  });
  await expect(lone).rejects.toMatchObject({ code: "23505" });
  expect(attempts).toBe(1);
  expect(failures).toEqual([]);
});
