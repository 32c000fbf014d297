/**
 * The queue ports on Redis (ioredis).
 *
 * EventStream: one Redis stream per partition, `<name>:events:<p>`, each entry one field `d` (bytes).
 * - order: a publish's entries are XADDed in one MULTI/EXEC, so they get consecutive ids; `publish`
 *   resolves on the EXEC reply (surviving a Redis crash is Redis's persistence: AOF, appendfsync);
 * - at least once: a group is a consumer group `<group>` on the key; an entry stays in the group's
 *   pending entries list (PEL) until XACKed, which happens only after its handler resolved;
 * - exclusive and ordered across processes: only the holder of the lease `<name>:lease:<group>:<p>`
 *   (SET NX PX redeliveryMs, renewed every redeliveryMs/3 by a compare-and-PEXPIRE script) reads.
 *   It first handles the PEL again, lowest id first (XPENDING + XCLAIM) — under the lease, a pending
 *   entry is one whose handler failed or whose holder stopped or died — and only then reads a new entry
 *   (XREADGROUP COUNT 1 '>'). A holder that dies or stops mid-handler stops renewing: its lease, and
 *   with it its entry, passes on after redeliveryMs;
 * - deliveries: the PEL's delivery counter (XREADGROUP sets 1, each XCLAIM adds 1);
 * - lag: XINFO GROUPS `lag` (entries not yet delivered to the group) plus `pending`; XLEN without a group.
 *
 * LiveBus: pub/sub channels `<name>:<subject>`: at most once, nothing stored. One publishing connection
 * (auto-pipelined: a tick's PUBLISHes go out together, in order), one subscriber connection.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { logClientErrors } from "../client-errors.js";
import { raceAbort, sleep } from "../lifecycle.js";
import { LocalFirstBus } from "./local-first.js";
import { checkPartition, type EventStream, type LiveBus, type QueueOptions, type StreamEntry } from "./ports.js";

const DEFAULT_REDELIVERY_MS = 30_000;

/** Takes the lease KEYS[1] for ARGV[1] for ARGV[2] ms if it is free or already ARGV[1]'s; 1 if held. */
const TAKE_LEASE = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0`;
/** Deletes the lease KEYS[1] if ARGV[1] holds it. */
const RELEASE_LEASE = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`;

const noop = () => {};
const asBuffer = (data: Uint8Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/**
 * redis://host:port[/path]: a numeric path selects the database (as Redis URIs do); any other path
 * (`redis://redis:6379/delivery`) is a namespace put before every key and channel: `delivery:<name>:…`.
 */
export function redisTarget(uri: string, name: string): { uri: string; name: string } {
  const url = new URL(uri);
  const path = decodeURIComponent(url.pathname.replace(/^\/+|\/+$/g, ""));
  if (path === "" || /^\d+$/.test(path)) return { uri, name };
  url.pathname = "";
  return { uri: url.toString(), name: `${path}:${name}` };
}

export async function openRedis(uri: string, options: QueueOptions): Promise<{ stream: EventStream; live: LiveBus }> {
  const target = redisTarget(uri, options.name);
  const redis = new Redis(target.uri, { lazyConnect: true });
  logClientErrors(redis, "Redis (stream)", options.logger);
  await redis.connect();
  const redeliveryMs = options.redeliveryMs ?? DEFAULT_REDELIVERY_MS;
  const stream = new RedisStream(redis, target.name, options.partitions, redeliveryMs);
  const busClient = redis.duplicate({ enableAutoPipelining: true });
  logClientErrors(busClient, "Redis (live bus)", options.logger);
  const bus = new RedisBus(busClient, target.name);
  // Redis sends a publisher's messages back to it: tagged, dropped, handed over in process instead.
  return { stream, live: new LocalFirstBus(bus, "tagged") };
}

async function quit(redis: Redis): Promise<void> {
  await redis.quit().catch(() => redis.disconnect());
}

interface Claimed {
  id: string;
  data: Buffer;
  deliveries: number;
}

/** The lease of one consumer on one (group, partition), renewed until stopped or lost. */
class Lease {
  held = true;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly owner: string,
    ttlMs: number,
  ) {
    this.timer = setInterval(() => {
      Lease.take(redis, key, owner, ttlMs).then(
        (held) => {
          if (!held) this.held = false;
        },
        () => {
          this.held = false;
        },
      );
    }, ttlMs / 3);
  }

  static async acquire(redis: Redis, key: string, owner: string, ttlMs: number): Promise<Lease | undefined> {
    return (await Lease.take(redis, key, owner, ttlMs)) ? new Lease(redis, key, owner, ttlMs) : undefined;
  }

  private static async take(redis: Redis, key: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await redis.eval(TAKE_LEASE, 1, key, owner, Math.ceil(ttlMs))) === 1;
  }

  /** Stops renewing: the lease expires by itself (the consumer stopped while a handler was running). */
  abandon(): void {
    clearInterval(this.timer);
    this.held = false;
  }

  async release(): Promise<void> {
    this.abandon();
    await this.redis.eval(RELEASE_LEASE, 1, this.key, this.owner).catch(noop);
  }
}

