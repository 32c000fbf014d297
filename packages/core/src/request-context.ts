import { AsyncLocalStorage } from "node:async_hooks";
import { pooledRandomBytes } from "./ids.js";

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

/** The caller's `x-request-id` when it is 1–128 plain characters, else a new random one. */
export function requestIdFrom(header: string | null | undefined): string {
  if (header && USABLE_ID.test(header)) return header;
  return pooledRandomBytes(12).toString("base64url");
}
