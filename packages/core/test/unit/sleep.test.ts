import { afterEach, expect, it, vi } from "vitest";
import { sleep } from "../../src/lifecycle.js";

afterEach(() => {
  vi.useRealTimers();
});

/** A sleep, and whether it has ended yet. */
function watched(ms: number, signal?: AbortSignal) {
  const s = { ended: false, done: Promise.resolve() };
  s.done = sleep(ms, signal).then(() => {
    s.ended = true;
  });
  return s;
}

// The clock stands still unless a test moves it: a sleep that ends before its time has been ended
// by its signal, not by its timer.
it("returns at once when its signal is already aborted, and as soon as it aborts, leaving no timer", async () => {
  vi.useFakeTimers();
  const already = watched(60_000, AbortSignal.abort());
  await vi.advanceTimersByTimeAsync(0);
  expect(already.ended).toBe(true);
  expect(vi.getTimerCount()).toBe(0);

  const c = new AbortController();
  const waiting = watched(60_000, c.signal);
  await vi.advanceTimersByTimeAsync(0);
  expect(waiting.ended).toBe(false);
  c.abort();
  await vi.advanceTimersByTimeAsync(0);
  expect(waiting.ended).toBe(true);
  expect(vi.getTimerCount()).toBe(0);
});

it("without a signal, ends when its time has passed and not before", async () => {
  vi.useFakeTimers();
  const s = watched(1_000);
  await vi.advanceTimersByTimeAsync(999);
  expect(s.ended).toBe(false);
  await vi.advanceTimersByTimeAsync(1);
  expect(s.ended).toBe(true);
});
