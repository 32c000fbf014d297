import type { Authenticator, Identity } from "./identity.js";

/**
 * Remembers tokens it verified, for a short while. A device's token is checked on every call the
 * gateway forwards for it (its Sync on each reconnect, every send); a signature check costs far
 * more than a map lookup. Only successes are remembered, never past the token's own expiry, and
 * at most `ttlMs`, so a key the issuer withdraws stops being honoured within that time.
 */
export class CachedAuthenticator implements Authenticator {
  private readonly verified = new Map<string, { identity: Identity; until: number }>();
  /** Checks under way: a token arriving again meanwhile (a device's hello and its first calls) waits for the same one. */
  private readonly checking = new Map<string, Promise<Identity>>();

  constructor(
    private readonly inner: Authenticator,
    private readonly ttlMs = 60_000,
    /** As many as the devices one process serves: a smaller cache would check every token again each time. */
    private readonly maxEntries = 100_000,
    /** The clock, in epoch milliseconds (tests pass their own). */
    private readonly now: () => number = Date.now,
  ) {}

  /** Tokens remembered now (each one's identity held). */
  get size(): number {
    return this.verified.size;
  }

  async verify(token: string): Promise<Identity> {
    const hit = this.verified.get(token);
    if (hit && this.now() < hit.until) return hit.identity;
    if (hit) this.verified.delete(token);
    let check = this.checking.get(token);
    if (!check) {
      check = this.check(token);
      this.checking.set(token, check);
      void check.then(
        () => this.checking.delete(token),
        () => this.checking.delete(token),
      );
    }
    return check;
  }

  private async check(token: string): Promise<Identity> {
    const identity = Object.freeze(await this.inner.verify(token));
    const now = this.now();
    // Entries are added in time order: those past their time at the front go (an idle device's
    // entry would otherwise stay as long as the cache is not full), then the oldest if still full.
    for (const [key, entry] of this.verified) {
      if (entry.until > now) break;
      this.verified.delete(key);
    }
    if (this.verified.size >= this.maxEntries) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, {
      identity,
      until: Math.min(identity.expiresAt ?? Number.POSITIVE_INFINITY, now + this.ttlMs),
    });
    return identity;
  }
}