export class RedisStream implements EventStream {
  private readonly closing = new AbortController();
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly redis: Redis,
    private readonly name: string,
    readonly partitions: number,
    private readonly redeliveryMs: number,
  ) {}

  async publish(partition: number, entries: Uint8Array[]): Promise<void> {
    const key = this.key(partition);
    if (entries.length === 0) return;
    const tx = this.redis.multi();
    for (const entry of entries) tx.xadd(key, "*", "d", asBuffer(entry));
    const results = await tx.exec();
    if (!results) throw new Error(`publishing to ${key} was aborted`);
    for (const [err] of results) if (err) throw err;
  }

  consume(
    group: string,
    partition: number,
    handler: (entry: StreamEntry) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const run = this.run(group, partition, handler, AbortSignal.any([signal, this.closing.signal]));
    const tracked = run.catch(noop);
    this.running.add(tracked);
    void tracked.then(() => this.running.delete(tracked));
    return run;
  }

  async lag(group: string, partition: number): Promise<number> {
    const key = this.key(partition);
    let groups: unknown[][];
    try {
      groups = (await this.redis.xinfo("GROUPS", key)) as unknown[][];
    } catch (err) {
      if (err instanceof Error && err.message.includes("no such key")) return 0;
      throw err;
    }
    const info = groups.map(fields).find((g) => g.name === group);
    if (!info) return this.redis.xlen(key);
    // `lag` is nil when Redis cannot tell it (entries deleted inside the range): count them.
    const undelivered =
      info.lag == null ? (await this.redis.xrange(key, `(${info["last-delivered-id"]}`, "+")).length : Number(info.lag);
    return undelivered + Number(info.pending);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    await Promise.all(this.running);
    await quit(this.redis);
  }

  private key(partition: number): string {
    return `${this.name}:events:${checkPartition(partition, this.partitions)}`;
  }

  private async run(
    group: string,
    partition: number,
    handler: (entry: StreamEntry) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const key = this.key(partition);
    const leaseKey = `${this.name}:lease:${group}:${partition}`;
    const me = randomUUID();
    await this.redis.xgroup("CREATE", key, group, 0, "MKSTREAM").catch((err: Error) => {
      if (!err.message.startsWith("BUSYGROUP")) throw err;
    });
    // Blocking reads get a connection of their own. A read whose reply is lost (a reconnect meanwhile)
    // may still have taken an entry: then the PEL decides what comes next. Never a client-side timeout
    // (ioredis' `blockingTimeout` would still send the timed-out read later, taking an entry unseen).
    const blockMs = Math.max(1, Math.min(1000, Math.floor(this.redeliveryMs / 4)));
    const reader = this.redis.duplicate();
    let reconnects = 0;
    reader.on("close", () => reconnects++);
    let lease: Lease | undefined;
    let pendingFirst = true;
    // Released on a clean stop; left to expire when a handler or a read may still be running.
    let release = true;
    try {
      while (!signal.aborted) {
        if (!lease?.held) {
          lease?.abandon();
          lease = await Lease.acquire(this.redis, leaseKey, me, this.redeliveryMs);
          if (!lease) {
            await sleep(this.redeliveryMs / 4, signal);
            continue;
          }
          pendingFirst = true;
        }
        let entry = pendingFirst ? await this.claimPending(key, group, me) : undefined;
        if (!entry) {
          const before = reconnects;
          const reading = this.readNew(reader, key, group, me, blockMs);
          // Stopping waits for the read (BLOCK keeps it short) unless the connection is gone.
          let read = await raceAbort(reading, signal);
          if (!read.done) read = await raceAbort(reading, AbortSignal.timeout(blockMs + 1000));
          if (!read.done) {
            release = false;
            break;
          }
          pendingFirst = !read.value || reconnects !== before || !lease.held;
          if (pendingFirst || !read.value) continue;
          entry = read.value;
        }
        if (signal.aborted) break;
        const { id, data, deliveries } = entry;
        const handling = Promise.resolve()
          .then(() => handler({ data, deliveries }))
          .then(
            () => "done" as const,
            () => "failed" as const,
          );
        const outcome = await raceAbort(handling, signal);
        if (!outcome.done) {
          // Treated as a dead consumer: the entry stays pending, the lease expires, the next holder gets it.
          release = false;
          break;
        }
        if (outcome.value === "done") await this.redis.xack(key, group, id);
        else pendingFirst = true;
      }
      if (release) await lease?.release();
      else lease?.abandon();
    } catch (err) {
      lease?.abandon();
      if (!signal.aborted) throw err;
    } finally {
      reader.disconnect();
    }
  }

  /** Claims the group's lowest pending entry, if any, for `me`. */
  private async claimPending(key: string, group: string, me: string): Promise<Claimed | undefined> {
    for (;;) {
      const [first] = (await this.redis.xpending(key, group, "-", "+", 1)) as [string, string, number, number][];
      if (!first) return undefined;
      const [id, , , deliveries] = first;
      // `xclaimBuffer` exists in ioredis 6 but is missing from its typings.
      const [claimed] = (await this.redis.callBuffer("XCLAIM", key, group, me, 0, id)) as [Buffer, Buffer[] | null][];
      if (claimed?.[1]) return { id, data: claimed[1][1] ?? Buffer.alloc(0), deliveries: deliveries + 1 };
      await this.redis.xack(key, group, id); // deleted from the stream meanwhile: nothing to hand out
    }
  }

  /** Reads the next entry never delivered to the group, waiting up to `blockMs` for one. */
  private async readNew(
    reader: Redis,
    key: string,
    group: string,
    me: string,
    blockMs: number,
  ): Promise<Claimed | undefined> {
    const reply = await reader.xreadgroupBuffer("GROUP", group, me, "COUNT", 1, "BLOCK", blockMs, "STREAMS", key, ">");
    const item = reply?.[0]?.[1]?.[0];
    if (!item) return undefined;
    return { id: item[0].toString(), data: item[1]?.[1] ?? Buffer.alloc(0), deliveries: 1 };
  }
}

