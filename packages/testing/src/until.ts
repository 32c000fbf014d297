import { inspect } from "node:util";

/**
 * How long `until` waits by default. Generous on purpose: on a loaded machine a test waits
 * longer, it does not fail. (vitest's testTimeout is larger still, so this error, which says what
 * was awaited, is the one a stuck test reports.)
 */
export const UNTIL_TIMEOUT_MS = 60_000;

export interface UntilOptions {
  /** Give up after this long (default UNTIL_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Time between two checks (default 20 ms). */
  intervalMs?: number;
}

type Truthy<T> = Exclude<T, false | 0 | 0n | "" | null | undefined>;

const EXPIRED = Symbol("expired");

/**
 * Waits for a condition, not for the clock: calls `condition` (sync or async) until it returns a
 * truthy value, and resolves with that value. A condition that throws (a failed `expect`, a call
 * refused) counts as not met yet. On timeout it throws an error naming `what` and the last value
 * or error seen.
 */
export async function until<T>(
  what: string,
  condition: () => T | Promise<T>,
  options: UntilOptions = {},
): Promise<Truthy<T>> {
  const timeoutMs = options.timeoutMs ?? UNTIL_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let last: { value: unknown } | { error: unknown } | undefined;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<typeof EXPIRED>((resolve) => {
      timer = setTimeout(() => resolve(EXPIRED), Math.max(0, deadline - Date.now()));
    });
    try {
      // A check that never answers must not hold the wait past its deadline.
      const value = await Promise.race([Promise.resolve().then(condition), expired]);
      if (value === EXPIRED) break;
      if (value) return value as Truthy<T>;
      last = { value };
    } catch (error) {
      last = { error };
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${describe(last)}`);
}

function describe(last: { value: unknown } | { error: unknown } | undefined): string {
  if (!last) return "the condition never answered";
  if ("error" in last) {
    const e = last.error;
    return `last error: ${e instanceof Error ? e.message : inspect(e)}`.slice(0, 2_000);
  }
  return `last value: ${inspect(last.value, { depth: 3, breakLength: Number.POSITIVE_INFINITY })}`.slice(0, 2_000);
}
