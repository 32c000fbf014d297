import { spawn } from "node:child_process";
import { existsSync, fsyncSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, type KyselyConfig, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { pglitePool } from "./pglite-pool.js";
import { preparingPool } from "./prepared.js";

export interface Database<Schema> {
  readonly db: Kysely<Schema>;
  readonly kind: "postgres" | "pglite";
  /** Resolves when the database answers a query. */
  ping(): Promise<void>;
  /** The connection pool now: connections open, idle, and callers waiting for one. */
  poolStats(): PoolStats;
  /** A connection of its own, for session-level locks and LISTEN. */
  session(): Promise<DbSession>;
  close(): Promise<void>;
}

/** A dedicated database session: its advisory locks last until it closes (or its process dies). */
export interface DbSession {
  /** Takes the session-level advisory lock `key` if no other session holds it. */
  tryLock(key: number): Promise<boolean>;
  /** Calls `onNotify` with the payload of each NOTIFY on `channel`. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<void>;
  /**
   * Aborts the moment the session's connection is lost (a server restart, a broken network): its
   * locks and LISTENs went with it, whatever the pool's other connections do.
   */
  readonly lost: AbortSignal;
  /** A round trip on the session; rejects (and aborts `lost`) when the connection does not answer. */
  check(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Connections in the pool (PostgreSQL only). */
  poolSize?: number;
  /**
   * How long opening a pooled connection may take before the call that needed it fails as
   * unavailable (PostgreSQL only; default 10 s): a server that drops packets would otherwise
   * leave calls waiting for their deadline.
   */
  connectTimeoutMs?: number;
  /**
   * Prepare recurring statements on each connection (PostgreSQL only; default on): see
   * prepared.ts. Off for a connection pooler that cannot keep prepared statements.
   */
  preparedStatements?: boolean;
  /** Told of each statement run through Kysely: its SQL, its duration and whether it failed (metrics). */
  onQuery?: (sql: string, ms: number, failed: boolean) => void;
  /**
   * SQL run once on an embedded database folder when it is created (e.g. `migrationScript`), by
   * the short-lived process that creates it: the memory PGlite grows to while running it then
   * leaves with that process (PGlite never gives memory back).
   */
  embeddedSetup?: () => Promise<string>;
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

/** Kysely's log hook, calling `onQuery` (Kysely times statements only when a log hook is set). */
const queryLog = (onQuery: DatabaseOptions["onQuery"]): KyselyConfig["log"] =>
  onQuery ? (e) => onQuery(e.query.sql, e.queryDurationMillis, e.level === "error") : undefined;

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
    if (dataDir && !existsSync(join(dataDir, "PG_VERSION")))
      await initEmbedded(dataDir, (await options.embeddedSetup?.()) ?? "");
    const embedded = await PGlite.create({
      ...(dataDir ? { dataDir } : {}),
      parsers: { [INT8]: parseInt8 },
      postgresqlconf: EMBEDDED_CONF,
      // PGlite's start parameters turn fsync off (-F); the folder's commits must reach the disk.
      startParams: PGlite.defaultStartParams.filter((p) => p !== "-F"),
    });
    if (dataDir) syncToDisk(embedded);
    const pool = pglitePool(embedded);
    const log = queryLog(options.onQuery);
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }), ...(log ? { log } : {}) });
    // One process owns an embedded database: its locks are always free, NOTIFY comes in process.
    const unlisten: (() => Promise<void>)[] = [];
    return wrap(db, "pglite", pool.stats, async () => ({
      tryLock: async () => true,
      lost: new AbortController().signal,
      check: async () => {},
      async listen(channel, onNotify) {
        unlisten.push(await embedded.listen(channel, onNotify));
      },
      async close() {
        for (const off of unlisten.splice(0)) await off().catch(() => {});
      },
    }));
  }
  if (uri.startsWith("postgresql://") || uri.startsWith("postgres://")) {
    const pool = new pg.Pool({
      connectionString: uri,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      // Prepared statements save the parse; each run is still planned for its values: a generic
      // plan of the send path's lock read made a batch of 100 sends cost PostgreSQL twice the CPU.
      ...(options.preparedStatements === false ? {} : { options: "-c plan_cache_mode=force_custom_plan" }),
      // Pooled connections that went quiet are probed, so a dead peer is noticed.
      keepAlive: true,
      types: {
        getTypeParser: ((oid: number, format?: "text" | "binary") =>
          oid === INT8 ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    });
    // A client that loses its server must not crash the process: an idle one is reported by the
    // pool's "error"; one checked out also emits "error" (pg does, besides failing its query) with
    // no listener of the pool's, so each client gets one of its own. Its query reports the loss.
    pool.on("error", () => {});
    pool.on("connect", (client) => client.on("error", () => {}));
    const log = queryLog(options.onQuery);
    const dialect = new PostgresDialect({ pool: options.preparedStatements === false ? pool : preparingPool(pool) });
    const db = new Kysely<Schema>({ dialect, ...(log ? { log } : {}) });
    const stats = () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
    return wrap(db, "postgres", stats, () => postgresSession(uri));
  }
  throw new Error(`unsupported database URI scheme: ${uri.split(":")[0]}`);
}

/**
 * The embedded server's settings. Its shared buffers live in the process's own memory (WASM), so
 * they are kept small: the operating system's page cache still holds the data files. Statements
 * are prepared once (pglite-statements.ts) but still planned for their values at each run, as the
 * unnamed statements they replace were: a generic plan of the send path's lock read
 * (jsonb_to_recordset) cost 5-10 times as much in a batch. The WAL is synced with fsync: see
 * syncToDisk.
 */
const EMBEDDED_CONF = "shared_buffers = 16MB\nplan_cache_mode = force_custom_plan\nwal_sync_method = fsync\n";

/**
 * Creates an embedded database folder (initdb) and runs `setupSql` on it (read from stdin) in a
 * short-lived child process: the memory of initdb (hundreds of MB of WASM heap) and of the setup
 * (the migrations: tens of MB) then leaves with that process instead of staying in this one.
 */
async function initEmbedded(dataDir: string, setupSql: string): Promise<void> {
  const code = [
    "const { PGlite } = await import(process.argv[1]);",
    "const chunks = []; for await (const c of process.stdin) chunks.push(c);",
    "const pg = await PGlite.create(process.argv[2]);",
    "const setup = Buffer.concat(chunks).toString('utf8'); if (setup) await pg.exec(setup);",
    "await pg.close();",
  ].join("\n");
  const pglite = import.meta.resolve("@electric-sql/pglite");
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", code, pglite, dataDir], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    child.stdin.end(setupSql);
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("exit", (status) =>
      status === 0
        ? resolve()
        : reject(new Error(`creating the embedded database in ${dataDir} failed: ${stderr.trim()}`)),
    );
  });
}

