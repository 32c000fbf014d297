import { randomBytes } from "node:crypto";
import type { LiveBus } from "./ports.js";

type Handler = (data: Uint8Array) => void;

/**
 * How a backend keeps a process from hearing back what it published: the server leaves it out
 * (NATS `noEcho`), or each message carries the publishing bus's tag and the bus drops its own.
 */
export type Echo = "suppressed" | "tagged";

const TAG_BYTES = 8;

/**
 * A live bus whose subscribers in this process get what this process publishes straight away,
 * not after a round trip through the broker: a gateway beside the fan-out (or the API, for typing
 * and receipts) hears its deliveries without the broker carrying them twice. Other processes get
 * them through the broker as before; this process does not get its own back from the broker.
 */
export class LocalFirstBus implements LiveBus {
  private readonly tag = randomBytes(TAG_BYTES);
  private readonly subjects = new Map<string, { handlers: Set<Handler>; off: Promise<() => Promise<void>> }>();

  constructor(
    private readonly inner: LiveBus,
    private readonly echo: Echo,
  ) {}

  publish(subjects: readonly string[], data: Uint8Array): void {
    for (const subject of subjects) this.dispatch(subject, data);
    this.inner.publish(subjects, this.echo === "tagged" ? Buffer.concat([this.tag, data]) : data);
  }

  async subscribe(subject: string, handler: Handler): Promise<() => Promise<void>> {
    let entry = this.subjects.get(subject);
    if (!entry) {
      const handlers = new Set<Handler>();
      const off = this.inner.subscribe(subject, (data) => this.received(handlers, data));
      entry = { handlers, off };
      this.subjects.set(subject, entry);
    }
    const subscribed = entry;
    const h: Handler = (data) => handler(data);
    subscribed.handlers.add(h);
    const off = async () => {
      if (!subscribed.handlers.delete(h) || subscribed.handlers.size > 0) return;
      if (this.subjects.get(subject) === subscribed) this.subjects.delete(subject);
      await (await subscribed.off)();
    };
    try {
      await subscribed.off;
    } catch (err) {
      subscribed.handlers.delete(h);
      if (this.subjects.get(subject) === subscribed) this.subjects.delete(subject);
      throw err;
    }
    return off;
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  async close(): Promise<void> {
    this.subjects.clear();
    await this.inner.close();
  }

  private dispatch(subject: string, data: Uint8Array): void {
    const handlers = this.subjects.get(subject)?.handlers;
    if (!handlers) return;
    for (const handler of handlers) queueMicrotask(() => handler(data));
  }

  private received(handlers: Set<Handler>, data: Uint8Array): void {
    let payload = data;
    if (this.echo === "tagged") {
      if (data.byteLength < TAG_BYTES) return;
      if (Buffer.compare(this.tag, data.subarray(0, TAG_BYTES)) === 0) return; // our own, handled at publish
      payload = data.subarray(TAG_BYTES);
    }
    for (const handler of handlers) handler(payload);
  }
}
