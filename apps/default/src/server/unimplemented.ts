import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** `/package.Service/Method`: the path of an RPC. */
const PROCEDURE = /^\/[a-zA-Z_][\w.]*\.[A-Za-z_]\w*\/[A-Za-z_]\w*$/;

/**
 * Answers a call to a procedure this process does not serve (an unknown method, or a service of
 * a role it does not run) with `unimplemented`, in the caller's protocol: gRPC and gRPC-Web get
 * grpc-status 12 (a trailers-only response), Connect gets its error JSON (HTTP 404 for unary, an
 * end-of-stream message for streaming). Answers false for requests that are not RPCs.
 */
export function answerUnimplemented(req: Req, res: Res, path: string): boolean {
  if (!PROCEDURE.test(path)) return false;
  const type = String(req.headers["content-type"] ?? "");
  const isGet = req.method === "GET" && /[?&]connect=v1\b/.test(req.url ?? "");
  if (req.method !== "POST" && !isGet) return false;
  const message = `${path.slice(1)} is not served here`;
  const r = res as ServerResponse;
  if (type.startsWith("application/grpc")) {
    // gRPC and gRPC-Web: status in the headers of a response without a body.
    r.writeHead(200, { "content-type": type, "grpc-status": "12", "grpc-message": encodeURIComponent(message) });
    r.end();
    return true;
  }
  const error = { code: "unimplemented", message };
  if (type.startsWith("application/connect+")) {
    const json = Buffer.from(JSON.stringify({ error }));
    const envelope = Buffer.alloc(5 + json.length);
    envelope.writeUInt8(0b10, 0); // end of stream
    envelope.writeUInt32BE(json.length, 1);
    json.copy(envelope, 5);
    r.writeHead(200, { "content-type": "application/connect+json" });
    r.end(envelope);
    return true;
  }
  if (isGet || type.startsWith("application/json") || type.startsWith("application/proto")) {
    r.writeHead(404, { "content-type": "application/json" });
    r.end(JSON.stringify(error));
    return true;
  }
  return false;
}
