/**
 * The connection registry on Redis (ioredis), shared by every gateway using the same prefix.
 * Profile, device and connection ids are encodeURIComponent-ed in key names, so ':' cannot collide.
 *
 * - `<prefix>:conn:<connectionId>`, hash: the ConnectionInfo; PEXPIREAT its expiry (now + ttl at the
 *   last register), so a connection whose gateway stops refreshing disappears on its own.
 * - `<prefix>:dev:<profile>:<device>`, sorted set: connectionId scored by connectedAt, giving the
 *   device's connections oldest first. A member whose hash is gone is dead and is pruned when read.
 * - `<prefix>:prof:<profile>`, sorted set: connectionId scored by its expiry, so online() is a count of
 *   scores above now, with expired members pruned by the same pipeline (ZREMRANGEBYSCORE).
 * - Both sorted sets expire with their longest-lived member (PEXPIREAT NX, then GT), so nothing is
 *   left behind once every connection of a device or profile has expired.
 * - `<prefix>:seen`, sorted set: profileId scored by the time last seen. ZADD GT keeps the maximum
 *   atomically; it has no TTL, so it outlives the connections.
 * register and remove are one script call each, so readers never see a connection half written or
 * half removed; the registers and removes asked for in the same turn of the event loop (the hellos
 * of a burst of connects, the ends of a burst of disconnects) go out together in one pipeline: one
 * write and one round trip for all of them. refresh (heartbeats) is one script call per 500
 * connections, all of a tick in one pipeline: the script does nothing for a connection whose hash
 * is gone, so a late heartbeat never brings a removed one back.
 * Expiries are absolute times from the gateway's clock, compared with the server's (key expiry) and the
 * reader's (online): gateway clocks are expected to be in sync to well under a TTL.
 */
import { Redis } from "ioredis";
import { logClientErrors } from "../client-errors.js";
import type { Logger } from "../logger.js";
import type { ConnectionInfo, ConnectionRegistry } from "./ports.js";

type Results = [error: Error | null, result: unknown][] | null;

/**
 * The heartbeats of many connections: KEYS seen, then conn, dev, prof of each; ARGV expiry, then
 * connectionId, profileId, lastHeartbeat of each. Only for connections still registered; their
 * sets live as long as their longest-lived member. Answers how many were still registered.
 */
const REFRESH = `
local expiry = ARGV[1]
local n = 0
for i = 0, (#KEYS - 1) / 3 - 1 do
  local conn, dev, prof = KEYS[2 + 3 * i], KEYS[3 + 3 * i], KEYS[4 + 3 * i]
  local id, profile, beat = ARGV[2 + 3 * i], ARGV[3 + 3 * i], ARGV[4 + 3 * i]
  if redis.call('exists', conn) == 1 then
    redis.call('hset', conn, 'lastHeartbeat', beat)
    redis.call('pexpireat', conn, expiry)
    redis.call('zadd', prof, expiry, id)
    redis.call('pexpireat', dev, expiry, 'GT')
    redis.call('pexpireat', prof, expiry, 'GT')
    redis.call('zadd', KEYS[1], 'GT', beat, profile)
    n = n + 1
  end
end
return n`;

/** Connections per refresh script call: a few milliseconds of the server's time each. */
const REFRESH_PER_CALL = 500;

/**
 * A new connection: KEYS conn, dev, prof, seen; ARGV connectionId, profileId, deviceId, gatewayId,
 * connectedAt, lastHeartbeat, expiry. Answers how many connections the device has now.
 */
const REGISTER = `
redis.call('hset', KEYS[1], 'connectionId', ARGV[1], 'profileId', ARGV[2], 'deviceId', ARGV[3],
  'gatewayId', ARGV[4], 'connectedAt', ARGV[5], 'lastHeartbeat', ARGV[6])
redis.call('pexpireat', KEYS[1], ARGV[7])
redis.call('zadd', KEYS[2], ARGV[5], ARGV[1])
redis.call('zadd', KEYS[3], ARGV[7], ARGV[1])
for i = 2, 3 do
  redis.call('pexpireat', KEYS[i], ARGV[7], 'NX')
  redis.call('pexpireat', KEYS[i], ARGV[7], 'GT')
end
redis.call('zadd', KEYS[4], 'GT', ARGV[6], ARGV[2])
return redis.call('zcard', KEYS[2])`;

