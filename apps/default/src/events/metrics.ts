import type { Meter } from "@service-chat/core";

/** What the send path reports besides RPC timings: batches of the group committer that failed. */
export class SendMetrics {
  private readonly failures;

  constructor(meter: Meter) {
    this.failures = meter.createCounter("chat_send_batch_failures_total", {
      description: "Group-commit batches that failed and rolled back (their calls then ran one by one)",
    });
  }

  batchFailed(): void {
    this.failures.add(1);
  }
}
