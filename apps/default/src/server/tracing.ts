import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { currentTraceParent, extract, requestContext, SpanKind, type Tracing } from "@service-chat/core";
import { REQUEST_ID_HEADER } from "./access-log.js";
import { codeString } from "./errors.js";

/**
 * With tracing on, every unary RPC served is a server span named after its procedure, a child of
 * the caller's `traceparent` header when it sends one, carrying the request id. Device streams are
 * not one span (a session lasts hours); what they send is traced as it reaches the Default Service.
 */
export function tracingInterceptor(tracing: Tracing): Interceptor {
  return (next) => (req) => {
    if (req.stream) return next(req);
    const attributes = {
      "rpc.system": "connect_rpc",
      "rpc.service": req.service.typeName,
      "rpc.method": req.method.name,
      "chat.request_id": requestContext()?.requestId ?? "",
    };
    const parent = extract(req.header.get("traceparent"), req.header.get("tracestate"));
    const name = `${req.service.typeName}/${req.method.name}`;
    return tracing.span(name, { kind: SpanKind.SERVER, parent, attributes }, async (span) => {
      try {
        return await next(req);
      } catch (err) {
        span.setAttribute(
          "rpc.connect_rpc.error_code",
          codeString(err instanceof ConnectError ? err.code : Code.Internal),
        );
        throw err;
      }
    });
  };
}

/**
 * For calls this process makes to a Default Service (a gateway-only process forwarding): the
 * request id of the call being served, and with tracing on the active span's `traceparent`.
 */
export function propagationInterceptor(tracing: Tracing | undefined): Interceptor {
  return (next) => (req) => {
    const requestId = requestContext()?.requestId;
    if (requestId && !req.header.has(REQUEST_ID_HEADER)) req.header.set(REQUEST_ID_HEADER, requestId);
    const trace = tracing ? currentTraceParent() : undefined;
    if (trace) req.header.set("traceparent", trace);
    return next(req);
  };
}
