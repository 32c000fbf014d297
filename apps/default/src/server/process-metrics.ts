import { readdirSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Meter } from "@service-chat/core";

/**
 * The process's own health as gauges, read when /metrics is scraped: resident memory, heap in use,
 * open file descriptors, and the event loop's delay (p99 and max since the last scrape). What a
 * soak run watches for a slope (docs/fault-suite.md).
 */
export function processMetrics(meter: Meter): void {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const gauge = (name: string, description: string, unit: string, read: () => number | undefined) =>
    meter.createObservableGauge(name, { description, unit }).addCallback((r) => {
      const v = read();
      if (v !== undefined) r.observe(v);
    });
  gauge("chat_process_resident_memory", "Resident set size", "bytes", () => process.memoryUsage.rss());
  gauge("chat_process_heap_used", "V8 heap in use", "bytes", () => process.memoryUsage().heapUsed);
  gauge("chat_process_open_fds", "Open file descriptors (Linux)", "", () => {
    try {
      return readdirSync("/proc/self/fd").length;
    } catch {
      return undefined;
    }
  });
  gauge(
    "chat_process_event_loop_delay_p99",
    "Event loop delay, 99th percentile since the last scrape",
    "seconds",
    () => {
      const v = delay.percentile(99) / 1e9;
      return v;
    },
  );
  gauge("chat_process_event_loop_delay_max", "Event loop delay, longest since the last scrape", "seconds", () => {
    const v = delay.max / 1e9;
    delay.reset();
    return v;
  });
}
