import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import pg from "pg";

export const PG_SERVER = process.env.BENCH_POSTGRES_URI ?? "postgresql://postgres@127.0.0.1:5432/postgres";
export const NATS = process.env.BENCH_NATS_URI ?? "nats://127.0.0.1:4222";
export const REDIS = process.env.BENCH_REDIS_URI ?? "redis://127.0.0.1:6379";

async function admin<T = unknown>(statement: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: PG_SERVER });
  await c.connect();
  try {
    return (await c.query(statement)).rows as T[];
  } finally {
    await c.end();
  }
}

/** A database of its own for this run; `drop` removes it (also with connections still open). */
export async function createDatabase(name: string): Promise<{ name: string; uri: string; drop(): Promise<void> }> {
  await admin(`create database ${name}`);
  const uri = new URL(PG_SERVER);
  uri.pathname = `/${name}`;
  return {
    name,
    uri: uri.toString(),
    drop: () => admin(`drop database if exists ${name} with (force)`).then(() => {}),
  };
}

export async function pgSetting(name: string): Promise<string> {
  const rows = await admin<Record<string, string>>(`show ${name}`);
  return Object.values(rows[0] ?? {})[0] ?? "";
}

/** Removes the JetStream stream a run's queue name created (its consumers go with it). */
export async function deleteNatsStream(name: string): Promise<void> {
  const nc = await natsConnect({ servers: NATS, name: "bench-cleanup" });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(name).catch(() => false);
  } finally {
    await nc.close();
  }
}

/** Deletes every Redis key under `prefix:` (stream partitions, leases, registry). */
export async function deleteRedisKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return deleted;
}

const tryRun = (cmd: string, args: string[]): string => {
  try {
    return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"] })
      .toString()
      .trim();
  } catch {
    return "unknown";
  }
};

/** What the figures were measured on. */
export async function environment() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  const redis = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 2 });
  let redisVersion = "unknown";
  try {
    await redis.connect();
    redisVersion = /redis_version:(\S+)/.exec(await redis.info("server"))?.[1] ?? "unknown";
  } catch {
    // reported as unknown
  } finally {
    redis.disconnect();
  }
  let natsVersion = "unknown";
  try {
    const nc = await natsConnect({ servers: NATS, name: "bench-info" });
    natsVersion = nc.info?.version ?? "unknown";
    await nc.close();
  } catch {
    // reported as unknown
  }
  return {
    cpuModel: model,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: tryRun("uname", ["-r"]),
    node: process.version,
    postgres: (await admin<{ v: string }>("select version() as v"))[0]?.v ?? "unknown",
    pgbench: tryRun("pgbench", ["--version"]),
    synchronousCommit: await pgSetting("synchronous_commit"),
    postgresSettings: {
      fsync: await pgSetting("fsync"),
      shared_buffers: await pgSetting("shared_buffers"),
      max_connections: await pgSetting("max_connections"),
      wal_level: await pgSetting("wal_level"),
    },
    nats: natsVersion,
    redis: redisVersion,
    openFilesLimit: tryRun("sh", ["-c", "ulimit -n"]),
    loadAverageAtStart: readFileSync("/proc/loadavg", "utf8").trim(),
    gitCommit: tryRun("git", ["rev-parse", "--short", "HEAD"]),
    /** Files of apps/ and packages/ that differ from that commit when the run started. */
    uncommittedProductFiles: tryRun("git", ["status", "--porcelain", "--", "apps", "packages"])
      .split("\n")
      .filter((l) => l.trim() && l !== "unknown").length,
  };
}

/** Whether a name made by a run (`bench_<pid>_…`) belongs to a run whose process is gone. */
const stale = (name: string) => {
  const pid = /^bench_(\d+)_/.exec(name)?.[1];
  return pid !== undefined && Number(pid) !== process.pid && !existsSync(`/proc/${pid}`);
};

/**
 * Removes what an earlier run could not (it was killed outright): its databases, NATS streams and
 * Redis keys, recognised by the `bench_<pid>_` prefix of a process that no longer exists.
 */
export async function sweepStale(): Promise<string[]> {
  const removed: string[] = [];
  const dbs = await admin<{ datname: string }>("select datname from pg_database where datname like 'bench\\_%'");
  for (const { datname } of dbs) {
    if (!stale(datname)) continue;
    await admin(`drop database if exists ${datname} with (force)`);
    removed.push(`database ${datname}`);
  }
  const nc = await natsConnect({ servers: NATS, name: "bench-sweep" });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const info of jsm.streams.list()) {
      if (!stale(info.config.name)) continue;
      await jsm.streams.delete(info.config.name).catch(() => false);
      removed.push(`NATS stream ${info.config.name}`);
    }
  } finally {
    await nc.close();
  }
  const redis = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  try {
    const prefixes = new Set<string>();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", "bench_*", "COUNT", 1000);
      cursor = next;
      for (const k of keys) if (stale(k)) prefixes.add(k.split(":")[0] as string);
    } while (cursor !== "0");
    redis.disconnect();
    for (const p of prefixes) {
      await deleteRedisKeys(p);
      removed.push(`Redis keys ${p}:*`);
    }
  } finally {
    redis.disconnect();
  }
  return removed;
}
