/**
 * One turn of consuming a (group, partition) of the amqp:// stream: take the partition's lock, read
 * where the group is, hand out entries from there, one at a time, until stopped or the channel is lost.
 * docs/delivery.md ("RabbitMQ") says why it is built this way.
 *
 * Everything runs on one channel: the lock is the channel's consumer on a single-active-consumer
 * queue, the cursor is written through it, and the entries arrive through it. Losing the channel
 * (closing it, a broker or network failure, the process dying) releases the lock, and a holder that
 * lost it can write nothing more.
 */
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { raceAbort, sleep } from "../lifecycle.js";
import { noop, offsetOf, openConfirmChannel, queueExists, readLast, sendConfirmed } from "./amqp-link.js";
import type { StreamEntry } from "./ports.js";

/** The partition's entries: a stream queue, kept until a retention policy says otherwise. */
export const EVENTS_ARGS = { "x-queue-type": "stream" };
/** A group's cursor records: a small stream queue; only its last record counts, older segments go. */
export const CURSOR_ARGS = {
  "x-queue-type": "stream",
  "x-max-length-bytes": 1_000_000,
  "x-stream-max-segment-size-bytes": 100_000,
};
/** The lock: whoever the broker hands the token of this queue to holds the (group, partition). */
export const LOCK_ARGS = { "x-queue-type": "quorum", "x-single-active-consumer": true };

/** Entries the broker sends ahead of the one being handled. */
const PREFETCH = 4;
/** How long reading a cursor or a stream's end may wait for a stream that exists but holds nothing. */
export const READ_WAIT_MS = 15_000;

/** Where a group is in a partition: the offset of the next entry to handle, and how often it was handed out. */
export interface Cursor {
  next: number;
  attempts: number;
}

export interface HolderOptions {
  conn: ChannelModel;
  events: string;
  cursor: string;
  lock: string;
  handler: (entry: StreamEntry) => Promise<void>;
  /** Aborts to stop: a handler call still running then counts as died (its entry is not acknowledged). */
  signal: AbortSignal;
  redeliveryMs: number;
}

export type Outcome = "stopped" | "lost";

/** The cursor of a group as last written, or where a group that wrote none starts. */
export async function readCursor(conn: ChannelModel, name: string): Promise<Cursor> {
  const last = await readLast(conn, name, READ_WAIT_MS);
  if (!last) return { next: 0, attempts: 0 };
  const { next, attempts } = JSON.parse(last.content.toString()) as Cursor;
  return { next, attempts };
}

/** Messages delivered to the holder, taken one at a time. */
class Inbox {
  private readonly items: ConsumeMessage[] = [];
  private wake = noop;

  get size(): number {
    return this.items.length;
  }

  push(msg: ConsumeMessage): void {
    this.items.push(msg);
    this.wake();
  }

  async take(signal: AbortSignal): Promise<ConsumeMessage | undefined> {
    while (this.items.length === 0 && !signal.aborted) {
      await raceAbort(
        new Promise<void>((resolve) => {
          this.wake = resolve;
        }),
        signal,
      );
    }
    return signal.aborted ? undefined : this.items.shift();
  }
}

export class Holder {
  /** The offset of the next entry to handle, once the lock is held. */
  position: number | undefined;
  /** The cursor as last written (or read). */
  private durable: Cursor = { next: 0, attempts: 0 };
  /** The cursor read when the lock was taken: handler calls other holders started on its entry. */
  private inherited: Cursor | undefined;
  private cursorDeclared = false;

  constructor(private readonly o: HolderOptions) {}

  /** Holds the partition until stopped ("stopped") or the channel is lost ("lost"); throws what the broker refused. */
  async run(): Promise<Outcome> {
    const ch = await openConfirmChannel(this.o.conn);
    const lost = new AbortController();
    ch.once("close", () => lost.abort());
    const stop = AbortSignal.any([this.o.signal, lost.signal]);
    let letGo = true;
    try {
      if (!(await this.takeLock(ch, stop))) return this.outcome();
      this.durable = await readCursor(this.o.conn, this.o.cursor);
      this.inherited = this.durable;
      this.position = this.durable.next;
      if (!(await this.waitForEntries(stop))) return this.outcome();
      const inbox = new Inbox();
      await ch.prefetch(PREFETCH);
      await ch.consume(
        this.o.events,
        (msg) => {
          if (msg) inbox.push(msg);
          else lost.abort(); // cancelled by the broker: the stream queue was deleted
        },
        { arguments: { "x-stream-offset": this.position } },
      );
      for (;;) {
        const msg = await inbox.take(stop);
        if (!msg) return this.outcome();
        const handled = await this.handle(ch, msg, inbox, stop);
        if (handled !== "done") {
          const running = handled.call;
          if (this.o.signal.aborted) {
            // Stopped mid-handler: that is a consumer that died. The lock stays held until the handler
            // settles or the redelivery time passes, so no other handler call overlaps it meanwhile.
            letGo = false;
            void Promise.race([running, sleep(this.o.redeliveryMs)]).then(() => ch.close().catch(noop));
            return "stopped";
          }
          // The channel was lost under a running handler: another process may take over now; this one
          // takes its turn again only once its own handler call is over.
          await Promise.race([running, sleep(this.o.redeliveryMs, this.o.signal)]);
          return this.outcome();
        }
      }
    } catch (err) {
      if (stop.aborted) return this.outcome();
      throw err;
    } finally {
      if (letGo) await ch.close().catch(noop);
    }
  }

