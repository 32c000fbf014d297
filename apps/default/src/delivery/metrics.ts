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

  published(n: number): void {
    this.publishedEvents.add(n);
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
  }

  deadLetters(n: number): void {
    this.deadLetterCount = n;
  }
}
