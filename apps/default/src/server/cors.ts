import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { cors } from "@connectrpc/connect";
import { REQUEST_ID_HEADER } from "./access-log.js";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;
type Handler = (req: Req, res: Res) => void;

/** Headers a browser may send besides Connect's and gRPC-Web's own. */
const EXTRA_ALLOWED = ["Authorization", "X-Request-Id", "traceparent", "tracestate"];
/** How long a browser may cache a preflight answer (seconds). */
const MAX_AGE = 7200;

/**
 * CORS for browsers on other origins (CORS_ALLOWED_ORIGINS): Connect and gRPC-Web calls from an
 * allowed origin get the headers they need (the lists of methods and headers are connect-es's own
 * `cors` constants), preflights are answered here, and other origins get no CORS headers (the
 * browser then refuses to hand the answer to the page). `*` allows every origin: tokens travel in
 * the Authorization header, never in cookies, so no credentials are allowed.
 */
export function withCors(handler: Handler, allowed: readonly string[]): Handler {
  const any = allowed.includes("*");
  const origins = new Set(allowed);
  const allowHeaders = [...cors.allowedHeaders, ...EXTRA_ALLOWED].join(", ");
  const exposeHeaders = [...cors.exposedHeaders, REQUEST_ID_HEADER].join(", ");
  const allowMethods = cors.allowedMethods.join(", ");
  return (req, res) => {
    const origin = req.headers.origin;
    if (typeof origin !== "string" || !(any || origins.has(origin))) return handler(req, res);
    const r = res as ServerResponse;
    r.setHeader("Access-Control-Allow-Origin", any ? "*" : origin);
    if (!any) r.setHeader("Vary", "Origin");
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
      r.writeHead(204, {
        "Access-Control-Allow-Methods": allowMethods,
        "Access-Control-Allow-Headers": allowHeaders,
        "Access-Control-Max-Age": String(MAX_AGE),
      });
      r.end();
      return;
    }
    r.setHeader("Access-Control-Expose-Headers", exposeHeaders);
    handler(req, res);
  };
}
