import type http from "node:http";
import http2 from "node:http2";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { fromBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
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
  let uReq =
    "stream" in req
      ? h2Request(req, context)
      : universalRequestFromNodeRequest(req as http.IncomingMessage, res as http.ServerResponse, undefined, context);
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
        uRes.trailer.set("grpc-message", encodeURIComponent(notThe(name)));
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
  } else if (/^application\/grpc-web(\+proto)?$/.test(contentType) && uRes.body) {
    // gRPC-Web carries the same trailer as the body's last frame.
    const name = handler.method.input.name;
    const body = uRes.body;
    uRes.body = (async function* () {
      for await (const chunk of body) yield grpcWebTrailerFixed(chunk, name);
    })();
  }
  await universalResponseToNodeResponse(uRes, res as http.ServerResponse);
}

/** What an HTTP/2 stream closed without an error aborts its calls with (made once: an exception's stack costs). */
const STREAM_CLOSED = new DOMException("This operation was aborted", "AbortError");

/** HTTP/2 reset codes that end a call with an error, and its code (as connect-node maps them). */
const RESET_CODES = new Map<number, Code>([
  [http2.constants.NGHTTP2_PROTOCOL_ERROR, Code.Internal],
  [http2.constants.NGHTTP2_INTERNAL_ERROR, Code.Internal],
  [http2.constants.NGHTTP2_FLOW_CONTROL_ERROR, Code.Internal],
  [http2.constants.NGHTTP2_SETTINGS_TIMEOUT, Code.Internal],
  [http2.constants.NGHTTP2_FRAME_SIZE_ERROR, Code.Internal],
  [http2.constants.NGHTTP2_COMPRESSION_ERROR, Code.Internal],
  [http2.constants.NGHTTP2_CONNECT_ERROR, Code.Internal],
  [http2.constants.NGHTTP2_REFUSED_STREAM, Code.Unavailable],
  [http2.constants.NGHTTP2_CANCEL, Code.Canceled],
  [http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, Code.ResourceExhausted],
  [http2.constants.NGHTTP2_INADEQUATE_SECURITY, Code.PermissionDenied],
  [http2.constants.NGHTTP2_HTTP_1_1_REQUIRED, Code.PermissionDenied],
]);
const RESET_NAMES = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/** A plain authority (host or host:port): the request URL is then spelled without parsing one. */
const PLAIN_AUTHORITY = /^[a-z0-9.-]+(:\d{1,5})?$/;

/**
 * connect-node's universalRequestFromNodeRequest for an HTTP/2 request (h2c), doing less per call:
 * the same headers, method, URL, body and signal, but the body is an iterable made only when a
 * body is read through it (a unary body is read here, not through it), the URL is not parsed when
 * plain, and a stream that closed without an error aborts the signal with one shared reason
 * instead of a new exception each time. A reset stream aborts with the error connect-node gives.
 */
function h2Request(
  req: http2.Http2ServerRequest,
  context: ReturnType<typeof createContextValues>,
): UniversalServerRequest {
  const authority = req.authority;
  if (authority === undefined) {
    throw new ConnectError("unable to determine request authority from Node.js server request", Code.Internal);
  }
  const path = req.url ?? "";
  const url =
    PLAIN_AUTHORITY.test(authority) && /^\/[\w.\-/]*$/.test(path)
      ? `http://${authority}${path}`
      : new URL(path, `http://${authority}`).toString();
  const controller = new AbortController();
  req.once("close", () => {
    const rst = req.stream.rstCode;
    const code = rst === undefined ? undefined : RESET_CODES.get(rst);
    controller.abort(
      code === undefined
        ? STREAM_CLOSED
        : new ConnectError(
            `http/2 stream closed with error code ${RESET_NAMES[rst as number]} (0x${(rst as number).toString(16)})`,
            code,
          ),
    );
  });
  return {
    httpVersion: req.httpVersion,
    method: req.method ?? "",
    url,
    header: webHeaders(req.headers),
    body: { [Symbol.asyncIterator]: () => chunksOf(req) },
    signal: controller.signal,
    contextValues: context,
  };
}

async function* chunksOf(req: NodeRequest): AsyncGenerator<Uint8Array> {
  for await (const chunk of req as AsyncIterable<Uint8Array>) yield chunk;
}

/** Node's request headers as fetch Headers, HTTP/2 pseudo-headers left out (as connect-node does). */
function webHeaders(headers: http2.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const k in headers) {
    if (k.charCodeAt(0) === 58 /* ":" */) continue;
    const v = headers[k];
    if (v === undefined) continue;
    if (typeof v === "string") out.append(k, v);
    else if (typeof v === "number") out.append(k, String(v));
    else for (const e of v) out.append(k, e);
  }
  return out;
}

const notThe = (name: string) => `request: is not a binary ${name} message`;

/**
 * A gRPC-Web trailer frame (flag 0x80, "name: value" lines) saying `internal` because the request
 * did not parse, as `invalid_argument` naming the message expected; any other chunk as it is.
 */
function grpcWebTrailerFixed(chunk: Uint8Array, name: string): Uint8Array {
  if (chunk.length < 5 || (chunk[0] as number) !== 0x80) return chunk;
  const view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (view.readUInt32BE(1) !== chunk.length - 5) return chunk;
  const text = view.subarray(5).toString();
  const status = /^grpc-status: ?(\d+)\r?$/m.exec(text)?.[1];
  const message = decodeURIComponent(/^grpc-message: ?(.*?)\r?$/m.exec(text)?.[1] ?? "");
  if (status !== "13" || !message.startsWith("parse binary")) return chunk;
  const fixed = Buffer.from(
    `grpc-status: ${Code.InvalidArgument}\r\ngrpc-message: ${encodeURIComponent(notThe(name))}\r\n`,
  );
  const header = Buffer.alloc(5);
  header[0] = 0x80;
  header.writeUInt32BE(fixed.length, 1);
  return Buffer.concat([header, fixed]);
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
  const raw = await readAll(req, max);
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

/**
 * The whole body, read with the stream's own events: an async iterator over the request costs
 * more than the small body of a typical call. As with one, a body beyond `max` destroys the
 * request, and one that ends early (the client went away) is an error.
 */
function readAll(req: NodeRequest, max: number): Promise<Buffer> {
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (req.destroyed) {
    return Promise.reject(prematureClose());
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        done();
        req.destroy();
        reject(tooLarge(max));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onClose = () => {
      done();
      reject(prematureClose());
    };
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
    req.once("close", onClose);
  });
}

const prematureClose = () => Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" });

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
