import { type RoomEvent, RoomEventType } from "@service-chat/api";
import {
  currentTraceParent,
  type EventStream,
  type LiveBus,
  type Logger,
  type Service,
  type Span,
  SpanKind,
  type StreamEntry,
  sleep,
  type Tracing,
} from "@service-chat/core";
import { eventFrame, publishToRecipients, RECIPIENTS_PER_MESSAGE } from "@service-chat/protocol";
import { decodeEvent, readBatch, type WireEvent } from "./event-wire.js";
import { type Member, type MembershipCache, membershipChange } from "./membership.js";
import type { PipelineMetrics } from "./metrics.js";

export const FANOUT_GROUP = "fanout";
const LAG_EVERY_MS = 5000;
/** Recipients published per turn of the event loop, so a huge room does not stall other rooms. */
const CHUNK = RECIPIENTS_PER_MESSAGE * 5;

export interface FanoutOptions {
  stream: EventStream;
  live: LiveBus;
  members: MembershipCache;
  logger: Logger;
  metrics?: PipelineMetrics;
  /** Called with the recipients of each event (the push hook for offline users). */
  onDelivered?: (event: RoomEvent, recipients: Member[]) => void;
  /** Present when tracing is on: a traced entry is a `fanout` span, continued by the gateways. */
  tracing?: Tracing;
}

/**
 * Consumes every partition of the stream and publishes each event on the gateways' deliveries
 * subject with its recipients: one serialisation and one message per event (per 1,000
 * recipients), whatever the room size. Several workers may run; the stream lets one handle a
 * partition at a time, in order.
 */
export class FanoutWorker implements Service {
  readonly name = "fanout";

  constructor(private readonly o: FanoutOptions) {}

  async run(signal: AbortSignal): Promise<void> {
    const { stream } = this.o;
    await Promise.all([
      ...Array.from({ length: stream.partitions }, (_, p) =>
        stream
          .consume(FANOUT_GROUP, p, (entry) => this.handle(entry), signal)
          .catch((err: unknown) => {
            if (!signal.aborted) throw err;
          }),
      ),
      this.measureLag(signal),
    ]);
  }

  /** Stream lag per partition, for the metrics. */
  private async measureLag(signal: AbortSignal): Promise<void> {
    const { stream, metrics } = this.o;
    if (!metrics) return;
    while (!signal.aborted) {
      for (let p = 0; p < stream.partitions && !signal.aborted; p++) {
        const lag = await stream.lag(FANOUT_GROUP, p).catch(() => undefined);
        if (lag !== undefined) metrics.streamLag(p, lag);
      }
      await sleep(LAG_EVERY_MS, signal);
    }
  }

  handle(entry: StreamEntry): Promise<void> {
    const events = readBatch(entry.data);
    const { tracing } = this.o;
    if (!tracing || !events.trace) return this.deliver(events);
    return tracing.span(
      "fanout",
      { parent: events.trace, kind: SpanKind.CONSUMER, attributes: { "chat.events": events.length } },
      (span) => this.deliver(events, currentTraceParent(), span),
    );
  }

  private async deliver(events: WireEvent[], trace?: string, span?: Span): Promise<void> {
    const started = performance.now();
    let deliveries = 0;
    for (const wire of events) {
      // Decoded only when its content matters: a system event (membership), or for push.
      const event = wire.type === RoomEventType.SYSTEM || this.o.onDelivered ? decodeEvent(wire) : undefined;
      const change = event ? membershipChange(event) : undefined;
      const recipients = await this.o.members.recipients(wire.roomId, wire.seq, change);
      const frame = eventFrame(wire.bytes);
      for (let i = 0; i < recipients.length; i += CHUNK) {
        if (i > 0) await new Promise((r) => setImmediate(r));
        publishToRecipients(
          this.o.live,
          recipients.slice(i, i + CHUNK).map((m) => m.wire),
          frame,
          trace,
        );
      }
      deliveries += recipients.length;
      if (event) this.o.onDelivered?.(event, recipients);
    }
    // The entry is acknowledged when this returns: what was published must have left the process
    // first, or a crash right after could lose the live copies (devices would see it only at the
    // room's next event).
    await this.o.live.flush();
    this.o.metrics?.fannedOut(events.length, deliveries, performance.now() - started);
    span?.setAttribute("chat.deliveries", deliveries);
  }
}
