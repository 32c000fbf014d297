/**
 * Reads a histogram out of a Prometheus text exposition (what a server's /metrics answers) and
 * computes percentiles from its buckets as Prometheus's `histogram_quantile` does: linear
 * interpolation within the bucket holding the rank, from the bucket below's upper bound (0 for the
 * first) to its own; a rank in the +Inf bucket gives the highest finite bound.
 */

export interface PromHistogram {
  /** Finite upper bounds, ascending. */
  bounds: number[];
  /** Cumulative counts: one per bound, then the +Inf bucket (= count). */
  cumulative: number[];
  count: number;
  sum: number;
}

export interface BucketPercentiles {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

const unescapeLabel = (v: string) => v.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));

function parseValue(v: string): number {
  if (v === "+Inf") return Number.POSITIVE_INFINITY;
  if (v === "-Inf") return Number.NEGATIVE_INFINITY;
  return Number(v);
}

/** Every sample line of the exposition (comments and blank lines skipped). */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels[l[1] as string] = unescapeLabel(l[2] as string);
    out.push({ name: m[1] as string, labels, value: parseValue(m[3] as string) });
  }
  return out;
}

/**
 * The histogram `name`, summed over every series whose labels include `match` (other labels, such
 * as otel_scope_name, may be anything); undefined when no series matches.
 */
export function readHistogram(
  text: string,
  name: string,
  match: Record<string, string> = {},
): PromHistogram | undefined {
  const matches = (labels: Record<string, string>) => Object.entries(match).every(([k, v]) => labels[k] === v);
  const byBound = new Map<number, number>();
  let count = 0;
  let sum = 0;
  let found = false;
  for (const s of parseSamples(text)) {
    if (!matches(s.labels)) continue;
    if (s.name === `${name}_bucket` && s.labels.le !== undefined) {
      const le = parseValue(s.labels.le);
      byBound.set(le, (byBound.get(le) ?? 0) + s.value);
      found = true;
    } else if (s.name === `${name}_count`) {
      count += s.value;
      found = true;
    } else if (s.name === `${name}_sum`) {
      sum += s.value;
    }
  }
  if (!found) return undefined;
  const bounds = [...byBound.keys()].filter((b) => Number.isFinite(b)).sort((a, b) => a - b);
  const cumulative = bounds.map((b) => byBound.get(b) ?? 0);
  cumulative.push(byBound.get(Number.POSITIVE_INFINITY) ?? count);
  return { bounds, cumulative, count, sum };
}

/**
 * What happened between two readings of the same cumulative histogram (`before` absent: all of
 * `after`). Throws when the bucket bounds differ (another server, or another histogram).
 */
export function histogramDelta(after: PromHistogram, before?: PromHistogram): PromHistogram {
  if (!before) return after;
  if (before.bounds.length !== after.bounds.length || before.bounds.some((b, i) => b !== after.bounds[i])) {
    throw new Error("the histogram's bucket bounds differ between the two readings");
  }
  return {
    bounds: after.bounds,
    cumulative: after.cumulative.map((n, i) => n - (before.cumulative[i] ?? 0)),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

/** The q-quantile (0 < q ≤ 1) in the histogram's unit; NaN when it is empty. */
export function histogramQuantile(h: PromHistogram, q: number): number {
  const total = h.cumulative.at(-1) ?? 0;
  if (total <= 0 || h.bounds.length === 0) return Number.NaN;
  const rank = q * total;
  for (let i = 0; i < h.cumulative.length; i++) {
    const cum = h.cumulative[i] as number;
    if (cum < rank) continue;
    if (i >= h.bounds.length) return h.bounds.at(-1) as number;
    const upper = h.bounds[i] as number;
    const lower = i === 0 ? Math.min(0, upper) : (h.bounds[i - 1] as number);
    const below = i === 0 ? 0 : (h.cumulative[i - 1] as number);
    const inBucket = cum - below;
    if (inBucket <= 0) return upper;
    return lower + ((upper - lower) * (rank - below)) / inBucket;
  }
  return h.bounds.at(-1) as number;
}

/** count, mean, p50, p95 and p99 of a histogram in seconds, as milliseconds. */
export function percentilesMs(h: PromHistogram): BucketPercentiles {
  const ms = (s: number) => s * 1000;
  return {
    count: h.count,
    mean: h.count > 0 ? ms(h.sum / h.count) : Number.NaN,
    p50: ms(histogramQuantile(h, 0.5)),
    p95: ms(histogramQuantile(h, 0.95)),
    p99: ms(histogramQuantile(h, 0.99)),
  };
}
