import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
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
  // "chat.v1.ChatService/SendEvent", spelled once per method rather than once per call.
  const procedures = new Map<DescMethod, string>();
  const procedureOf = (method: DescMethod): string => {
    let name = procedures.get(method);
    if (name === undefined) {
      name = `${method.parent.typeName}/${method.name}`;
      procedures.set(method, name);
    }
    return name;
  };
  const line = (req: UnaryRequest | StreamRequest, code: Code | 0, start: number) => ({
    procedure: procedureOf(req.method),
    code: code === 0 ? "ok" : codeString(code),
    duration_ms: Math.round((performance.now() - start) * 100) / 100,
    profile_id: callerOf(req.contextValues)?.profileId ?? "",
  });
  return (next) => (req) => {
    const requestId = requestIdFrom(req.header.get(REQUEST_ID_HEADER));
    return withRequestContext({ requestId }, async () => {
      const start = performance.now();
      try {
        const res = await next(req);
        res.header.set(REQUEST_ID_HEADER, requestId);
        // The line is built only when it is written (LOG_LEVEL info or lower).
        if (logger.isLevelEnabled("info")) {
          if (req.stream) logger.info({ ...line(req, 0, start), stream: true }, "stream started");
          else logger.info(line(req, 0, start), "rpc");
        }
        return res;
      } catch (err) {
        const e = ConnectError.from(err);
        e.metadata.set(REQUEST_ID_HEADER, requestId);
        if (logger.isLevelEnabled("info")) logger.info(line(req, e.code ?? Code.Internal, start), "rpc");
        throw e;
      }
    });
  };
}
