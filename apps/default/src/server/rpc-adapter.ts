import type http from "node:http";
import type http2 from "node:http2";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { fromBinary } from "@bufbuild/protobuf";
import {
  Code,
  type ConnectRouter,
  createConnectRouter,
  createContextKey,
  createContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { AppError, type Identity, invalid, MAX_JSON_DEPTH, nestsDeeperThan } from "@service-chat/core";
import { CHECKED_AUTHORIZATION, isOpen } from "./auth.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface RpcAdapterOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  /** Largest request body, after decompression. */
  readMaxBytes: number;
  /** Checks a request's Authorization header before its body is read. */
  authorize: (header: string | undefined) => Promise<Identity>;
  /** Everything that is not an RPC. */
  fallback: (req: NodeRequest, res: NodeResponse) => void;
  onError: (err: unknown, procedure: string) => void;
}

/** A request refused before its body was parsed: the last interceptor throws it, so it is answered in the call's protocol. */
const REFUSED = createContextKey<AppError | undefined>(undefined, { description: "refused before parsing" });

const refusedInterceptor: Interceptor = (next) => async (req) => {
  const refused = req.contextValues.get(REFUSED);
  if (refused) throw refused;
  return next(req);
};

const gunzip = promisify(zlib.gunzip);
const brotli = promisify(zlib.brotliDecompress);

/**
 * The RPC routes as a Node request handler (in place of connect-node's adapter, on the same
 * connect router), refusing cheaply what must never reach a parser:
 * - a call without a valid token is refused before its body is read (a stand-in empty message is
 *   parsed instead, so the refusal is answered in the call's own protocol by the auth interceptor);
 * - a unary Connect call's body is read here (at most `readMaxBytes`, decompressed here), and JSON
 *   nesting deeper than MAX_JSON_DEPTH, or binary that is not the method's message, is refused
 *   as `invalid_argument` before the RPC library parses it.
 * Streaming calls are read by the RPC library, frame by frame, as before.
 */
export function rpcAdapter(o: RpcAdapterOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({
    interceptors: [...o.interceptors, refusedInterceptor],
    readMaxBytes: o.readMaxBytes,
  });
  o.routes(router);
  const paths = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return (req, res) => {
    const handler = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (!handler) {
      o.fallback(req, res);
      return;
    }
    serve(o, handler, req, res).catch((err: unknown) => {
      // A client that went away mid-request is not the server's failure.
      if (!req.destroyed && !res.destroyed) o.onError(err, handler.method.name);
    });
  };
}

async function serve(o: RpcAdapterOptions, handler: UniversalHandler, req: NodeRequest, res: NodeResponse) {
  const context = createContextValues();
  let uReq = universalRequestFromNodeRequest(
    req as http.IncomingMessage,
    res as http.ServerResponse,
    undefined,
    context,
  );
  const contentType = String(req.headers["content-type"] ?? "").toLowerCase();
  let authorized = true;
  if (!isOpen(handler.service.typeName)) {
    const checked = o.authorize(req.headers.authorization);
    context.set(CHECKED_AUTHORIZATION, checked);
    authorized = await checked.then(
      () => true,
      () => false,
    );
  }
  if (!authorized) {
    uReq = standIn(uReq, contentType);
    discardBody(req, res);
  } else if (req.method === "POST" && /^application\/(json|proto)\b/.test(contentType)) {
    const body = await readUnaryBody(req, uReq, o.readMaxBytes).catch((err: unknown) => {
      if (err instanceof AppError) return err;
      throw err;
    });
    if (body instanceof AppError) {
      context.set(REFUSED, body);
      uReq = standIn(uReq, contentType);
      discardBody(req, res);
    } else {
      const refused = contentType.startsWith("application/json")
        ? nestsDeeperThan(body) && invalid("body", `nests deeper than ${MAX_JSON_DEPTH} levels`)
        : !decodes(handler, body) && invalid("body", `is not a binary ${handler.method.input.name} message`);
      if (refused) {
        context.set(REFUSED, refused);
        uReq = standIn(uReq, contentType);
      } else {
        uReq = { ...uReq, body: once(body) };
      }
    }
  }
  const uRes = await handler(uReq);
  if (/^application\/grpc(\+proto)?$/.test(contentType)) {
    // gRPC parses message by message inside the call: its parse failure ends up as the trailer's
    // status, `internal`. A request that is not the method's message is the client's error.
    const name = handler.method.input.name;
    const fix = () => {
      if (uRes.trailer === undefined) return;
      const message = decodeURIComponent(uRes.trailer.get("grpc-message") ?? "");
      if (uRes.trailer.get("grpc-status") === "13" && message.startsWith("parse binary")) {
        uRes.trailer.set("grpc-status", String(Code.InvalidArgument));
        uRes.trailer.set("grpc-message", encodeURIComponent(`request: is not a binary ${name} message`));
      }
    };
    fix();
    const body = uRes.body;
    if (body) {
      uRes.body = (async function* () {
        yield* body;
        fix();
      })();
    }
  }
  await universalResponseToNodeResponse(uRes, res as http.ServerResponse);
}

function decodes(handler: UniversalHandler, body: Uint8Array): boolean {
  try {
    fromBinary(handler.method.input, body);
    return true;
  } catch {
    return false;
  }
}

/** A unary body, decompressed, of at most `max` bytes; the request then says it is uncompressed. */
async function readUnaryBody(req: NodeRequest, uReq: UniversalServerRequest, max: number): Promise<Uint8Array> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > max) throw tooLarge(max);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw tooLarge(max);
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks);
  uReq.header.delete("content-length"); // read here: the body handed on may be the decompressed one
  const encoding = uReq.header.get("content-encoding");
  if (!encoding || encoding === "identity") return raw;
  uReq.header.delete("content-encoding");
  const options = { maxOutputLength: max };
  try {
    if (encoding === "gzip") return await gunzip(raw, options);
    if (encoding === "br") return await brotli(raw, options);
  } catch {
    throw invalid("body", `does not decompress with ${encoding} to at most ${max} bytes`);
  }
  throw invalid("body", `content-encoding ${encoding} is not supported (gzip, br)`);
}

const tooLarge = (max: number) => new AppError("resource_exhausted", `the request body is larger than ${max} bytes`);

/** An empty message in the call's format, parsed in place of a body that is not read. */
function standIn(uReq: UniversalServerRequest, contentType: string): UniversalServerRequest {
  const json = /json/.test(contentType);
  const message = json ? new TextEncoder().encode("{}") : new Uint8Array(0);
  const body = /^application\/(json|proto)\b/.test(contentType) ? message : envelope(message);
  uReq.header.delete("content-length");
  uReq.header.delete("content-encoding");
  uReq.header.delete("connect-content-encoding");
  uReq.header.delete("grpc-encoding");
  return { ...uReq, body: once(body) };
}

function envelope(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/** A body left unread is not kept: the connection closes once the answer is written. */
function discardBody(req: NodeRequest, res: NodeResponse): void {
  if ("stream" in req) {
    res.once("finish", () => req.stream.close());
    return;
  }
  (res as http.ServerResponse).shouldKeepAlive = false;
  res.once("finish", () => req.socket.destroySoon());
}
