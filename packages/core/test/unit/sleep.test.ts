import { expect, it } from "vitest";
import { sleep } from "../../src/lifecycle.js";

it("returns at once when its signal is already aborted, and as soon as it aborts", async () => {
  const aborted = AbortSignal.abort();
  let started = performance.now();
  await sleep(60_000, aborted);
  expect(performance.now() - started).toBeLessThan(1000);
  const c = new AbortController();
  started = performance.now();
  const waiting = sleep(60_000, c.signal);
  c.abort();
  await waiting;
  expect(performance.now() - started).toBeLessThan(1000);
});
