/**
 * The queue ports on RabbitMQ (amqplib, AMQP 0-9-1; RabbitMQ 3.9 or later, no plugin needed).
 * docs/delivery.md ("RabbitMQ") says why this mapping and what it costs.
 *
 * EventStream, for a stream named N:
 * - entries: one stream queue per partition, `N.events.<p>`, created by its first publish. A stream
 *   queue is a log: every group reads it from its own position, including groups that appear after
 *   the entries were written; `publish` resolves once the broker confirmed each entry (publisher
 *   confirms), and entries published back to back on one channel are stored in that order;
 * - exclusive: per (group, partition) a quorum queue `N.lock.<group>.<p>` with single active consumer
 *   holds one token; every consumer of the pair subscribes to it and the broker gives the token to one
 *   channel at a time. Only that channel reads entries and writes the cursor. The broker hands the
 *   token on when the channel closes: at once when a process stops or dies (its socket closes), after
 *   the heartbeat timeout when a host or the network goes silent;
 * - at least once, ordered: per (group, partition) a small stream queue `N.cursor.<group>.<p>`
 *   records `{next, attempts}` before a handler call starts and after each success (amqp-holder.ts).
 *   A new holder starts at the last record's `next`, so an entry whose handler did not finish is
 *   handed out again before any later one; a handler that throws gets its entry again (after a short
 *   backoff), before any later one;
 * - deliveries: `attempts` of the record (handler calls started for that entry, by any holder) + 1;
 * - lag: the end of `N.events.<p>` + 1 − the cursor's `next` (the holder's own when it runs here).
 *
 * LiveBus: a direct exchange `N.live` (subjects are routing keys, matched exactly) and, per bus, one
 * exclusive auto-delete queue bound once per subscribed subject (amqp-bus.ts).
 */
import { type ChannelModel, type ConfirmChannel, connect, type Message } from "amqplib";
import { sleep } from "../lifecycle.js";
import { AmqpBus } from "./amqp-bus.js";
import { EVENTS_ARGS, Holder, READ_WAIT_MS, readCursor } from "./amqp-holder.js";
import { connectionUrl, Link, noop, offsetOf, openChannel, openConfirmChannel, readLast } from "./amqp-link.js";
import { LocalFirstBus } from "./local-first.js";
import { checkPartition, type EventStream, type LiveBus, type StreamEntry } from "./ports.js";

const DEFAULT_REDELIVERY_MS = 30_000;

/** Broker refusals that trying again will not change (access refused, settings that differ, not allowed). */
const REFUSALS = new Set([403, 406, 530, 540]);

/** The broker's names of a stream's queues and exchange. */
export const amqpNames = (name: string) => ({
  events: (p: number) => `${name}.events.${p}`,
  cursor: (group: string, p: number) => `${name}.cursor.${group}.${p}`,
  lock: (group: string, p: number) => `${name}.lock.${group}.${p}`,
  live: `${name}.live`,
});

export async function openAmqp(
  uri: string,
  options: { name: string; partitions: number; redeliveryMs?: number },
): Promise<{ stream: EventStream; live: LiveBus }> {
  const redeliveryMs = options.redeliveryMs ?? DEFAULT_REDELIVERY_MS;
  const url = connectionUrl(uri, Math.max(5, Math.ceil(redeliveryMs / 1000)));
  // The live bus connects now, so that a broker that cannot be reached is reported at start.
  const live = await AmqpBus.open(url, amqpNames(options.name).live, `${options.name}-live`);
  const stream = new AmqpStream(url, options.name, options.partitions, redeliveryMs);
  // RabbitMQ routes a publisher's messages to its own queue too: tagged, dropped, handed over in process.
  return { stream, live: new LocalFirstBus(live, "tagged") };
}

/**
 * Deletes what a stream named `name` made on the broker for these partitions and groups (the entries,
 * the cursors, the locks, the live exchange). For tearing down tests and deployments.
 */
export async function deleteAmqpNames(uri: string, name: string, partitions: number, groups: string[]): Promise<void> {
  const conn = await connect(connectionUrl(uri, 60));
  try {
    const ch = await conn.createChannel();
    const names = amqpNames(name);
    for (let p = 0; p < partitions; p++) {
      await ch.deleteQueue(names.events(p));
      for (const group of groups) {
        await ch.deleteQueue(names.cursor(group, p));
        await ch.deleteQueue(names.lock(group, p));
      }
    }
    await ch.deleteExchange(names.live);
  } finally {
    await conn.close().catch(noop);
  }
}

export class AmqpStream implements EventStream {
  private readonly names;
  /** Publishes entries; consumers and lag reads use the other connection. */
  private readonly publishing: Link;
  private readonly consuming: Link;
  private publisher: Promise<ConfirmChannel> | undefined;
  private readonly declared = new Set<string>();
  /** Ids of published entries the broker returned as unroutable. */
  private readonly returned = new Set<string>();
  private published = 0;
  private readonly closing = new AbortController();
  private readonly running = new Set<Promise<void>>();
  /** The holders running in this process, by group and partition (for lag). */
  private readonly holders = new Map<string, Set<Holder>>();