/** A connection that ended: KEYS conn, dev, prof, seen; ARGV connectionId, profileId, now. */
const REMOVE = `
redis.call('del', KEYS[1])
redis.call('zrem', KEYS[2], ARGV[1])
redis.call('zrem', KEYS[3], ARGV[1])
redis.call('zadd', KEYS[4], 'GT', ARGV[3], ARGV[2])
return 1`;

interface Scripts {
  registerConnection(
    conn: string,
    dev: string,
    prof: string,
    seen: string,
    connectionId: string,
    profileId: string,
    deviceId: string,
    gatewayId: string,
    connectedAt: number,
    lastHeartbeat: number,
    expires: number,
  ): Promise<number>;
  removeConnection(
    conn: string,
    dev: string,
    prof: string,
    seen: string,
    connectionId: string,
    profileId: string,
    now: number,
  ): Promise<number>;
}

/** One call waiting for the turn's pipeline: adds itself to it, then hears its own result. */
interface Queued {
  add(pipeline: Scripts): void;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

interface WithRefresh {
  refreshConnections(keys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
}

function check(results: Results): unknown[] {
  if (!results) throw new Error("redis transaction aborted");
  return results.map(([error, result]) => {
    if (error) throw error;
    return result;
  });
}

/** Opens a registry on `uri` (redis://host:port[/db]) under the key prefix `prefix`. */
export async function openRedisRegistry(uri: string, prefix: string, logger?: Logger): Promise<RedisRegistry> {
  const redis = new Redis(uri, { lazyConnect: true });
  logClientErrors(redis, "Redis (registry)", logger);
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  return new RedisRegistry(redis, prefix);
}

export class RedisRegistry implements ConnectionRegistry {
  /** Registers and removes asked for in this turn, sent together at its end. */
  private queued: Queued[] = [];

  /** Takes `redis` over: close() quits it. */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand("refreshConnections", { lua: REFRESH });
    redis.defineCommand("registerConnection", { numberOfKeys: 4, lua: REGISTER });
    redis.defineCommand("removeConnection", { numberOfKeys: 4, lua: REMOVE });
  }

  async register(c: ConnectionInfo, ttlMs: number): Promise<number> {
    const expires = Date.now() + ttlMs;
    const count = await this.enqueue((p) =>
      p.registerConnection(
        this.connKey(c.connectionId),
        this.devKey(c.profileId, c.deviceId),
        this.profKey(c.profileId),
        this.seenKey(),
        c.connectionId,
        c.profileId,
        c.deviceId,
        c.gatewayId,
        c.connectedAt,
        c.lastHeartbeat,
        expires,
      ),
    );
    return Number(count);
  }

