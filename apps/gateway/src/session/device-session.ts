import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ClientFrame, Hello, RoomCursor, ServerFrame } from "@service-chat/api";
import { ServerFrameSchema } from "@service-chat/api";
import type { Authenticator, ConnectionInfo, ConnectionRegistry, Logger, OutageLog } from "@service-chat/core";
import { DISCONNECT, type Disconnect } from "@service-chat/protocol";
import type { Limits } from "../config.js";
import type { HubMember, LiveHub } from "../hub.js";
import type { SessionMetrics } from "../session-metrics.js";
import type { ChatPort, OpenChatPort } from "./chat-port.js";
import { connectionId } from "./connection-id.js";
import { Dispatcher, type DispatchTarget } from "./dispatch.js";
import { admit, type Device, register, welcome } from "./handshake.js";
import { type DeliveryTarget, OrderedDelivery, type SyncPage } from "./ordered-delivery.js";
import { pong } from "./pong.js";
import { FrameWriter, type Sink } from "./writer.js";

export interface SessionDeps {
  auth: Authenticator;
  /** The device's ChatService, opened once its hello is accepted. */
  openPort: OpenChatPort;
  hub: LiveHub;
  registry: ConnectionRegistry;
  gatewayId: string;
  limits: Limits;
  logger: Logger;
  /** Hellos refused because ChatService (or its database) is unavailable: one warning per outage. */
  outage: OutageLog;
  /** Called once the session has ended. */
  onEnd(session: DeviceSession): void;
  /** Frames, disconnects and replays counted for the metrics (absent without metrics). */
  counts?: SessionMetrics;
}

/**
 * How often the gateway calls `tick` on every session: often enough for the shortest of its
 * deadlines, at most once a second (hello, heartbeat, silence and token expiry are all checked
 * there, so a session holds no timer of its own).
 */
export const tickInterval = (l: Limits) => Math.max(10, Math.min(1000, l.heartbeatMs / 4, l.helloTimeoutMs / 4));

type State = DispatchTarget["state"];

/**
 * One device connection, whatever carries it. Its states: `hello` (waiting for the first frame)
 * → `replaying` (hello accepted, what the device missed is on its way) → `live` → `closed`. The
 * parts: the handshake (hello, token, device id, registration, welcome), the ordered delivery
 * (replay, then live frames in seq order per room), the dispatch of the device's own frames to
 * its ChatService port, and the writer (one per connection, bounded in bytes). The session itself
 * keeps the clock (hello timeout, heartbeats, silence, token expiry) and the ending.
 */
export class DeviceSession implements HubMember, DispatchTarget, DeliveryTarget {
  readonly connectionId = connectionId();
  profileId = "";
  state: State = "hello";
  port: ChatPort | undefined;
  private device?: Device;
  private readonly writer: FrameWriter;
  private readonly dispatcher: Dispatcher;
  private readonly delivery: OrderedDelivery;
  private readonly connectedAt = Date.now();
  /**
   * When the next heartbeat is due, in ms after `connectedAt` (a small whole number, kept in the
   * object rather than as a 16-byte number of its own); 0 until the session is welcomed.
   */
  private nextBeat = 0;
  /** The device pinged since the last heartbeat: its pong was the heartbeat's. */
  private answered = false;

  constructor(
    private readonly deps: SessionDeps,
    sink: Sink,
    /** A bearer token from the transport's headers, if it had one. */
    private readonly headerToken?: string,
  ) {
    this.writer = new FrameWriter(sink, deps.limits.sendQueueMaxBytes);
    this.dispatcher = new Dispatcher(this, deps.limits, deps.logger);
    this.delivery = new OrderedDelivery(this, deps.limits, deps.logger);
  }

  /**
   * The session's clock, called every `tickInterval`: deadlines and heartbeats. A heartbeat sends
   * `pong` and adds the connection to `due`, which the gateway refreshes in the registry for all
   * sessions of the tick at once.
   */
  tick(now: number, due?: ConnectionInfo[]): void {
    const { limits } = this.deps;
    if (this.state === "closed") return;
    if (this.state === "hello") {
      if (now - this.connectedAt >= limits.helloTimeoutMs) this.close(DISCONNECT.badFrame, "no hello in time");
      return;
    }
    const expiresAt = this.device?.identity.expiresAt;
    if (expiresAt !== undefined && now >= expiresAt) this.close(DISCONNECT.authExpired);
    else if (now - this.dispatcher.heardAt > limits.timeoutMs) this.close(DISCONNECT.timeout);
    else if (this.nextBeat !== 0 && now >= this.connectedAt + this.nextBeat) {
      this.nextBeat = now + limits.heartbeatMs - this.connectedAt;
      if (!this.answered) {
        const beat = pong(now);
        this.emit(beat.frame, beat.bytes);
      }
      this.answered = false;
      due?.push(this.connection(now));
    }
  }

  /** A decoded frame from the device, as it arrives. */
  receive(frame: ClientFrame): void {
    if (this.state === "closed") return;
    this.deps.counts?.frameReceived(frame.frame.case);
    this.dispatcher.receive(frame);
  }