  constructor(
    url: string,
    name: string,
    readonly partitions: number,
    private readonly redeliveryMs: number,
  ) {
    this.names = amqpNames(name);
    this.publishing = new Link(url, `${name}-stream-publish`);
    this.consuming = new Link(url, `${name}-stream-consume`);
  }

  async publish(partition: number, entries: Uint8Array[]): Promise<void> {
    const queue = this.events(partition);
    if (entries.length === 0) return;
    const ch = await this.publishChannel();
    if (!this.declared.has(queue)) {
      await ch.assertQueue(queue, { durable: true, arguments: EVENTS_ARGS });
      this.declared.add(queue);
    }
    // Sent back to back on one channel: stored in this order. `mandatory`: an entry the broker could not
    // route (its queue deleted since) comes back before its confirm, and fails the publish.
    const ids = entries.map(() => String(++this.published));
    const confirmed = entries.map(
      (entry, i) =>
        new Promise<void>((resolve, reject) => {
          const body = Buffer.from(entry.buffer, entry.byteOffset, entry.byteLength);
          const options = { persistent: true, mandatory: true, messageId: ids[i] };
          ch.sendToQueue(queue, body, options, (err: unknown) => (err ? reject(err) : resolve()));
        }),
    );
    const settled = await Promise.allSettled(confirmed);
    const lost = ids.filter((id) => this.returned.delete(id));
    if (lost.length > 0) {
      this.declared.delete(queue);
      throw new Error(`RabbitMQ could not route ${lost.length} entries to ${queue}: the queue is gone`);
    }
    for (const result of settled) if (result.status === "rejected") throw result.reason;
  }

  consume(
    group: string,
    partition: number,
    handler: (entry: StreamEntry) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    this.events(partition);
    const run = this.run(group, partition, handler, AbortSignal.any([signal, this.closing.signal]));
    const tracked = run.catch(noop);
    this.running.add(tracked);
    void tracked.then(() => this.running.delete(tracked));
    return run;
  }

  async lag(group: string, partition: number): Promise<number> {
    const events = this.events(partition);
    const conn = await this.consuming.connection();
    const last = await readLast(conn, events, READ_WAIT_MS);
    if (!last) return 0;
    const holding = [...(this.holders.get(key(group, partition)) ?? [])].find((h) => h.position !== undefined);
    const next = holding?.position ?? (await readCursor(conn, this.names.cursor(group, partition))).next;
    return Math.max(0, offsetOf(last) + 1 - next);
  }

  /** Stops every consumer (a handler still running leaves its entry unacknowledged), then disconnects. */
  /** The broker answers: a channel opens and closes on the consuming connection. */
  async ping(): Promise<void> {
    const ch = await openChannel(await this.consuming.connection());
    await ch.close();
  }

  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    await Promise.all(this.running);
    await Promise.all([this.publishing.close(), this.consuming.close()]);
  }

  private events(partition: number): string {
    return this.names.events(checkPartition(partition, this.partitions));
  }

  private publishChannel(): Promise<ConfirmChannel> {
    if (!this.publisher) {
      const opening: Promise<ConfirmChannel> = this.publishing.connection().then(async (conn: ChannelModel) => {
        const ch = await openConfirmChannel(conn);
        ch.on("return", (msg: Message) => this.returned.add(String(msg.properties.messageId)));
        ch.once("close", () => {
          if (this.publisher === opening) this.publisher = undefined;
        });
        return ch;
      });
      opening.catch(() => {
        if (this.publisher === opening) this.publisher = undefined;
      });
      this.publisher = opening;
    }
    return this.publisher;
  }

  /** Holds the (group, partition) turn after turn: again after a lost channel or connection, until stopped. */
  private async run(
    group: string,
    partition: number,
    handler: (entry: StreamEntry) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const k = key(group, partition);
    let failures = 0;
    while (!signal.aborted) {
      let holder: Holder | undefined;
      try {
        const conn = await this.consuming.connection();
        holder = new Holder({
          conn,
          events: this.names.events(partition),
          cursor: this.names.cursor(group, partition),
          lock: this.names.lock(group, partition),
          handler,
          signal,
          redeliveryMs: this.redeliveryMs,
        });
        const here = this.holders.get(k) ?? new Set<Holder>();
        this.holders.set(k, here.add(holder));
        if ((await holder.run()) === "stopped") return;
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        if (REFUSALS.has((err as { code?: number }).code ?? 0)) throw err;
        failures++; // the broker is unreachable or went away: try again
      } finally {
        const here = this.holders.get(k);
        if (holder && here?.delete(holder) && here.size === 0) this.holders.delete(k);
      }
      await sleep(Math.min(5000, 100 * 2 ** failures), signal);
    }
  }
}

const key = (group: string, partition: number) => `${group}\u0000${partition}`;