/**
 * PGlite starts its server with fsync off (-F), and the file system it runs a folder on
 * (Emscripten's NODEFS) has no fsync at all: a commit reached the operating system's cache, not the
 * disk, and an acknowledged message could be lost to a power cut. Started without -F and with
 * wal_sync_method = fsync (fdatasync is a no-op inside PGlite), the server asks for an fsync where
 * PostgreSQL does — the WAL at each commit, the data files at checkpoints — and this gives the
 * folder's files one, on their real descriptors. It blocks this process's thread while the disk
 * syncs: the price PostgreSQL pays in its own process, here paid once per group commit.
 */
function syncToDisk(embedded: PGlite): void {
  type Ops = Record<string, unknown>;
  const nodefs = (embedded as unknown as { mod?: { NODEFS?: { stream_ops?: Ops } } }).mod?.NODEFS;
  if (!nodefs?.stream_ops) {
    throw new Error(
      "cannot make the embedded database durable: this PGlite version's file system is not the one expected",
    );
  }
  nodefs.stream_ops.fsync = (stream: { nfd?: number }) => {
    if (stream.nfd !== undefined) fsyncSync(stream.nfd);
    return 0;
  };
}

/** How long a session's check may take before the connection counts as lost. */
const CHECK_TIMEOUT_MS = 5000;

async function postgresSession(uri: string): Promise<DbSession> {
  const client = new pg.Client({ connectionString: uri, keepAlive: true });
  const lost = new AbortController();
  let closing = false;
  const onLost = (err?: Error) => {
    if (!closing && !lost.signal.aborted) lost.abort(err ?? new Error("database session ended"));
  };
  client.on("error", onLost);
  client.on("end", () => onLost());
  await client.connect();
  const handlers = new Map<string, (payload: string) => void>();
  client.on("notification", (n) => handlers.get(n.channel)?.(n.payload ?? ""));
  return {
    lost: lost.signal,
    async check() {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("database session did not answer")), CHECK_TIMEOUT_MS);
      });
      try {
        await Promise.race([client.query("select 1"), timeout]);
      } catch (err) {
        onLost(err as Error);
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },
    async tryLock(key) {
      const { rows } = await client.query<{ ok: boolean }>("select pg_try_advisory_lock($1) as ok", [key]);
      return rows[0]?.ok === true;
    },
    async listen(channel, onNotify) {
      if (!/^[a-z_]+$/.test(channel)) throw new Error(`bad channel name ${channel}`);
      handlers.set(channel, onNotify);
      await client.query(`listen ${channel}`);
    },
    close() {
      closing = true;
      return client.end();
    },
  };
}

function wrap<Schema>(
  db: Kysely<Schema>,
  kind: "postgres" | "pglite",
  poolStats: () => PoolStats,
  session: () => Promise<DbSession>,
): Database<Schema> {
  return {
    db,
    kind,
    poolStats,
    session,
    async ping() {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}
