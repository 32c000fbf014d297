/**
 * The live bus on RabbitMQ: a direct exchange (subjects are routing keys, matched exactly, so no
 * character of a subject means anything to the broker) and, per bus, one exclusive auto-delete queue
 * bound once per subject it listens to, consumed without acknowledgements.
 * - at most once: the exchange keeps nothing; a message reaches the queues bound to its subject when it
 *   is routed, and a bus that is disconnected drops what it publishes;
 * - order: one publishing channel, one queue per bus: a subscriber gets a publisher's messages in
 *   publish order;
 * - `subscribe` resolves once the broker confirmed the binding (queue.bind-ok);
 * - `flush` resolves once the broker answered a request sent after the messages on their channel,
 *   which it handles in order: by then they have left the process and been routed;
 * - after a lost connection the bus connects again, declares its queue anew and binds every subject
 *   it still has subscribers for; what was published meanwhile is lost (at most once).
 */
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { sleep } from "../lifecycle.js";
import { connectTo, noop, openChannel } from "./amqp-link.js";
import type { LiveBus } from "./ports.js";

/** Messages a bus's queue keeps for a subscriber that does not read; the oldest go first beyond it. */
const QUEUE_MAX = 100_000;

type Handler = (data: Uint8Array) => void;

interface Wire {
  conn: ChannelModel;
  pub: Channel;
  sub: Channel;
  queue: string;
}

export class AmqpBus implements LiveBus {
  private wire: Wire | undefined;
  private connecting: Promise<Wire> | undefined;
  private closed = false;
  private readonly subjects = new Map<string, { handlers: Set<Handler>; bound: Promise<void> }>();

  private constructor(
    private readonly url: string,
    private readonly exchange: string,
    private readonly connectionName: string,
  ) {}

  static async open(url: string, exchange: string, connectionName: string): Promise<AmqpBus> {
    const bus = new AmqpBus(url, exchange, connectionName);
    await bus.connected();
    return bus;
  }

  publish(subjects: readonly string[], data: Uint8Array): void {
    const wire = this.wire;
    if (!wire) return; // disconnected: at most once
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    try {
      for (const subject of subjects) wire.pub.publish(this.exchange, subject, body);
    } catch {
      // the channel is closing: dropped, like anything published while disconnected
    }
  }

  async subscribe(subject: string, handler: Handler): Promise<() => Promise<void>> {
    let entry = this.subjects.get(subject);
    if (!entry) {
      entry = { handlers: new Set(), bound: this.bind(subject) };
      entry.bound.catch(noop);
      this.subjects.set(subject, entry);
    }
    const subscribed = entry;
    const h: Handler = (data) => handler(data);
    subscribed.handlers.add(h);
    const off = async () => {
      if (!subscribed.handlers.delete(h) || subscribed.handlers.size > 0) return;
      if (this.subjects.get(subject) !== subscribed) return;
      this.subjects.delete(subject);
      const wire = this.wire;
      if (wire) await wire.sub.unbindQueue(wire.queue, this.exchange, subject).catch(noop);
    };
    try {
      await subscribed.bound;
    } catch (err) {
      await off();
      throw err;
    }
    return off;
  }

  async flush(): Promise<void> {
    const wire = this.wire;
    if (!wire) throw new Error("the live bus is not connected to RabbitMQ");
    await wire.pub.checkExchange(this.exchange);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subjects.clear();
    const wire = this.wire ?? (await this.connecting?.catch(() => undefined));
    this.wire = undefined;
    await wire?.conn.close().catch(noop);
  }

  /** Binds `subject` on the current connection; on the next one if it is lost meanwhile (that one binds it too). */
  private async bind(subject: string): Promise<void> {
    const wire = await this.connected();
    try {
      await wire.sub.bindQueue(wire.queue, this.exchange, subject);
    } catch (err) {
      if (this.wire === wire || this.closed) throw err;
      await this.connected();
    }
  }

  private connected(): Promise<Wire> {
    if (this.wire) return Promise.resolve(this.wire);
    if (this.closed) return Promise.reject(new Error("the live bus is closed"));
    if (!this.connecting) {
      this.connecting = this.connect().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private async connect(): Promise<Wire> {
    const conn = await connectTo(this.url, this.connectionName);
    try {
      const pub = await openChannel(conn);
      await pub.assertExchange(this.exchange, "direct", { durable: false, autoDelete: false });
      const sub = await openChannel(conn);
      const { queue } = await sub.assertQueue("", {
        exclusive: true,
        autoDelete: true,
        durable: false,
        arguments: { "x-max-length": QUEUE_MAX },
      });
      await sub.consume(queue, (msg) => this.dispatch(msg), { noAck: true });
      for (const subject of this.subjects.keys()) await sub.bindQueue(queue, this.exchange, subject);
      if (this.closed) throw new Error("the live bus is closed");
      const wire = { conn, pub, sub, queue };
      const lost = () => {
        if (this.wire !== wire) return;
        this.wire = undefined;
        void conn.close().catch(noop);
        void this.reconnect();
      };
      conn.on("close", lost);
      pub.on("close", lost);
      sub.on("close", lost);
      this.wire = wire;
      return wire;
    } catch (err) {
      await conn.close().catch(noop);
      throw err;
    }
  }

  private async reconnect(): Promise<void> {
    for (let attempt = 0; !this.closed && !this.wire; attempt++) {
      await sleep(Math.min(5000, 100 * 2 ** attempt));
      await this.connected().catch(noop);
    }
  }

  private dispatch(msg: ConsumeMessage | null): void {
    if (!msg) return void this.wire?.conn.close().catch(noop); // our queue was deleted: start over
    const handlers = this.subjects.get(msg.fields.routingKey)?.handlers;
    if (!handlers) return;
    for (const handler of handlers) {
      try {
        handler(msg.content);
      } catch (error) {
        // Thrown out of the connection's read loop, which must go on for the other subscribers.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
