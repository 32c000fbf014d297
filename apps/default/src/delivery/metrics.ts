import type { Meter } from "@service-chat/core";

/** What the delivery pipeline reports: outbox backlog, stream lag, fan-out time, deliveries, dead letters. */
export class PipelineMetrics {
  private backlog = 0;
  private readonly lags = new Map<number, number>();
  private deadLetterCount = 0;
  private readonly publishedEvents;
  private readonly fanoutEvents;
  private readonly deliveries;
  private readonly fanoutTime;
  private readonly relayLag;
  private readonly entryEvents;
  private readonly entryDeliveries;

  constructor(meter: Meter) {
    this.publishedEvents = meter.createCounter("chat_outbox_published_events_total", {
      description: "Events the outbox relay published to the stream",
    });
    this.fanoutEvents = meter.createCounter("chat_fanout_events_total", { description: "Events fanned out" });
    this.deliveries = meter.createCounter("chat_fanout_deliveries_total", {
      description: "Per-user live deliveries published by fan-out",
    });
    this.fanoutTime = meter.createHistogram("chat_fanout_batch_seconds", {
      description: "Time to fan out one stream entry",
      unit: "s",
    });
    this.relayLag = meter.createHistogram("chat_outbox_relay_lag_seconds", {
      description: "Age of the oldest event of each batch the relay published: from its commit to the stream",
      unit: "s",
      advice: {
        explicitBucketBoundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      },
    });
    this.entryEvents = meter.createHistogram("chat_fanout_entry_events", {
      description: "Events per stream entry fan-out handled (the relay's batch size per partition)",
      advice: { explicitBucketBoundaries: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
    });
    this.entryDeliveries = meter.createHistogram("chat_fanout_entry_deliveries", {
      description: "Per-user deliveries made for one stream entry",
      advice: { explicitBucketBoundaries: [0, 1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000] },
    });
    meter
      .createObservableGauge("chat_outbox_backlog", { description: "Committed outbox rows not yet published" })
      .addCallback((r) => r.observe(this.backlog));
    meter
      .createObservableGauge("chat_stream_lag", { description: "Stream entries fan-out has not acknowledged" })
      .addCallback((r) => {
        for (const [partition, lag] of this.lags) r.observe(lag, { partition: String(partition) });
      });
    meter
      .createObservableGauge("chat_push_dead_letters", { description: "Push notifications given up on" })
      .addCallback((r) => r.observe(this.deadLetterCount));
  }

  /** `oldestMs`: the commit time (unix ms) of the oldest event published. */
  published(n: number, oldestMs?: number): void {
    this.publishedEvents.add(n);
    if (oldestMs !== undefined) this.relayLag.record(Math.max(0, Date.now() - oldestMs) / 1000);
  }

  outboxBacklog(n: number): void {
    this.backlog = n;
  }

  streamLag(partition: number, n: number): void {
    this.lags.set(partition, n);
  }

  fannedOut(events: number, deliveries: number, ms: number): void {
    this.fanoutEvents.add(events);
    this.deliveries.add(deliveries);
    this.fanoutTime.record(ms / 1000);
    this.entryEvents.record(events);
    this.entryDeliveries.record(deliveries);
  }

  deadLetters(n: number): void {
    this.deadLetterCount = n;
  }
}
