import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Answers that say the message itself is wrong: sending it again cannot help, so the SDK gives up
 * and tells the app. Every other outcome (unavailable, internal, deadline_exceeded, aborted,
 * resource_exhausted, unknown, a dropped connection, …) is transient or the server's fault: the
 * send is kept and tried again with the same client id, which the server stores once.
 */
export const PERMANENT_SEND_CODES: ReadonlySet<string> = new Set([
  "invalid_argument",
  "permission_denied",
  "not_found",
  "failed_precondition",
  "already_exists",
  "out_of_range",
  "unimplemented",
  "unauthenticated",
]);

export const isPermanent = (code: string): boolean => PERMANENT_SEND_CODES.has(code);

/** The API's spelling of a Connect code: `DeadlineExceeded` → `deadline_exceeded`. */
export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** The code of a failed call; anything that is not a ConnectError (a network failure) is `unavailable`. */
export function errorCode(err: unknown): string {
  return err instanceof ConnectError ? codeName(err.code) : "unavailable";
}

/**
 * The delay before attempt `attempt` (0-based): exponential from `min`, capped at `max`, with full
 * jitter inside the cap (uniform in [0, cap]) so that clients cut off together do not come back
 * together. Never more than `max`.
 */
export function backoff(attempt: number, min: number, max: number, random = Math.random): number {
  const cap = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return Math.round(cap * random());
}

/**
 * The delay before reconnect attempt `attempt`: the backoff, or — when the server said how long to
 * wait (`retry_after_ms` of a 4010, gateway full) — that long plus the backoff as jitter, so the
 * devices a full gateway turned away do not all come back at the same moment.
 */
export function reconnectDelay(
  attempt: number,
  min: number,
  max: number,
  retryAfterMs = 0,
  random = Math.random,
): number {
  return Math.max(0, retryAfterMs) + backoff(attempt, min, max, random);
}
