import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";

/** What a request or a stream session carries through everything it causes. */
export interface RequestContext {
  /** `x-request-id` as the caller sent it (when usable), else a fresh one; returned to the caller. */
  readonly requestId: string;
  /** The device connection of a stream session. */
  readonly connectionId?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `work` with `context` visible to everything it calls (logs, audit rows, spans). */
export function withRequestContext<T>(context: RequestContext, work: () => T): T {
  return storage.run(context, work);
}

/** The context of the request being served, if any. */
export function requestContext(): RequestContext | undefined {
  return storage.getStore();
}

const USABLE_ID = /^[\w.:\-/+=]{1,128}$/;

// Random bytes are drawn 3 KiB at a time (256 ids) rather than per call: one call to the kernel's
// generator costs more than the rest of making an id (as in ids.ts).
const ID_BYTES = 12;
const POOL = ID_BYTES * 256;
let pool = randomBytes(POOL);
let offset = 0;

/** The caller's `x-request-id` when it is 1–128 plain characters, else a new random one. */
export function requestIdFrom(header: string | null | undefined): string {
  if (header && USABLE_ID.test(header)) return header;
  if (offset === POOL) {
    pool = randomBytes(POOL);
    offset = 0;
  }
  offset += ID_BYTES;
  return pool.toString("base64url", offset - ID_BYTES, offset);
}
