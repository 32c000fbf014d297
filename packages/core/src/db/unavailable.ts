import type { Logger } from "../logger.js";

/** Node socket errors that mean the server cannot be reached or went away. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** SQLSTATEs of a server that is shutting down, starting, out of connections, or cut off. */
const SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300", "08000", "08001", "08003", "08004", "08006"]);

/** Messages node-postgres (pg, pg-pool) gives a connection it lost or could not open in time. */
const DRIVER_MESSAGES = [
  /^Connection terminated/,
  /^Client has encountered a connection error and is not queryable/,
  /^Client was closed and is not queryable/,
  /^timeout exceeded when trying to connect/,
  /^Connection ended/,
];

/**
 * Whether `err` says the database could not be reached — down, restarting, out of connections or
 * cut off — rather than anything about the request: such a call may succeed when retried, and is
 * answered `unavailable`. Looks through `cause` (and AggregateError's errors).
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 4) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && (NETWORK_CODES.has(code) || SQLSTATES.has(code))) return true;
  if (DRIVER_MESSAGES.some((m) => m.test(err.message))) return true;
  if (err instanceof AggregateError && err.errors.some((e) => isDatabaseUnavailable(e, depth + 1))) return true;
  return isDatabaseUnavailable(err.cause, depth + 1);
}

/**
 * Logs an outage once: the first failure a warning (with its cause), the ones after it only
 * counted, and the first success after it one line saying how many calls it refused and for how
 * long. A database down for a minute under traffic is two lines, not thousands of stack traces.
 */
export class OutageLog {
  private since: number | undefined;
  private refused = 0;

  constructor(
    private readonly logger: Logger,
    /** What is out, in the messages: "database", "chat service". */
    private readonly what: string,
  ) {}

  get down(): boolean {
    return this.since !== undefined;
  }

  failed(err: unknown): void {
    this.refused++;
    if (this.since !== undefined) return;
    this.since = Date.now();
    this.logger.warn({ err }, `${this.what} unavailable: calls are answered 'unavailable' until it is back`);
  }

  /** A call went through: ends the outage, if there was one. Cheap on the hot path. */
  ok(): void {
    if (this.since === undefined) return;
    this.logger.info({ refused: this.refused, outageMs: Date.now() - this.since }, `${this.what} available again`);
    this.since = undefined;
    this.refused = 0;
  }
}
