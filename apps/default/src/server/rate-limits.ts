import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { SendEventRequest } from "@service-chat/api";
import { RateLimiter } from "@service-chat/core";
import { callerOf } from "./auth.js";

/** The API's per-caller limits (API_RATE_* in docs/configuration.md); 0 turns one off. */
export interface ApiRateSettings {
  API_RATE_SEND_EVENTS_PER_SEC: number;
  API_RATE_ROOMS_PER_MIN: number;
  API_RATE_MEMBERSHIP_PER_MIN: number;
}

interface Limit {
  limiter: RateLimiter;
  what: string;
  cost: (message: unknown) => number;
}

/** A caller may send ten seconds' worth of events at once. */
const SEND_BURST_SEC = 10;

/**
 * Per-caller limits on the calls that write: events sent (counted per event), rooms created, and
 * membership changes (counted per call). A call beyond its caller's limit is answered
 * `resource_exhausted`, its message and its `retry-after` header (seconds) saying when to retry;
 * nothing of it is done. Limits are per process: behind several Default Services a caller gets
 * each one's.
 */
export function apiRateLimits(s: ApiRateSettings): Interceptor {
  const byMethod = new Map<string, Limit>();
  const perMinute = (n: number, what: string, methods: string[]) => {
    if (n === 0) return;
    const limit = { limiter: new RateLimiter(n / 60, n), what: `${n} ${what} a minute`, cost: () => 1 };
    for (const m of methods) byMethod.set(m, limit);
  };
  if (s.API_RATE_SEND_EVENTS_PER_SEC > 0) {
    const n = s.API_RATE_SEND_EVENTS_PER_SEC;
    byMethod.set("SendEvent", {
      limiter: new RateLimiter(n, n * SEND_BURST_SEC),
      what: `${n} events a second`,
      cost: (m) => Math.max(1, (m as SendEventRequest).event.length),
    });
  }
  perMinute(s.API_RATE_ROOMS_PER_MIN, "rooms created", ["CreateRoom"]);
  perMinute(s.API_RATE_MEMBERSHIP_PER_MIN, "membership changes", [
    "AddRoomSubscriptions",
    "RemoveRoomSubscriptions",
    "UpdateSubscriptionRole",
  ]);
  return (next) => async (req) => {
    const limit = byMethod.get(req.method.name);
    const who = limit && callerOf(req.contextValues);
    if (limit && who && !req.stream) {
      const waitMs = limit.limiter.take(who.profileId, limit.cost(req.message));
      if (waitMs > 0) {
        const seconds = Math.ceil(waitMs / 1000);
        throw new ConnectError(`more than ${limit.what}; retry in ${seconds} s`, Code.ResourceExhausted, {
          "retry-after": String(seconds),
        });
      }
    }
    return next(req);
  };
}
