import type { IncomingMessage } from "node:http";
import { hostname } from "node:os";
import type { Duplex } from "node:stream";
import type { ConnectRouter } from "@connectrpc/connect";
import { GatewayService } from "@service-chat/api";
import {
  type Authenticator,
  aborted,
  type ConnectionInfo,
  type ConnectionRegistry,
  type LiveBus,
  type Logger,
  type Meter,
  newId,
  OutageLog,
  type Service,
  sleep,
} from "@service-chat/core";
import { DISCONNECT } from "@service-chat/protocol";
import { type GatewaySettings, type Limits, limitsOf } from "./config.js";
import { LiveHub } from "./hub.js";
import { GatewayMetrics } from "./metrics.js";
import type { OpenChatPort } from "./session/chat-port.js";
import { DeviceSession, type SessionDeps, tickInterval } from "./session/device-session.js";
import { refresh } from "./session/handshake.js";
import type { Sink } from "./session/writer.js";
import { connectStream } from "./stream.js";
import { webSocketEndpoint } from "./ws.js";

export interface GatewayOptions {
  auth: Authenticator;
  /** How a session reaches ChatService for its device (session/chat-port.ts). */
  openPort: OpenChatPort;
  live: LiveBus;
  registry: ConnectionRegistry;
  /** The gateway's settings (apps/gateway/src/config.ts). */
  settings: GatewaySettings;
  logger: Logger;
  /** Where the gateway's metrics go (connections held, refused); none: not reported. */
  meter?: Meter;
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
  private readonly limits: Limits;
  readonly gatewayId: string;
  private accepting = true;
  private readonly metrics?: GatewayMetrics;

  constructor(private readonly o: GatewayOptions) {
    this.limits = limitsOf(o.settings);
    this.gatewayId = o.settings.GATEWAY_ID ?? `${hostname()}-${newId().slice(-12)}`;
    this.hub = new LiveHub(o.live, this.gatewayId, o.logger);
    this.deps = {
      auth: o.auth,
      openPort: o.openPort,
      hub: this.hub,
      registry: o.registry,
      gatewayId: this.gatewayId,
      limits: this.limits,
      logger: o.logger,
      outage: new OutageLog(o.logger, "chat service"),
      onEnd: (s) => this.sessions.delete(s),
    };
    if (o.meter) this.metrics = new GatewayMetrics(o.meter, () => this.sessions.size, this.limits.maxConnections);
    this.ws = webSocketEndpoint({
      maxFrameBytes: o.settings.MAX_FRAME_BYTES,
      createSession: (sink, token) => this.open(sink, token),
    });
  }

  /** GatewayService on the RPC router. */
  routes(router: ConnectRouter): void {
    router.service(GatewayService, {
      connect: (requests, ctx) => connectStream(requests, ctx, (sink, token) => this.open(sink, token)),
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
    // One clock for every session instead of timers per connection; the heartbeats of a tick are
    // refreshed in the registry together, in one round trip.
    const ticker = setInterval(() => {
      const now = Date.now();
      const due: ConnectionInfo[] = [];
      for (const s of this.sessions) s.tick(now, due);
      if (due.length > 0) {
        void refresh(this.deps, due).catch((err: unknown) => this.o.logger.warn({ err }, "registry refresh failed"));
      }
    }, tickInterval(this.limits));
    try {
      await this.serve(signal);
    } finally {
      clearInterval(ticker);
    }
  }

  private async serve(signal: AbortSignal): Promise<void> {
    await this.hub.start();
    this.o.logger.info({ gatewayId: this.gatewayId }, "gateway ready");
    await aborted(signal);
    this.accepting = false;
    for (const s of this.sessions) s.close(DISCONNECT.shutdown);
    const deadline = Date.now() + this.o.settings.SHUTDOWN_GRACE_SEC * 1000;
    while (this.sessions.size > 0 && Date.now() < deadline) await sleep(50);
    await this.ws.close();
    await this.hub.stop();
  }

  /** Device connections held now (WebSocket and HTTP/2, those still waiting for their hello included). */
  get connections(): number {
    return this.sessions.size;
  }

  /**
   * A new device connection. One beyond MAX_CONNECTIONS is refused at once, before its hello (no
   * token check, no registry, no Sync), with `full` and how long to wait: the devices already here
   * go on as before instead of everyone slowing down.
   */
  private open(sink: Sink, headerToken?: string): DeviceSession {
    const session = new DeviceSession(this.deps, sink, headerToken);
    if (!this.accepting) {
      this.metrics?.refused("shutdown");
      session.close(DISCONNECT.shutdown);
    } else if (this.sessions.size >= this.limits.maxConnections) {
      this.metrics?.refused("full");
      session.close(
        DISCONNECT.full,
        `retry after ${this.limits.fullRetryAfterMs / 1000} s`,
        this.limits.fullRetryAfterMs,
      );
    } else this.sessions.add(session);
    return session;
  }
}
