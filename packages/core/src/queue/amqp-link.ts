/**
 * Connections to RabbitMQ (amqplib) shared by the stream and the live bus of the amqp:// backend: URI
 * checks, clear connection errors, a connection that is opened again after it was lost, and the one
 * read a stream queue needs besides consuming: its last message.
 */
import { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, connect } from "amqplib";
import { sleep } from "../lifecycle.js";

export const noop = () => {};

/** A stream queue's offset of a message, as RabbitMQ stamps it on delivery. */
export const offsetOf = (msg: ConsumeMessage): number => Number(msg.properties.headers?.["x-stream-offset"]);

/** The URI with its password hidden and without its query, for errors and logs. */
export function redact(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.password) url.password = "***";
    url.search = "";
    return url.toString();
  } catch {
    return uri.replace(/\/\/([^:/@]*):[^@/]*@/, "//$1:***@");
  }
}

/**
 * Checks an amqp:// or amqps:// URI and sets the heartbeat (seconds) unless the URI sets one: with
 * it, RabbitMQ notices a peer that vanished without closing its connection (a process that exits
 * or is killed closes it at once).
 */
export function connectionUrl(uri: string, heartbeatSeconds: number): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`invalid RabbitMQ URI ${redact(uri)}: expected amqp://user:password@host:5672/vhost`);
  }
  if ((url.protocol !== "amqp:" && url.protocol !== "amqps:") || !url.hostname) {
    throw new Error(`invalid RabbitMQ URI ${redact(uri)}: expected amqp://user:password@host:5672/vhost`);
  }
  if (!url.searchParams.has("heartbeat")) url.searchParams.set("heartbeat", String(heartbeatSeconds));
  return url.toString();
}

/** Opens one connection, named for the broker's connection list; the error says where it tried. */
export async function connectTo(url: string, connectionName: string): Promise<ChannelModel> {
  try {
    const conn = await connect(url, {
      noDelay: true,
      timeout: 10_000,
      clientProperties: { connection_name: connectionName },
    });
    conn.on("error", noop); // followed by "close", which the owners watch
    return conn;
  } catch (err) {
    throw new Error(`cannot connect to RabbitMQ at ${redact(url)}: ${(err as Error).message}`, { cause: err });
  }
}

export async function openChannel(conn: ChannelModel): Promise<Channel> {
  const ch = await conn.createChannel();
  ch.on("error", noop); // followed by "close"
  return ch;
}

export async function openConfirmChannel(conn: ChannelModel): Promise<ConfirmChannel> {
  const ch = await conn.createConfirmChannel();
  ch.on("error", noop);
  return ch;
}

/** Publishes `body` to queue `queue` and resolves once the broker confirmed it (stored). */
export function sendConfirmed(ch: ConfirmChannel, queue: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    ch.sendToQueue(queue, body, { persistent: true }, (err: unknown) => (err ? reject(err) : resolve()));
  });
}

/**
 * A connection opened on first use and again after it was lost. Channels die with their connection:
 * their users notice by the channel's "close" and come back for a new one.
 */
export class Link {
  private current: Promise<ChannelModel> | undefined;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly connectionName: string,
  ) {}

  connection(): Promise<ChannelModel> {
    if (this.closed) return Promise.reject(new Error("the RabbitMQ connection is closed"));
    if (!this.current) {
      const attempt: Promise<ChannelModel> = connectTo(this.url, this.connectionName).then((conn) => {
        conn.on("close", () => {
          if (this.current === attempt) this.current = undefined;
        });
        return conn;
      });
      attempt.catch(() => {
        if (this.current === attempt) this.current = undefined;
      });
      this.current = attempt;
    }
    return this.current;
  }

  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    this.current = undefined;
    if (current) await current.then((conn) => conn.close()).catch(noop);
  }
}

/** Whether queue `name` exists. Asks on a channel of its own: a missing queue closes the channel asking. */
export async function queueExists(conn: ChannelModel, name: string): Promise<boolean> {
  const ch = await openChannel(conn);
  try {
    await ch.checkQueue(name);
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  } finally {
    await ch.close().catch(noop);
  }
}

/** Messages asked for when reading a stream's end: at least its last chunk comes whole. */
const READ_PREFETCH = 100;

/**
 * The last message of stream queue `name`; undefined when the queue does not exist, or holds nothing
 * yet after `waitMs`.
 *
 * Consuming from `last` makes the broker read the stream's last chunk (and anything after it) and send
 * it in one go, as soon as the consumer is set up; a cancel sent after the first of those messages
 * arrived is answered after the last of them. So the highest offset seen is the end of the stream at
 * that time, whatever the load, and only an empty stream makes this wait. Streams here are created
 * just before their first message is written, so one is empty only for a moment, or for good only if
 * its writer died right between the two; `waitMs` bounds that case.
 */
export async function readLast(conn: ChannelModel, name: string, waitMs: number): Promise<ConsumeMessage | undefined> {
  const ch = await openChannel(conn);
  try {
    try {
      await ch.checkQueue(name);
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
    await ch.prefetch(READ_PREFETCH);
    let last: ConsumeMessage | undefined;
    let arrived = noop;
    const first = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const { consumerTag } = await ch.consume(
      name,
      (msg) => {
        if (msg && (!last || offsetOf(msg) > offsetOf(last))) last = msg;
        arrived();
      },
      { arguments: { "x-stream-offset": "last" } },
    );
    const waited = new AbortController();
    await Promise.race([first, sleep(waitMs, waited.signal)]);
    waited.abort();
    await ch.cancel(consumerTag);
    return last;
  } finally {
    await ch.close().catch(noop);
  }
}
