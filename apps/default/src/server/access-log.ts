import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type Logger, requestIdFrom, withRequestContext } from "@service-chat/core";
import { callerOf } from "./auth.js";
import { codeString } from "./errors.js";

export const REQUEST_ID_HEADER = "x-request-id";

/**
 * The outermost interceptor: gives each call its request id (the caller's `x-request-id` when
 * usable, else a new one), returned in the response headers (or the error's metadata) and present
 * on every log line and audit row the call causes; then writes one access-log line per unary call:
 * procedure, code, duration, caller profile (never the token). A stream (a device session) logs
 * its start here and its connection id on its own lines.
 */
export function accessLogInterceptor(logger: Logger): Interceptor {
  return (next) => (req) => {
    const requestId = requestIdFrom(req.header.get(REQUEST_ID_HEADER));
    return withRequestContext({ requestId }, async () => {
      const start = performance.now();
      const line = (code: Code | 0) => ({
        procedure: `${req.service.typeName}/${req.method.name}`,
        code: code === 0 ? "ok" : codeString(code),
        duration_ms: Math.round((performance.now() - start) * 100) / 100,
        profile_id: callerOf(req.contextValues)?.profileId ?? "",
      });
      try {
        const res = await next(req);
        res.header.set(REQUEST_ID_HEADER, requestId);
        if (req.stream) logger.info({ ...line(0), stream: true }, "stream started");
        else logger.info(line(0), "rpc");
        return res;
      } catch (err) {
        const e = ConnectError.from(err);
        e.metadata.set(REQUEST_ID_HEADER, requestId);
        logger.info(line(e.code ?? Code.Internal), "rpc");
        throw e;
      }
    });
  };
}