  /** A ping was answered: the device heard from the server, no heartbeat pong is needed this time. */
  pinged(): void {
    this.answered = true;
  }

  /** The transport could not decode a frame. */
  badFrame(reason: string): void {
    if (this.state !== "closed") this.dispatcher.badFrame(reason);
  }

  /** A frame from the live hub for this user. */
  deliver(frame: ServerFrame, bytes: Uint8Array): void {
    if (this.state !== "closed" && this.state !== "hello") this.delivery.offer(frame, bytes);
  }

  replaced(): void {
    this.close(DISCONNECT.replaced);
  }

  /** The transport closed (the device went away). */
  end(): void {
    if (this.state === "closed") return;
    this.deps.counts?.disconnected(0);
    this.state = "closed";
    this.cleanup();
  }

  /** Sends the disconnect frame (with how long to wait before reconnecting, if said), then closes the transport. */
  close(reason: Disconnect, detail?: string, retryAfterMs = 0): void {
    if (this.state === "closed") return;
    this.deps.counts?.disconnected(reason.code);
    this.writer.write(
      create(ServerFrameSchema, {
        frame: {
          case: "disconnect",
          value: {
            code: reason.code,
            reason: detail ? `${reason.reason}: ${detail}` : reason.reason,
            reconnect: reason.reconnect,
            retryAfterMs,
          },
        },
      }),
    );
    this.state = "closed";
    this.writer.end(reason);
    this.cleanup();
  }

  /** Writes a frame to the device; one that has fallen too far behind is closed as slow. */
  emit(frame: ServerFrame, bytes?: Uint8Array): void {
    if (this.state === "closed") return;
    this.deps.counts?.frameSent(frame.frame.case);
    if (!this.writer.write(frame, bytes)) this.close(DISCONNECT.slow);
  }

  /** Bytes written to the device and not yet sent (for the metrics). */
  get queuedBytes(): number {
    return this.writer.queuedBytes;
  }

  /** One Sync page for the ordered delivery, through the device's port. */
  sync(cursors: RoomCursor[], limit: number): Promise<SyncPage> {
    if (!this.port) return Promise.reject(new Error("no port before the hello is accepted"));
    return this.port.sync(cursors, limit);
  }

  async hello(h: Hello): Promise<void> {
    this.state = "replaying"; // no second hello while this one is checked
    const admission = await admit(this.deps.auth, h, this.headerToken);
    if ("refused" in admission) return this.close(admission.refused, admission.detail);
    const device = admission.device;
    this.device = device;
    this.profileId = device.profileId;
    this.port = this.deps.openPort(device);
    const { hub, limits } = this.deps;
    try {
      // Live frames for the device are held from here on, so nothing between the replay and live
      // is missed. In the hub before the registry: a newer connection that sees this one in the
      // registry can then always replace it, whichever gateway it is on. The registry write (one
      // round trip) goes on while the replay is read.
      await hub.add(this);
      if ((this.state as State) === "closed") return;
      this.emit(welcome(this.connectionId, limits.heartbeatMs));
      this.nextBeat = Date.now() + limits.heartbeatMs - this.connectedAt;
      const [kept, replayed] = await Promise.all([
        register(this.deps, this.connection(Date.now())),
        this.delivery.replay(h.cursors),
      ]);
      if (!kept) return this.close(DISCONNECT.replaced);
      this.deps.counts?.replayed(replayed);
      if ((this.state as State) === "replaying") this.state = "live";
      this.deps.outage.ok();
    } catch (err) {
      this.refuseHello(err);
    }
  }

  /**
   * A hello that could not be served: a bad cursor is the device's fault (4001, it must not
   * reconnect with it); an unavailable service is a 4009 (reconnect with backoff), logged once
   * per outage; anything else a 4009 logged with its cause.
   */
  private refuseHello(err: unknown): void {
    const code = err instanceof ConnectError ? err.code : undefined;
    if (code === Code.Unauthenticated) {
      this.close(DISCONNECT.authFailed);
    } else if (code === Code.InvalidArgument) {
      this.close(DISCONNECT.badFrame, `hello.${(err as ConnectError).rawMessage}`);
    } else if (code === Code.Unavailable) {
      this.deps.outage.failed(err);
      this.close(DISCONNECT.internal, "service unavailable; reconnect later");
    } else {
      this.deps.logger.error({ err, connection_id: this.connectionId }, "session start failed");
      this.close(DISCONNECT.internal);
    }
  }

  private connection(lastHeartbeat: number): ConnectionInfo {
    const device = this.device as Device;
    return {
      connectionId: this.connectionId,
      profileId: device.profileId,
      deviceId: device.deviceId,
      gatewayId: this.deps.gatewayId,
      connectedAt: this.connectedAt,
      lastHeartbeat,
    };
  }

  private cleanup(): void {
    this.delivery.stop();
    if (this.device) {
      this.deps.hub.remove(this);
      void this.deps.registry
        .remove({ connectionId: this.connectionId, profileId: this.device.profileId, deviceId: this.device.deviceId })
        .catch(() => {});
    }
    this.deps.onEnd(this);
  }
}