  private outcome(): Outcome {
    return this.o.signal.aborted ? "stopped" : "lost";
  }

  /**
   * Waits until the broker hands this channel the lock's token. The first to find the lock queue
   * without a token and without consumers puts one in; two doing so at once make two tokens, and the
   * holder of both acknowledges one of them.
   */
  private async takeLock(ch: ConfirmChannel, stop: AbortSignal): Promise<boolean> {
    const { messageCount, consumerCount } = await ch.assertQueue(this.o.lock, { durable: true, arguments: LOCK_ARGS });
    if (messageCount === 0 && consumerCount === 0) await sendConfirmed(ch, this.o.lock, Buffer.from("token"));
    await ch.prefetch(2);
    let held: ConsumeMessage | undefined;
    let acquired = noop;
    const token = new Promise<void>((resolve) => {
      acquired = resolve;
    });
    await ch.consume(this.o.lock, (msg) => {
      if (!msg) return void ch.close().catch(noop); // the lock queue was deleted
      if (held) ch.ack(msg);
      else {
        held = msg;
        acquired();
      }
    });
    return (await raceAbort(token, stop)).done;
  }

  /** Waits for the partition's stream queue, which its first publish creates. */
  private async waitForEntries(stop: AbortSignal): Promise<boolean> {
    const pollMs = Math.min(1000, this.o.redeliveryMs / 4);
    while (!stop.aborted) {
      if (await queueExists(this.o.conn, this.o.events)) return true;
      await sleep(pollMs, stop);
    }
    return false;
  }

  /**
   * Hands `msg` to the handler until a call succeeds; "done" once it did and the cursor moved past it,
   * else (stopped or lost mid-handler) the last call, settled or not.
   */
  private async handle(
    ch: ConfirmChannel,
    msg: ConsumeMessage,
    inbox: Inbox,
    stop: AbortSignal,
  ): Promise<"done" | { call: Promise<unknown> }> {
    const offset = offsetOf(msg);
    const position = this.position ?? 0;
    if (offset < position) {
      ch.ack(msg); // handled before: the broker starts at a chunk's first message
      return "done";
    }
    this.position = offset; // past `position` only when a retention policy removed entries
    let attempt = this.inherited?.next === offset ? this.inherited.attempts : 0;
    this.inherited = undefined;
    for (;;) {
      attempt++;
      // Written before the call, so that a holder taking over after a death counts this delivery.
      if (this.durable.next !== offset || this.durable.attempts < attempt) {
        await this.write(ch, { next: offset, attempts: attempt });
      }
      const entry = { data: msg.content, deliveries: attempt };
      const call = Promise.resolve()
        .then(() => this.o.handler(entry))
        .then(
          () => true,
          () => false,
        );
      const outcome = await raceAbort(call, stop);
      if (!outcome.done) return { call };
      if (outcome.value) {
        // The next entry, when already here, is handed out right after: its first delivery is counted now.
        await this.write(ch, { next: offset + 1, attempts: inbox.size > 0 ? 1 : 0 });
        this.position = offset + 1;
        ch.ack(msg); // on a stream queue an ack only asks for more messages
        return "done";
      }
      await sleep(Math.min(1000, this.o.redeliveryMs, 50 * 2 ** (attempt - 1)), stop);
      if (stop.aborted) return { call };
    }
  }

  private async write(ch: ConfirmChannel, cursor: Cursor): Promise<void> {
    if (!this.cursorDeclared) {
      await ch.assertQueue(this.o.cursor, { durable: true, arguments: CURSOR_ARGS });
      this.cursorDeclared = true;
    }
    await sendConfirmed(ch, this.o.cursor, Buffer.from(JSON.stringify(cursor)));
    this.durable = cursor;
  }
}
