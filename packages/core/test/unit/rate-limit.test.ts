import { RateLimiter } from "@service-chat/core";
import { describe, expect, it } from "vitest";

describe("RateLimiter", () => {
  it("lets a burst through, then one call per refill, each caller on its own", () => {
    let now = 0;
    const limiter = new RateLimiter(2, 5, 100, () => now);
    for (let i = 0; i < 5; i++) expect(limiter.take("a")).toBe(0);
    expect(limiter.take("a")).toBe(500);
    expect(limiter.take("b")).toBe(0);
    now += 500;
    expect(limiter.take("a")).toBe(0);
    expect(limiter.take("a")).toBe(500);
  });

  it("charges a call by its cost, and never asks for more than a full bucket", () => {
    let now = 0;
    const limiter = new RateLimiter(10, 20, 100, () => now);
    expect(limiter.take("a", 15)).toBe(0);
    expect(limiter.take("a", 10)).toBe(500);
    now += 500;
    expect(limiter.take("a", 10)).toBe(0);
    expect(limiter.take("a", 1000)).toBe(2000); // a call larger than the bucket waits for a full one
  });

  it("forgets the least recently used callers beyond its size", () => {
    const limiter = new RateLimiter(1, 1, 2, () => 0);
    limiter.take("a");
    limiter.take("b");
    limiter.take("c");
    expect(limiter.take("a")).toBe(0); // forgotten, so full again
    expect(limiter.take("c")).toBe(1000);
  });
});
