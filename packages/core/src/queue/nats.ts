/**
 * The queue ports on NATS.
 *
 * EventStream: one JetStream stream `<name>` (file storage) holding subjects `<name>.events.<p>`.
 * - durable: `publish` resolves once JetStream acknowledged every entry (PubAck), after storing it;
 * - order: entries are published in order on one connection, and JetStream stores a publisher's
 *   messages in the order it sent them; a consumer delivers in stream-sequence order;
 * - exclusive and ordered across processes: each (group, partition) is one durable pull consumer
 *   (`<group>-p<p>`, filtered on the partition's subject) with `max_ack_pending: 1`, so the server
 *   hands out no entry while another is unacknowledged, whichever process pulls;
 * - at least once: explicit acks (confirmed with a double ack); a throwing handler `nak`s its entry
 *   (redelivered at once, before later ones); an entry held by a stopped or dead consumer comes
 *   back after `ack_wait` (= redeliveryMs); `deliveries` is the server's delivery count.
 * - lag: the consumer's pending plus ack-pending counts (the partition's message count before the
 *   consumer exists).
 *
 * LiveBus: core NATS subjects `<name>.<subject>` on a connection of its own: at most once (no
 * storage: only current subscribers get a message), in publish order per connection; `subscribe`
 * resolves after a flush round trip, by when the server has registered the interest. The
 * connection has `noEcho`: this process's own subscribers get its messages in process
 * (LocalFirstBus), not back from the server.
 */
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection, nanos } from "@nats-io/transport-node";
import { aborted } from "../lifecycle.js";
import { LocalFirstBus } from "./local-first.js";
import { checkPartition, type EventStream, type LiveBus, type QueueOptions, type StreamEntry } from "./ports.js";

/** JetStream API error codes this module tells apart. */
const STREAM_NAME_IN_USE = 10058;
const CONSUMER_NOT_FOUND = 10014;
const CONSUMER_EXISTS = 10148;

const DEFAULT_REDELIVERY_MS = 30_000;

/** A NATS name (stream, consumer, subject token) made of [A-Za-z0-9_-] only. */
export const natsName = (name: string) => name.replace(/[^A-Za-z0-9_-]/g, "_");

const apiCode = (err: unknown) => (err instanceof JetStreamApiError ? err.code : undefined);

export async function openNats(uri: string, options: QueueOptions): Promise<{ stream: EventStream; live: LiveBus }> {
  const name = natsName(options.name);
  const stream = await NatsStream.open(uri, name, options.partitions, options.redeliveryMs ?? DEFAULT_REDELIVERY_MS);
  try {
    // The server does not send the live connection its own messages: LocalFirstBus hands them to
    // this process's subscribers at once.
    const live = new LocalFirstBus(new NatsBus(await connectTo(uri, `${name}-live`, true), name), "suppressed");
    return { stream, live };
  } catch (err) {
    await stream.close();
    throw err;
  }
}

function connectTo(uri: string, connectionName: string, noEcho = false): Promise<NatsConnection> {
  // noAsyncTraces: the client otherwise makes an Error (with its stack) ahead of every request,
  // only to improve the trace of a request that fails; on the publish path that is per message.
  return connect({ servers: uri, name: connectionName, maxReconnectAttempts: -1, noEcho, noAsyncTraces: true });
}

async function closeConnection(nc: NatsConnection): Promise<void> {
  if (nc.isClosed()) return;
  await nc.drain().catch(() => nc.close());
}

