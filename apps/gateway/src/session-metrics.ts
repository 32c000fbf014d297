import type { ObservableCallback } from "@opentelemetry/api";
import type { Meter } from "@service-chat/core";

/** What a session reports, read by the metrics at scrape time. */
export interface MeasuredSession {
  /** Bytes written to the device and not yet sent (0 unless it is behind). */
  readonly queuedBytes: number;
}

/**
 * Device sessions' traffic, counted in plain numbers shared by every session (a map increment per
 * frame, nothing per connection) and read by the metrics only when scraped: frames received and
 * sent by kind, disconnects by code, bytes waiting in send queues, events replayed per hello.
 */
export class SessionMetrics {
  private readonly received = new Map<string, number>();
  private readonly sent = new Map<string, number>();
  private readonly disconnects = new Map<number, number>();
  private readonly replays;

  constructor(meter: Meter, sessions: () => Iterable<MeasuredSession>) {
    const observeMap =
      <K>(map: Map<K, number>, label: string): ObservableCallback =>
      (r) => {
        for (const [k, v] of map) r.observe(v, { [label]: String(k) });
      };
    meter
      .createObservableCounter("chat_gateway_frames_received", {
        description: "Frames received from devices, by kind (hello, send, ack, …)",
      })
      .addCallback(observeMap(this.received, "kind"));
    meter
      .createObservableCounter("chat_gateway_frames_sent", {
        description: "Frames sent to devices, by kind (event, ack, pong, …; disconnects counted apart)",
      })
      .addCallback(observeMap(this.sent, "kind"));
    meter
      .createObservableCounter("chat_gateway_disconnects", {
        description:
          "Sessions ended, by disconnect code (docs/stream-protocol.md); 0: the device closed the connection",
      })
      .addCallback(observeMap(this.disconnects, "code"));
    meter
      .createObservableGauge("chat_gateway_send_queue_bytes", {
        description: "Bytes written to devices and not yet sent, over all sessions of this process",
        unit: "By",
      })
      .addCallback((r) => {
        let total = 0;
        for (const s of sessions()) total += s.queuedBytes;
        r.observe(total);
      });
    this.replays = meter.createHistogram("chat_gateway_replay_events", {
      description: "Events a device was sent on connecting, to catch up (its replay)",
      advice: { explicitBucketBoundaries: [0, 1, 10, 50, 100, 500, 1000, 5000, 10000, 50000] },
    });
  }

  frameReceived(kind: string | undefined): void {
    const k = kind ?? "unknown";
    this.received.set(k, (this.received.get(k) ?? 0) + 1);
  }

  frameSent(kind: string | undefined): void {
    const k = kind ?? "unknown";
    this.sent.set(k, (this.sent.get(k) ?? 0) + 1);
  }

  disconnected(code: number): void {
    this.disconnects.set(code, (this.disconnects.get(code) ?? 0) + 1);
  }

  replayed(events: number): void {
    this.replays.record(events);
  }
}
