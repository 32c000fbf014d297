import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { AppError, type DevSigner, isWellFormed, type Logger, type Metrics } from "@service-chat/core";
import type { ReadinessReport } from "./readiness.js";
import { staticFiles } from "./static.js";
import { answerUnimplemented } from "./unimplemented.js";
import type { devUploads } from "./uploads.js";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

export interface PlainRoutes {
  /** Whether the process can take traffic, dependency by dependency. */
  ready(): Promise<ReadinessReport>;
  /** Present only when the development signer is active. */
  devSigner?: DevSigner;
  logger: Logger;
  metrics?: Metrics;
  /** The built web chat served at `/` (default: apps/web/dist). */
  webRoot?: string;
  /** Where clients ask for an upload URL (published to the web chat at /web-config.json). */
  uploadEndpoint?: string;
  /** The local development store for attachments (`/dev/uploads`), when it is on. */
  devUploads?: ReturnType<typeof devUploads>;
}

const MAX_TOKEN_REQUEST = 4096;

/** What the HTTP ports serve besides RPCs: health, readiness, the development token endpoint and the web chat. */
export function plainRoutes(routes: PlainRoutes) {
  const web = staticFiles(routes.webRoot);
  return async (req: Req, res: Res): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0];
    try {
      if (path === "/healthz") return json(res, 200, { status: "ok" });
      if (path === "/metrics" && routes.metrics)
        return routes.metrics.handle(req as IncomingMessage, res as ServerResponse);
      if (path === "/readyz") {
        const { ready, checks } = await routes.ready();
        if (ready) return json(res, 200, { status: "ready", checks });
        const reason = Object.entries(checks)
          .filter(([, v]) => v !== "ok")
          .map(([k, v]) => `${k}: ${v}`)
          .join("; ");
        return json(res, 503, { status: "not ready", reason, checks });
      }
      if (path === "/dev/token" && !routes.devSigner) {
        return json(res, 404, {
          error: "development tokens are off here (OAUTH2_ISSUER is set): get a token from the issuer",
        });
      }
      if (path === "/dev/token" && routes.devSigner) {
        if (req.method !== "POST") return json(res, 405, { error: 'use POST with a JSON body like {"sub":"alice"}' });
        return json(res, 200, { token: await routes.devSigner.sign(parseTokenRequest(await readBody(req))) });
      }
      if (path === "/web-config.json") return json(res, 200, { uploadEndpoint: routes.uploadEndpoint ?? "" });
      if (routes.devUploads) {
        const body = () => readBody(req, 16 * 1024);
        if (await routes.devUploads(req as IncomingMessage, res as ServerResponse, path ?? "/", body)) return;
      }
      if (answerUnimplemented(req, res, path ?? "/")) return;
      if (await web(req, res, path ?? "/")) return;
      return json(res, 404, { error: `no route for ${path}` });
    } catch (err) {
      if (err instanceof AppError) return json(res, err.code === "unauthenticated" ? 401 : 400, { error: err.message });
      routes.logger.error({ err, path }, "internal error");
      return json(res, 500, { error: "internal error" });
    }
  };
}

function json(res: Res, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  (res as ServerResponse).writeHead(status, { "content-type": "application/json" });
  (res as ServerResponse).end(data);
}

async function readBody(req: Req, max = MAX_TOKEN_REQUEST): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new AppError("invalid_argument", "request body is too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parseTokenRequest(body: string) {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(body) as Record<string, unknown>;
  } catch {
    throw new AppError("invalid_argument", 'body must be JSON like {"sub":"alice"}');
  }
  const str = (k: string, required = false) => {
    const x = v?.[k];
    if (x === undefined && !required) return undefined;
    if (
      typeof x !== "string" ||
      x.length === 0 ||
      x.length > 128 ||
      /[\s\u0000-\u001F\u007F]/.test(x) ||
      !isWellFormed(x)
    ) {
      throw new AppError(
        "invalid_argument",
        `${k} must be a string of 1 to 128 characters without spaces or control characters`,
      );
    }
    return x;
  };
  const ttl = v?.ttl_s;
  if (ttl !== undefined && (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 60 || ttl > 30 * 86400)) {
    throw new AppError("invalid_argument", "ttl_s must be a whole number of seconds between 60 and 2592000");
  }
  const contact_id = str("contact_id");
  const device_id = str("device_id");
  return {
    sub: str("sub", true) as string,
    ...(contact_id ? { contact_id } : {}),
    ...(device_id ? { device_id } : {}),
    ...(ttl !== undefined ? { ttl_s: ttl as number } : {}),
  };
}