export class NatsStream implements EventStream {
  private readonly closing = new AbortController();
  private readonly running = new Set<Promise<void>>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly name: string,
    readonly partitions: number,
    private readonly redeliveryMs: number,
  ) {}

  static async open(uri: string, name: string, partitions: number, redeliveryMs: number): Promise<NatsStream> {
    const nc = await connectTo(uri, `${name}-stream`);
    try {
      const jsm = await jetstreamManager(nc);
      const config = { name, subjects: [`${name}.events.*`], storage: StorageType.File };
      await jsm.streams.add(config).catch(async (err: unknown) => {
        if (apiCode(err) !== STREAM_NAME_IN_USE) throw err;
        await jsm.streams.update(name, { subjects: config.subjects });
      });
      return new NatsStream(nc, jsm, jetstream(nc), name, partitions, redeliveryMs);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  async publish(partition: number, entries: Uint8Array[]): Promise<void> {
    const subject = this.subject(partition);
    // Sent back to back on one connection: stored in this order; every ack awaited together.
    await Promise.all(entries.map((entry) => this.js.publish(subject, entry)));
  }

  async consume(
    group: string,
    partition: number,
    handler: (entry: StreamEntry) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    this.subject(partition);
    const run = this.run(group, partition, handler, AbortSignal.any([signal, this.closing.signal]));
    this.running.add(run);
    try {
      await run;
    } finally {
      this.running.delete(run);
    }
  }

  private async run(
    group: string,
    partition: number,
    handler: (entry: StreamEntry) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    if (signal.aborted) return;
    const consumer = await this.consumer(group, partition);
    if (signal.aborted) return;
    const messages = await consumer.consume({ max_messages: 1 });
    const stop = () => void messages.close();
    signal.addEventListener("abort", stop, { once: true });
    if (signal.aborted) stop();
    const stopped = aborted(signal).then(() => "stopped" as const);
    try {
      for await (const msg of messages) {
        if (signal.aborted) break;
        const entry = { data: msg.data, deliveries: msg.info.deliveryCount };
        const outcome = await Promise.race([
          Promise.resolve(entry)
            .then(handler)
            .then(
              () => "done" as const,
              () => "failed" as const,
            ),
          stopped,
        ]);
        // A consumer that stops mid-handler is a consumer that died: its entry is not acknowledged.
        if (outcome === "stopped") break;
        if (outcome === "failed") msg.nak();
        // A lost ack only means the entry comes back: at least once still holds.
        else await Promise.race([msg.ackAck().catch(() => false), stopped]);
      }
    } finally {
      signal.removeEventListener("abort", stop);
      await messages.close();
    }
  }

  async lag(group: string, partition: number): Promise<number> {
    const subject = this.subject(partition);
    try {
      const info = await this.jsm.consumers.info(this.name, consumerName(group, partition));
      return info.num_pending + info.num_ack_pending;
    } catch (err) {
      if (apiCode(err) !== CONSUMER_NOT_FOUND) throw err;
    }
    const info = await this.jsm.streams.info(this.name, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  }

  /** Stops every consumer (leaving in-flight entries unacknowledged), then closes the connection. */
  /** A round trip to the server, then one to JetStream (the stream's info). */
  async ping(): Promise<void> {
    await this.nc.rtt();
    await this.jsm.streams.info(this.name);
  }

  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled(this.running);
    await closeConnection(this.nc);
  }

  private subject(partition: number): string {
    return `${this.name}.events.${checkPartition(partition, this.partitions)}`;
  }

  /** The durable consumer of (group, partition), created if missing; creating it is idempotent. */
  private async consumer(group: string, partition: number): Promise<Consumer> {
    const durable = consumerName(group, partition);
    const config: Partial<ConsumerConfig> = {
      durable_name: durable,
      filter_subject: this.subject(partition),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: 1,
      ack_wait: nanos(this.redeliveryMs),
    };
    try {
      return this.js.consumers.getConsumerFromInfo(await this.jsm.consumers.add(this.name, config));
    } catch (err) {
      // Servers from 2.10 refuse to create over a consumer whose settings differ (2.9 updates it).
      if (apiCode(err) !== CONSUMER_EXISTS) throw err;
      const { max_ack_pending, ack_wait } = config;
      return this.js.consumers.getConsumerFromInfo(
        await this.jsm.consumers.update(this.name, durable, { max_ack_pending, ack_wait }),
      );
    }
  }
}

const consumerName = (group: string, partition: number) => `${natsName(group)}-p${partition}`;

export class NatsBus implements LiveBus {
  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
  ) {}

  publish(subjects: readonly string[], data: Uint8Array): void {
    for (const subject of subjects) this.nc.publish(`${this.prefix}.${subject}`, data);
  }

  async subscribe(subject: string, handler: (data: Uint8Array) => void): Promise<() => Promise<void>> {
    const sub = this.nc.subscribe(`${this.prefix}.${subject}`, {
      callback: (err, msg) => {
        if (err) return;
        try {
          handler(msg.data);
        } catch (error) {
          // Thrown out of the connection's read loop, which must go on for the other subscribers.
          queueMicrotask(() => {
            throw error;
          });
        }
      },
    });
    await this.nc.flush();
    return async () => {
      sub.unsubscribe();
      if (!this.nc.isClosed()) await this.nc.flush();
    };
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  async close(): Promise<void> {
    await closeConnection(this.nc);
  }
}
