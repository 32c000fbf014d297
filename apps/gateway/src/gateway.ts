import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Client, ConnectRouter } from "@connectrpc/connect";
import { type ChatService, GatewayService } from "@service-chat/api";
import {
  type Authenticator,
  aborted,
  type ConnectionRegistry,
  type LiveBus,
  type Logger,
  type Service,
  sleep,
} from "@service-chat/core";
import { LiveHub } from "./hub.js";
import { DISCONNECT } from "./protocol.js";
import { DeviceSession, type Limits, type Outlet, type SessionDeps, tickInterval } from "./session.js";
import { connectStream } from "./stream.js";
import { webSocketEndpoint } from "./ws.js";

export interface GatewayOptions {
  auth: Authenticator;
  chat: Client<typeof ChatService>;
  live: LiveBus;
  registry: ConnectionRegistry;
  gatewayId: string;
  limits: Limits;
  maxFrameBytes: number;
  /** How long shutdown waits for devices to go after telling them to. */
  shutdownGraceMs: number;
  logger: Logger;
}

/**
 * The gateway: device streams over WebSocket (/ws on the HTTP/1.1 port) and HTTP/2
 * (GatewayService.Connect), each a DeviceSession. As a Service it runs until stopped, then tells
 * every device to reconnect elsewhere and waits (bounded) for them to go.
 */
export class Gateway implements Service {
  readonly name = "gateway";
  readonly hub: LiveHub;
  private readonly sessions = new Set<DeviceSession>();
  /** What every session needs, shared: a session holds no per-connection copy. */
  private readonly deps: SessionDeps;
  private readonly ws;
  private accepting = true;

  constructor(private readonly o: GatewayOptions) {
    this.hub = new LiveHub(o.live, o.gatewayId, o.logger);
    this.deps = {
      auth: o.auth,
      chat: o.chat,
      hub: this.hub,
      registry: o.registry,
      gatewayId: o.gatewayId,
      limits: o.limits,
      logger: o.logger,
      onEnd: (s) => this.sessions.delete(s),
    };
    this.ws = webSocketEndpoint({
      maxFrameBytes: o.maxFrameBytes,
      createSession: (outlet, token) => this.open(outlet, token),
    });
  }

  /** GatewayService on the RPC router. */
  routes(router: ConnectRouter): void {
    router.service(GatewayService, {
      connect: (requests, ctx) => connectStream(requests, ctx, (outlet, token) => this.open(outlet, token)),
    });
  }

  /** Takes over HTTP upgrades to /ws. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (!this.accepting) {
      socket.destroy();
      return true;
    }
    return this.ws.upgrade(req, socket, head);
  }

  async run(signal: AbortSignal): Promise<void> {
    // One clock for every session instead of timers per connection.
    const ticker = setInterval(() => {
      const now = Date.now();
      for (const s of this.sessions) s.tick(now);
    }, tickInterval(this.o.limits));
    try {
      await this.serve(signal);
    } finally {
      clearInterval(ticker);
    }
  }

  private async serve(signal: AbortSignal): Promise<void> {
    await this.hub.start();
    this.o.logger.info({ gatewayId: this.o.gatewayId }, "gateway ready");
    await aborted(signal);
    this.accepting = false;
    for (const s of this.sessions) s.close(DISCONNECT.shutdown);
    const deadline = Date.now() + this.o.shutdownGraceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await sleep(50);
    await this.ws.close();
    await this.hub.stop();
  }

  private open(outlet: Outlet, headerToken?: string): DeviceSession {
    const session = new DeviceSession(this.deps, outlet, headerToken);
    if (!this.accepting) session.close(DISCONNECT.shutdown);
    else this.sessions.add(session);
    return session;
  }
}
