import { describe, expect, it } from "vitest";
import { CachedAuthenticator } from "../../src/auth/cache.js";
import { createDevSigner } from "../../src/auth/dev-signer.js";
import type { Authenticator } from "../../src/auth/identity.js";
import { unauthenticated } from "../../src/errors.js";

/** The dev signer, counting the signature checks it makes. */
async function counted() {
  const signer = await createDevSigner();
  const inner: Authenticator & { checks: number } = {
    checks: 0,
    verify(token) {
      this.checks++;
      return signer.verify(token);
    },
  };
  return { signer, inner };
}

/**
 * An authenticator on a clock of the test's own: a token is "<sub>@<expiry in ms>", refused from
 * its expiry on, as a signature check refuses an expired token.
 */
function onClock() {
  let now = 1_700_000_000_000;
  const clock = {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
  const inner: Authenticator & { checks: number } = {
    checks: 0,
    async verify(token) {
      this.checks++;
      const [profileId = "", exp] = token.split("@");
      if (now >= Number(exp)) throw unauthenticated("token expired");
      return { profileId, contactId: "", deviceId: "", expiresAt: Number(exp) };
    },
  };
  return { inner, clock };
}

describe("CachedAuthenticator", () => {
  it("checks a token's signature once, then answers from memory", async () => {
    const { signer, inner } = await counted();
    const auth = new CachedAuthenticator(inner);
    const token = await signer.sign({ sub: "ann", device_id: "phone" });
    const first = await auth.verify(token);
    const again = await auth.verify(token);
    expect(again).toEqual(first);
    expect(first.profileId).toBe("ann");
    expect(inner.checks).toBe(1);
    expect(Object.isFrozen(first)).toBe(true);
  });

  it("remembers no failure: a bad token is refused every time", async () => {
    const { signer, inner } = await counted();
    const auth = new CachedAuthenticator(inner);
    const token = await signer.sign({ sub: "ann" });
    const forged = `${token.slice(0, -4)}AAAA`;
    await expect(auth.verify(forged)).rejects.toThrow(/signature|malformed/);
    await expect(auth.verify(forged)).rejects.toThrow(/signature|malformed/);
    expect(inner.checks).toBe(2);
  });

  it("never answers for a token past its expiry", async () => {
    const { inner, clock } = onClock();
    const auth = new CachedAuthenticator(inner, 60_000, 20_000, clock.now);
    const token = `ann@${clock.now() + 1_000}`;
    await auth.verify(token);
    clock.advance(999);
    await auth.verify(token);
    expect(inner.checks).toBe(1);
    clock.advance(1);
    await expect(auth.verify(token)).rejects.toThrow(/expired/);
    expect(inner.checks).toBe(2);
  });

  it("checks again after its time to live, and holds a bounded number of tokens", async () => {
    const { inner, clock } = onClock();
    const auth = new CachedAuthenticator(inner, 50, 2, clock.now);
    const [a, b, c] = ["a", "b", "c"].map((sub) => `${sub}@${clock.now() + 3_600_000}`) as [string, string, string];
    await auth.verify(a);
    clock.advance(49);
    await auth.verify(a);
    expect(inner.checks).toBe(1);
    clock.advance(1);
    await auth.verify(a);
    expect(inner.checks).toBe(2);
    const big = new CachedAuthenticator(inner, 60_000, 2, clock.now);
    for (const t of [a, b, c, a]) await big.verify(t); // c pushed a out
    expect(inner.checks).toBe(2 + 4);
  });

  it("checks a token once when it arrives several times at once (a device's hello and its first calls)", async () => {
    const { signer, inner } = await counted();
    const auth = new CachedAuthenticator(inner);
    const token = await signer.sign({ sub: "ann", device_id: "phone" });
    const answers = await Promise.all(Array.from({ length: 20 }, () => auth.verify(token)));
    expect(new Set(answers.map((a) => a.profileId))).toEqual(new Set(["ann"]));
    expect(inner.checks).toBe(1);
    const forged = `${token.slice(0, -4)}AAAA`;
    const refused = await Promise.allSettled([auth.verify(forged), auth.verify(forged)]);
    expect(refused.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(inner.checks).toBe(2);
    await expect(auth.verify(forged)).rejects.toThrow(/signature|malformed/); // and not remembered
    expect(inner.checks).toBe(3);
  });

  it("lets go of tokens past their time when it checks a new one, so idle devices' tokens are not kept", async () => {
    const { inner, clock } = onClock();
    const auth = new CachedAuthenticator(inner, 60_000, 100_000, clock.now);
    const far = String(clock.now() + 3_600_000);
    await auth.verify(`ann@${far}`);
    await auth.verify(`bob@${far}`);
    clock.advance(30_000);
    await auth.verify(`cy@${far}`);
    expect(auth.size).toBe(3);
    clock.advance(30_000);
    await auth.verify(`dee@${far}`);
    expect(auth.size).toBe(2); // ann and bob went; cy (30 s old) and dee stay
    expect(await auth.verify(`ann@${far}`)).toMatchObject({ profileId: "ann" });
    expect(inner.checks).toBe(5);
  });
});
