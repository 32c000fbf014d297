import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import type { Meter } from "@opentelemetry/api";

/** GC pauses: 0.1 ms to 1 s. */
const GC_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const GC_KINDS: Record<number, string> = { 1: "minor", 2: "major", 4: "incremental", 8: "weakcb" };

/**
 * The process and the Node.js runtime, read when scraped: CPU, resident memory, heap, event-loop
 * delay (sampled every 20 ms; percentiles since the previous scrape), GC pauses by kind. Written
 * here rather than taken from a runtime-instrumentation package: a few lines over
 * `process` and `perf_hooks`, and none of those packages is verified on Node 20 with this SDK set.
 * Returns a stop function.
 */
export function registerRuntimeMetrics(meter: Meter): () => void {
  meter
    .createObservableCounter("process_cpu_seconds", {
      description: "CPU time used by the process (user + system)",
      unit: "s",
    })
    .addCallback((r) => {
      const { user, system } = process.cpuUsage();
      r.observe((user + system) / 1e6);
    });
  meter
    .createObservableGauge("process_resident_memory_bytes", { description: "Resident set size", unit: "By" })
    .addCallback((r) => r.observe(process.memoryUsage.rss()));
  meter
    .createObservableGauge("nodejs_heap_bytes", { description: "V8 heap, used and total", unit: "By" })
    .addCallback((r) => {
      const m = process.memoryUsage();
      r.observe(m.heapUsed, { state: "used" });
      r.observe(m.heapTotal, { state: "total" });
      r.observe(m.external, { state: "external" });
    });
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  meter
    .createObservableGauge("nodejs_eventloop_delay_seconds", {
      description: "Event-loop delay since the previous scrape, by percentile (50, 99, 100 = max)",
      unit: "s",
    })
    .addCallback((r) => {
      if (loop.count > 0) {
        r.observe(loop.percentile(50) / 1e9, { percentile: "50" });
        r.observe(loop.percentile(99) / 1e9, { percentile: "99" });
        r.observe(loop.max / 1e9, { percentile: "100" });
      }
      loop.reset();
    });
  const gc = meter.createHistogram("nodejs_gc_duration_seconds", {
    description: "Garbage collection pauses by kind",
    unit: "s",
    advice: { explicitBucketBoundaries: GC_BUCKETS },
  });
  const attributes = Object.fromEntries(Object.entries(GC_KINDS).map(([k, kind]) => [k, { kind }]));
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      gc.record(e.duration / 1000, attributes[kind] ?? { kind: "other" });
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return () => {
    loop.disable();
    observer.disconnect();
  };
}