/** A flat `[field, value, ...]` reply as a record. */
function fields(flat: unknown[]): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[String(flat[i])] = flat[i + 1];
  return record;
}

export class RedisBus implements LiveBus {
  private sub: Redis | undefined;
  private readonly channels = new Map<string, { handlers: Set<(data: Uint8Array) => void>; ready: Promise<unknown> }>();

  constructor(
    private readonly pub: Redis,
    private readonly name: string,
  ) {}

  publish(subjects: readonly string[], data: Uint8Array): void {
    const payload = Buffer.from(data); // a copy: it leaves on the next tick
    for (const subject of subjects) this.pub.publish(`${this.name}:${subject}`, payload).catch(noop);
  }

  async subscribe(subject: string, handler: (data: Uint8Array) => void): Promise<() => Promise<void>> {
    const channel = `${this.name}:${subject}`;
    const sub = this.subscriber();
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = { handlers: new Set(), ready: sub.subscribe(channel) };
      this.channels.set(channel, entry);
    }
    const subscribed = entry;
    const h = (data: Uint8Array) => handler(data);
    subscribed.handlers.add(h);
    const off = async () => {
      if (!subscribed.handlers.delete(h) || subscribed.handlers.size > 0) return;
      if (this.channels.get(channel) !== subscribed) return;
      this.channels.delete(channel);
      await sub.unsubscribe(channel);
    };
    try {
      await subscribed.ready;
    } catch (err) {
      await off().catch(noop);
      throw err;
    }
    return off;
  }

  async flush(): Promise<void> {
    await this.pub.ping();
  }

  async close(): Promise<void> {
    this.channels.clear();
    await Promise.all([quit(this.pub), this.sub && quit(this.sub)]);
  }

  private subscriber(): Redis {
    if (!this.sub) {
      this.sub = this.pub.duplicate({ enableAutoPipelining: false });
      this.sub.on("messageBuffer", (channel: Buffer, message: Buffer) => {
        const handlers = this.channels.get(channel.toString())?.handlers;
        for (const handler of handlers ?? []) queueMicrotask(() => handler(message));
      });
    }
    return this.sub;
  }
}
