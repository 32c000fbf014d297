// The benchmark's reader of /metrics histograms (bench/lib/prometheus.ts). It lives here because
// the `unit` project only collects apps/*/test/unit and packages/*/test.
import { describe, expect, it } from "vitest";
import {
  histogramDelta,
  histogramQuantile,
  parseSamples,
  percentilesMs,
  readHistogram,
} from "../../../../bench/lib/prometheus.js";

const series = (labels: string, buckets: [string, number][], sum: number) => {
  const count = buckets.at(-1)?.[1] ?? 0;
  return [
    `h_seconds_count{${labels}} ${count}`,
    `h_seconds_sum{${labels}} ${sum}`,
    ...buckets.map(([le, n]) => `h_seconds_bucket{${labels},le="${le}"} ${n}`),
  ].join("\n");
};

const SEND = 'rpc_method="SendEvent",rpc_code="ok",otel_scope_name="chat"';
const TEXT = [
  "# HELP h_seconds what it measures",
  "# UNIT h_seconds s",
  "# TYPE h_seconds histogram",
  series(
    SEND,
    [
      ["0.001", 0],
      ["0.002", 10],
      ["0.005", 90],
      ["0.01", 100],
      ["+Inf", 100],
    ],
    0.3,
  ),
  series(
    'rpc_method="SendEvent",rpc_code="invalid_argument",otel_scope_name="chat"',
    [
      ["0.001", 4],
      ["0.002", 4],
      ["0.005", 4],
      ["0.01", 4],
      ["+Inf", 4],
    ],
    0.002,
  ),
  series(
    'rpc_method="Sync",rpc_code="ok",otel_scope_name="chat"',
    [
      ["0.001", 0],
      ["0.002", 0],
      ["0.005", 0],
      ["0.01", 0],
      ["+Inf", 7],
    ],
    70,
  ),
  "# TYPE other_total counter",
  'other_total{a="x \\"quoted\\" y",b="1"} 5',
  "",
].join("\n");

describe("parseSamples", () => {
  it("reads names, labels (escaped quotes too) and values, skipping comments", () => {
    const other = parseSamples(TEXT).find((s) => s.name === "other_total");
    expect(other).toEqual({ name: "other_total", labels: { a: 'x "quoted" y', b: "1" }, value: 5 });
    expect(parseSamples('up 1\n# comment\n\nx{le="+Inf"} +Inf')).toEqual([
      { name: "up", labels: {}, value: 1 },
      { name: "x", labels: { le: "+Inf" }, value: Number.POSITIVE_INFINITY },
    ]);
  });
});

describe("readHistogram", () => {
  it("picks the series whose labels match, whatever their other labels", () => {
    expect(readHistogram(TEXT, "h_seconds", { rpc_method: "SendEvent", rpc_code: "ok" })).toEqual({
      bounds: [0.001, 0.002, 0.005, 0.01],
      cumulative: [0, 10, 90, 100, 100],
      count: 100,
      sum: 0.3,
    });
  });

  it("sums the series that match", () => {
    const h = readHistogram(TEXT, "h_seconds", { rpc_method: "SendEvent" });
    expect(h?.cumulative).toEqual([4, 14, 94, 104, 104]);
    expect(h?.count).toBe(104);
  });

  it("is undefined when nothing matches", () => {
    expect(readHistogram(TEXT, "h_seconds", { rpc_method: "GetRoom" })).toBeUndefined();
    expect(readHistogram(TEXT, "nope")).toBeUndefined();
  });
});

describe("histogramQuantile", () => {
  const h = readHistogram(TEXT, "h_seconds", { rpc_method: "SendEvent", rpc_code: "ok" });
  if (!h) throw new Error("no histogram");

  it("interpolates linearly within the bucket holding the rank", () => {
    // rank 50 of 100: bucket (0.002, 0.005] holds ranks 11–90, 80 of them; 40/80 of the way.
    expect(histogramQuantile(h, 0.5)).toBeCloseTo(0.0035, 10);
    // rank 95: bucket (0.005, 0.01] holds 91–100; 5/10 of the way.
    expect(histogramQuantile(h, 0.95)).toBeCloseTo(0.0075, 10);
    expect(histogramQuantile(h, 0.99)).toBeCloseTo(0.0095, 10);
    // rank 5: the first non-empty bucket, from the bound below it.
    expect(histogramQuantile(h, 0.05)).toBeCloseTo(0.0015, 10);
  });

  it("starts the first bucket at 0", () => {
    const first = { bounds: [0.001, 0.002], cumulative: [10, 10, 10], count: 10, sum: 0.005 };
    expect(histogramQuantile(first, 0.5)).toBeCloseTo(0.0005, 10);
  });

  it("answers the highest finite bound for a rank in +Inf, NaN when empty", () => {
    const slow = readHistogram(TEXT, "h_seconds", { rpc_method: "Sync" });
    expect(slow && histogramQuantile(slow, 0.5)).toBe(0.01);
    expect(histogramQuantile({ bounds: [1], cumulative: [0, 0], count: 0, sum: 0 }, 0.5)).toBeNaN();
  });
});

describe("histogramDelta and percentilesMs", () => {
  it("keeps only what happened between two readings", () => {
    const before = { bounds: [0.001, 0.002, 0.005, 0.01], cumulative: [0, 10, 10, 10, 10], count: 10, sum: 0.015 };
    const after = readHistogram(TEXT, "h_seconds", { rpc_method: "SendEvent", rpc_code: "ok" });
    if (!after) throw new Error("no histogram");
    const d = histogramDelta(after, before);
    expect(d.cumulative).toEqual([0, 0, 80, 90, 90]);
    expect(d.count).toBe(90);
    const p = percentilesMs(d);
    expect(p.count).toBe(90);
    expect(p.mean).toBeCloseTo((0.285 / 90) * 1000, 6);
    // rank 45 of 90: (0.002, 0.005] holds 1–80; 45/80 of the way → 3.6875 ms.
    expect(p.p50).toBeCloseTo(3.6875, 6);
    // rank 85.5: (0.005, 0.01] holds 81–90; 5.5/10 of the way → 7.75 ms.
    expect(p.p95).toBeCloseTo(7.75, 6);
    expect(histogramDelta(after)).toBe(after);
  });

  it("refuses readings with different buckets", () => {
    const before = { bounds: [0.001], cumulative: [3, 3], count: 3, sum: 0.001 };
    const after = { bounds: [0.001, 0.002], cumulative: [3, 5, 5], count: 5, sum: 0.004 };
    expect(() => histogramDelta(after, before)).toThrow(/bounds differ/);
  });
});
