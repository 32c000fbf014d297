import type { Authenticator, Identity } from "./identity.js";

/**
 * Remembers tokens it verified, for a short while. A device's token is checked on every call the
 * gateway forwards for it (its Sync on each reconnect, every send); a signature check costs far
 * more than a map lookup. Only successes are remembered, never past the token's own expiry, and
 * at most `ttlMs`, so a key the issuer withdraws stops being honoured within that time.
 */
export class CachedAuthenticator implements Authenticator {
  private readonly verified = new Map<string, { identity: Identity; until: number }>();

  constructor(
    private readonly inner: Authenticator,
    private readonly ttlMs = 60_000,
    private readonly maxEntries = 20_000,
    /** The clock, in epoch milliseconds (tests pass their own). */
    private readonly now: () => number = Date.now,
  ) {}

  async verify(token: string): Promise<Identity> {
    const now = this.now();
    const hit = this.verified.get(token);
    if (hit && now < hit.until) return hit.identity;
    if (hit) this.verified.delete(token);
    const identity = Object.freeze(await this.inner.verify(token));
    if (this.verified.size >= this.maxEntries) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, {
      identity,
      until: Math.min(identity.expiresAt ?? Number.POSITIVE_INFINITY, now + this.ttlMs),
    });
    return identity;
  }
}
