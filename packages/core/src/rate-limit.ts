/**
 * Token buckets per key (a caller): each holds up to `burst` tokens and refills at `perSecond`.
 * `take` spends tokens or says how long until there are enough. The least recently refilled keys
 * are forgotten beyond `maxKeys` (a forgotten caller starts again with a full bucket).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Spends `cost` tokens of `key` and answers 0, or answers the milliseconds until they would be there (spending none). */
  take(key: string, cost = 1): number {
    const now = this.now();
    const b = this.buckets.get(key);
    let tokens = this.burst;
    if (b) {
      tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
      this.buckets.delete(key); // re-inserted below: the map stays in order of last use
    } else if (this.buckets.size >= this.maxKeys) {
      this.buckets.delete(this.buckets.keys().next().value as string);
    }
    const needed = Math.min(cost, this.burst);
    if (tokens >= needed) {
      this.buckets.set(key, { tokens: tokens - needed, at: now });
      return 0;
    }
    this.buckets.set(key, { tokens, at: now });
    return Math.ceil(((needed - tokens) / this.perSecond) * 1000);
  }
}
