import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { aborted, type Identity, type Logger, type Meter, type Service } from "@service-chat/core";
import { withCors } from "./cors.js";
import { addReflection } from "./reflection.js";
import { rpcAdapter } from "./rpc-adapter.js";
import { rpcMetricsInterceptor } from "./rpc-metrics.js";

export interface RpcServerOptions {
  host: string;
  httpPort: number;
  grpcPort: number;
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  /** Checks a call's Authorization header, before its body is read. */
  authorize: (header: string | undefined) => Promise<Identity>;
  /** Interceptors ahead of the metrics one (request id and access log): they see everything. */
  outer?: Interceptor[];
  /** When given, every unary RPC served is timed (chat_rpc_server_duration_seconds), ahead of `interceptors`. */
  meter?: Meter;
  /** Everything that is not an RPC: health, readiness, dev token. */
  fallback: (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => void;
  /** Takes over HTTP/1.1 upgrades (WebSocket); answers false for paths it does not serve. */
  upgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  logger: Logger;
  /** Origins whose browsers may call (CORS); none: no CORS headers at all. */
  corsOrigins?: readonly string[];
}

export interface Ports {
  http: number;
  grpc: number;
}

/** Pending connections the kernel may queue: a reconnect storm arrives all at once (Node's default is 511). */
const LISTEN_BACKLOG = 4096;

/** Largest request body: 100 events of the largest kind fit. */
const READ_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Serves the routes on two ports: HTTP/1.1 (Connect JSON and binary, gRPC-Web, plain routes) and
 * h2c (gRPC, Connect over HTTP/2). A plaintext HTTP/2 port cannot also speak HTTP/1.1, hence two.
 */
export class RpcServer implements Service {
  readonly name = "rpc-server";
  private resolvePorts!: (p: Ports) => void;
  /** Resolves once both ports listen (useful with port 0). */
  readonly ports = new Promise<Ports>((resolve) => {
    this.resolvePorts = resolve;
  });

  private readonly interceptors: Interceptor[];

  constructor(private readonly options: RpcServerOptions) {
    this.interceptors = [
      ...(options.outer ?? []),
      ...(options.meter ? [rpcMetricsInterceptor(options.meter)] : []),
      ...options.interceptors,
    ];
  }

  async run(signal: AbortSignal): Promise<void> {
    const o = this.options;
    const adapter = rpcAdapter({
      routes: (router) => {
        o.routes(router);
        addReflection(router);
      },
      interceptors: this.interceptors,
      readMaxBytes: READ_MAX_BYTES,
      authorize: o.authorize,
      fallback: o.fallback,
      onError: (err, procedure) => o.logger.error({ err, procedure }, "rpc handler failed"),
    });
    const handler = o.corsOrigins?.length ? withCors(adapter, o.corsOrigins) : adapter;
    const h1 = http.createServer(handler);
    h1.on("upgrade", (req, socket, head) => {
      if (!o.upgrade?.(req, socket, head)) socket.destroy();
    });
    const h2 = http2.createServer(handler);
    const sessions = new Set<http2.Http2Session>();
    h2.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });
    const listen = (server: http.Server | http2.Http2Server, port: number) =>
      new Promise<number>((resolve, reject) => {
        server.once("error", (err: NodeJS.ErrnoException) =>
          reject(
            err.code === "EADDRINUSE"
              ? new Error(
                  `port ${port} on ${o.host} is already in use (${port === o.httpPort ? "HTTP_PORT" : "GRPC_PORT"})`,
                )
              : err,
          ),
        );
        server.listen(port, o.host, LISTEN_BACKLOG, () => resolve((server.address() as AddressInfo).port));
      });
    const ports = { http: await listen(h1, o.httpPort), grpc: await listen(h2, o.grpcPort) };
    o.logger.info({ host: o.host, ...ports }, "listening");
    this.resolvePorts(ports);
    await aborted(signal);
    const close = (server: http.Server | http2.Http2Server) =>
      new Promise<void>((resolve) => server.close(() => resolve()));
    const closing = Promise.all([close(h1), close(h2)]);
    h1.closeIdleConnections();
    for (const session of sessions) session.close();
    // Give in-flight calls a moment, then drop what is left.
    const timer = setTimeout(() => {
      h1.closeAllConnections();
      for (const session of sessions) session.destroy();
    }, 5000);
    await closing;
    clearTimeout(timer);
  }
}