  /** Queues one script call for the pipeline sent at the end of this turn. */
  private enqueue(add: (pipeline: Scripts) => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.flush());
      this.queued.push({ add, resolve, reject });
    });
  }

  private flush(): void {
    const calls = this.queued;
    this.queued = [];
    const pipeline = this.redis.pipeline() as unknown as Scripts & { exec(): Promise<Results> };
    for (const call of calls) call.add(pipeline);
    pipeline.exec().then(
      (results) => {
        if (!results) {
          for (const call of calls) call.reject(new Error("redis pipeline aborted"));
          return;
        }
        calls.forEach((call, i) => {
          const [error, result] = results[i] ?? [new Error("no result"), null];
          if (error) call.reject(error);
          else call.resolve(result);
        });
      },
      (error: Error) => {
        for (const call of calls) call.reject(error);
      },
    );
  }

  async refresh(connections: readonly ConnectionInfo[], ttlMs: number): Promise<void> {
    if (connections.length === 0) return;
    const expires = Date.now() + ttlMs;
    const pipeline = this.redis.pipeline() as unknown as WithRefresh & { exec(): Promise<Results> };
    for (let at = 0; at < connections.length; at += REFRESH_PER_CALL) {
      const some = connections.slice(at, at + REFRESH_PER_CALL);
      const keys: string[] = [this.seenKey()];
      const args: (string | number)[] = [expires];
      for (const c of some) {
        keys.push(this.connKey(c.connectionId), this.devKey(c.profileId, c.deviceId), this.profKey(c.profileId));
        args.push(c.connectionId, c.profileId, c.lastHeartbeat);
      }
      void pipeline.refreshConnections(keys.length, ...keys, ...args);
    }
    check(await pipeline.exec());
  }

  async remove(c: Pick<ConnectionInfo, "connectionId" | "profileId" | "deviceId">): Promise<void> {
    const now = Date.now();
    await this.enqueue((p) =>
      p.removeConnection(
        this.connKey(c.connectionId),
        this.devKey(c.profileId, c.deviceId),
        this.profKey(c.profileId),
        this.seenKey(),
        c.connectionId,
        c.profileId,
        now,
      ),
    );
  }

  async deviceConnections(profileId: string, deviceId: string): Promise<ConnectionInfo[]> {
    const dev = this.devKey(profileId, deviceId);
    const ids = await this.redis.zrange(dev, 0, "-1");
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.connKey(id));
    const hashes = check(await pipeline.exec()) as Record<string, string>[];
    const live: ConnectionInfo[] = [];
    const dead: string[] = [];
    hashes.forEach((h, i) => {
      if (h.profileId === profileId && h.deviceId === deviceId) live.push(parse(h));
      else dead.push(ids[i]!);
    });
    if (dead.length > 0) await this.redis.zrem(dev, ...dead);
    return live;
  }

  async online(profileIds: readonly string[]): Promise<Set<string>> {
    const unique = [...new Set(profileIds)];
    if (unique.length === 0) return new Set();
    const now = Date.now();
    const pipeline = this.redis.pipeline();
    for (const p of unique) {
      const key = this.profKey(p);
      pipeline.zremrangebyscore(key, "-inf", now).zcount(key, `(${now}`, "+inf");
    }
    const results = check(await pipeline.exec());
    return new Set(unique.filter((_, i) => Number(results[2 * i + 1]) > 0));
  }

  async lastSeen(profileIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (profileIds.length === 0) return out;
    const scores = await this.redis.zmscore(this.seenKey(), ...profileIds);
    profileIds.forEach((p, i) => {
      const score = scores[i];
      if (score !== null && score !== undefined) out.set(p, Number(score));
    });
    return out;
  }

  async forget(profileId: string): Promise<void> {
    const ids = await this.redis.zrange(this.profKey(profileId), 0, "-1");
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.connKey(id), "deviceId");
    const devices = ids.length > 0 ? (check(await pipeline.exec()) as (string | null)[]) : [];
    const tx = this.redis.multi();
    ids.forEach((id, i) => {
      tx.del(this.connKey(id));
      const deviceId = devices[i];
      if (deviceId) tx.zrem(this.devKey(profileId, deviceId), id);
    });
    check(await tx.del(this.profKey(profileId)).zrem(this.seenKey(), profileId).exec());
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private connKey(connectionId: string): string {
    return `${this.prefix}:conn:${encodeURIComponent(connectionId)}`;
  }

  private devKey(profileId: string, deviceId: string): string {
    return `${this.prefix}:dev:${encodeURIComponent(profileId)}:${encodeURIComponent(deviceId)}`;
  }

  private profKey(profileId: string): string {
    return `${this.prefix}:prof:${encodeURIComponent(profileId)}`;
  }

  private seenKey(): string {
    return `${this.prefix}:seen`;
  }
}

function parse(h: Record<string, string>): ConnectionInfo {
  return {
    connectionId: h.connectionId!,
    profileId: h.profileId!,
    deviceId: h.deviceId!,
    gatewayId: h.gatewayId!,
    connectedAt: Number(h.connectedAt),
    lastHeartbeat: Number(h.lastHeartbeat),
  };
}
