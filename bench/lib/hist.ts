/**
 * A log-bucketed latency histogram (buckets 2 % wide from 1 µs up), small enough to cross a
 * process boundary and mergeable, so receivers spread over several processes report one
 * distribution. Percentiles are the upper edge of their bucket (at most 2 % high); max is exact.
 */
const FLOOR_MS = 0.001;
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);

export interface HistogramData {
  buckets: Record<string, number>;
  count: number;
  sum: number;
  max: number;
}

export interface Percentiles {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export class Histogram {
  private buckets = new Map<number, number>();
  count = 0;
  sum = 0;
  max = 0;

  record(ms: number): void {
    const v = Math.max(ms, FLOOR_MS);
    const i = Math.ceil(Math.log(v / FLOOR_MS) / LOG_GROWTH);
    this.buckets.set(i, (this.buckets.get(i) ?? 0) + 1);
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  merge(other: HistogramData | Histogram): this {
    const data = other instanceof Histogram ? other.toJSON() : other;
    for (const [k, n] of Object.entries(data.buckets)) {
      const i = Number(k);
      this.buckets.set(i, (this.buckets.get(i) ?? 0) + n);
    }
    this.count += data.count;
    this.sum += data.sum;
    if (data.max > this.max) this.max = data.max;
    return this;
  }

  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (const i of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(i) ?? 0;
      if (seen >= rank) return Math.min(FLOOR_MS * GROWTH ** i, this.max);
    }
    return this.max;
  }

  summary(): Percentiles {
    return {
      count: this.count,
      mean: this.count ? this.sum / this.count : Number.NaN,
      p50: this.percentile(50),
      p95: this.percentile(95),
      p99: this.percentile(99),
      max: this.count ? this.max : Number.NaN,
    };
  }

  toJSON(): HistogramData {
    return { buckets: Object.fromEntries(this.buckets), count: this.count, sum: this.sum, max: this.max };
  }

  static from(data: HistogramData): Histogram {
    return new Histogram().merge(data);
  }

  /** One histogram of several (each worker's), as the merge of them all. */
  static of(parts: Iterable<HistogramData | Histogram>): Histogram {
    const h = new Histogram();
    for (const p of parts) h.merge(p);
    return h;
  }
}

export const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
