import { describe, expect, it } from "vitest";
import { CachedAuthenticator } from "../src/auth/cache.js";
import { createDevSigner } from "../src/auth/dev-signer.js";
import type { Authenticator } from "../src/auth/identity.js";

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
    const { signer, inner } = await counted();
    const auth = new CachedAuthenticator(inner);
    const token = await signer.sign({ sub: "ann", ttl_s: 1 });
    await auth.verify(token);
    await new Promise((r) => setTimeout(r, 1_100));
    await expect(auth.verify(token)).rejects.toThrow(/expired/);
    expect(inner.checks).toBe(2);
  });

  it("checks again after its time to live, and holds a bounded number of tokens", async () => {
    const { signer, inner } = await counted();
    const auth = new CachedAuthenticator(inner, 50, 2);
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((sub) => signer.sign({ sub })));
    await auth.verify(a as string);
    await new Promise((r) => setTimeout(r, 60));
    await auth.verify(a as string);
    expect(inner.checks).toBe(2);
    const big = new CachedAuthenticator(inner, 60_000, 2);
    for (const t of [a, b, c, a] as string[]) await big.verify(t); // c pushed a out
    expect(inner.checks).toBe(2 + 4);
  });
});
