import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import {
  type AckEvent,
  type ChatService,
  type ClientFrame,
  type Hello,
  type RoomCursor,
  type ServerFrame,
  ServerFrameSchema,
} from "@service-chat/api";
import {
  AppError,
  type Authenticator,
  type ConnectionRegistry,
  type Identity,
  type Logger,
  RoomSequencer,
} from "@service-chat/core";
import type { HubMember, LiveHub } from "./hub.js";
import { codeName, DISCONNECT, type Disconnect } from "./protocol.js";

export interface Limits {
  heartbeatMs: number;
  /** A device silent this long is disconnected. */
  timeoutMs: number;
  maxConnectionsPerDevice: number;
  /** Client frames per second (token bucket); beyond, frames get `error` resource_exhausted. */
  eventsPerSecond: number;
  /** Frames waiting to be written to one device before it counts as slow. */
  sendQueueMax: number;
  /** How long a new connection has to send its hello. */
  helloTimeoutMs: number;
}

export interface SessionDeps {
  auth: Authenticator;
  /** ChatService; every call carries the device's own token. */
  chat: Client<typeof ChatService>;
  hub: LiveHub;
  registry: ConnectionRegistry;
  gatewayId: string;
  limits: Limits;
  logger: Logger;
  /** Called once the session has ended. */
  onEnd(session: DeviceSession): void;
}

/**
 * How often the gateway calls `tick` on every session: often enough for the shortest of its
 * deadlines, at most once a second (hello, heartbeat, silence and token expiry are all checked
 * there, so a session holds no timer of its own).
 */
export const tickInterval = (l: Limits) => Math.max(10, Math.min(1000, l.heartbeatMs / 4, l.helloTimeoutMs / 4));

/** The transport side of a session (WebSocket or an HTTP/2 stream). */
export interface Outlet {
  /** Queues a frame (`bytes` is its binary form when already known); answers the queue depth. */
  send(frame: ServerFrame, bytes?: Uint8Array): number;
  /** Ends the transport after the frames queued so far. */
  close(reason: Disconnect): void;
}

type State = "hello" | "replaying" | "live" | "closed";
const SYNC_PAGE = 500;
/** Live frames held while a session replays or fills a gap, before it counts as slow. */
const MAX_HELD = 10_000;

/**
 * One device connection, whatever carries it: hello and authentication, replay of what the device
 * missed (Sync), then live delivery in seq order per room with no gap and no duplicate (a gap is
 * filled from the database before anything after it is shown), the device's own frames forwarded
 * to ChatService, heartbeats, limits and the documented disconnects.
 */
export class DeviceSession implements HubMember {
  readonly connectionId = randomUUID();
  profileId = "";
  private state: State = "hello";
  private identity?: Identity;
  private token = "";
  private deviceId = "";
  private readonly order = new RoomSequencer();
  private held: { frame: ServerFrame; bytes: Uint8Array }[] = [];
  private catchingUp = false;
  private lastHeard = Date.now();
  private readonly connectedAt = Date.now();
  /** When the next heartbeat is due; 0 until the session is welcomed. */
  private nextBeat = 0;
  private bucket: number;
  private bucketAt = Date.now();
  private handling: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: SessionDeps,
    private readonly outlet: Outlet,
    /** A bearer token from the transport's headers, if it had one. */
    private readonly headerToken?: string,
  ) {
    this.bucket = deps.limits.eventsPerSecond;
  }

  /** The session's clock, called every `tickInterval`: deadlines and heartbeats. */
  tick(now: number): void {
    const { limits } = this.deps;
    if (this.state === "closed") return;
    if (this.state === "hello") {
      if (now - this.connectedAt >= limits.helloTimeoutMs) this.close(DISCONNECT.badFrame, "no hello in time");
      return;
    }
    const expiresAt = this.identity?.expiresAt;
    if (expiresAt !== undefined && now >= expiresAt) this.close(DISCONNECT.authExpired);
    else if (now - this.lastHeard > limits.timeoutMs) this.close(DISCONNECT.timeout);
    else if (this.nextBeat !== 0 && now >= this.nextBeat) {
      this.nextBeat = now + limits.heartbeatMs;
      void this.heartbeat();
    }
  }

  /**
   * A decoded frame from the device, as it arrives: liveness and the rate limit apply at once;
   * the frames themselves are handled one at a time, in order.
   */
  receive(frame: ClientFrame): void {
    if (this.state === "closed") return;
    this.lastHeard = Date.now();
    if (!this.takeToken()) {
      this.error(
        frame.requestId,
        "resource_exhausted",
        `more than ${this.deps.limits.eventsPerSecond} frames per second`,
      );
      if (this.bucket < -5 * this.deps.limits.eventsPerSecond) this.close(DISCONNECT.rateLimited);
      return;
    }
    this.handling = this.handling
      .then(() => this.handle(frame))
      .catch((err: unknown) => {
        this.deps.logger.error({ err }, "frame failed");
        this.close(DISCONNECT.internal);
      });
  }

  private async handle(frame: ClientFrame): Promise<void> {
    if (this.state === "closed") return;
    const f = frame.frame;
    if (this.state === "hello") {
      if (f.case !== "hello") return this.close(DISCONNECT.badFrame, "the first frame must be hello");
      return this.hello(f.value);
    }
    try {
      switch (f.case) {
        case "hello":
          return this.error(frame.requestId, "failed_precondition", "hello was already sent");
        case "ping":
          return this.push(
            create(ServerFrameSchema, {
              requestId: frame.requestId,
              frame: { case: "pong", value: { serverTime: timestampNow() } },
            }),
          );
        case "send": {
          const { ack } = await this.deps.chat.sendEvent({ event: [f.value] }, this.callOptions());
          return this.push(
            create(ServerFrameSchema, {
              requestId: frame.requestId,
              frame: { case: "ack", value: ack[0] as AckEvent },
            }),
          );
        }
        case "ack":
          await this.deps.chat.ackEvents({ acks: f.value.cursors, deviceId: this.deviceId }, this.callOptions());
          return;
        case "read":
          await this.deps.chat.markRead({ roomId: f.value.roomId, seq: f.value.seq }, this.callOptions());
          return;
        case "typing":
          await this.deps.chat.sendTyping({ roomId: f.value.roomId, active: f.value.active }, this.callOptions());
          return;
        case "presence":
          await this.deps.chat.setPresence({ state: f.value.state }, this.callOptions());
          return;
        default:
          return this.error(frame.requestId, "invalid_argument", "frame: empty or unknown frame kind");
      }
    } catch (err) {
      this.callFailed(frame.requestId, err);
    }
  }

  /** The transport could not decode a frame: the device hears why; the session goes on. */
  badFrame(reason: string): void {
    if (this.state === "hello") this.close(DISCONNECT.badFrame, reason);
    else this.error("", "invalid_argument", reason);
  }

  /** A frame from the user's live subject. */
  deliver(frame: ServerFrame, bytes: Uint8Array): void {
    if (this.state === "closed" || this.state === "hello") return;
    if (this.state === "replaying" || this.catchingUp) {
      this.hold(frame, bytes);
      return;
    }
    if (frame.frame.case !== "event") {
      this.push(frame, bytes);
      return;
    }
    const e = frame.frame.value;
    const verdict = this.order.offer(e.roomId, Number(e.seq));
    if (verdict === "deliver") this.push(frame, bytes);
    else if (verdict === "gap") {
      this.hold(frame, bytes);
      void this.catchUp();
    }
  }

  replaced(): void {
    this.close(DISCONNECT.replaced);
  }

  /** The transport closed (the device went away). */
  end(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.cleanup();
  }

  /** Sends the disconnect frame, then closes the transport. */
  close(reason: Disconnect, detail?: string): void {
    if (this.state === "closed") return;
    this.outlet.send(
      create(ServerFrameSchema, {
        frame: {
          case: "disconnect",
          value: {
            code: reason.code,
            reason: detail ? `${reason.reason}: ${detail}` : reason.reason,
            reconnect: reason.reconnect,
          },
        },
      }),
    );
    this.state = "closed";
    this.outlet.close(reason);
    this.cleanup();
  }

  private async hello(h: Hello): Promise<void> {
    this.state = "replaying"; // no second hello while this one is checked
    const token = this.headerToken || h.token;
    if (!token)
      return this.close(DISCONNECT.authFailed, "no token: send it in the Authorization header or in hello.token");
    try {
      this.identity = await this.deps.auth.verify(token);
    } catch (err) {
      return this.close(DISCONNECT.authFailed, err instanceof AppError ? err.message : "token not accepted");
    }
    this.token = token;
    this.profileId = this.identity.profileId;
    this.deviceId = this.identity.deviceId || h.deviceId;
    if (!this.deviceId || this.deviceId.length > 128 || /\s/.test(this.deviceId)) {
      return this.close(
        DISCONNECT.badFrame,
        "hello.device_id: needed (1-128 characters, no spaces) when the token has none",
      );
    }
    if (this.identity.expiresAt !== undefined && this.identity.expiresAt <= Date.now()) {
      return this.close(DISCONNECT.authExpired);
    }
    try {
      await this.register();
      await this.deps.hub.add(this);
      if ((this.state as State) === "closed") return;
      this.push(
        create(ServerFrameSchema, {
          frame: {
            case: "welcome",
            value: {
              sessionId: this.connectionId,
              heartbeatIntervalSec: Math.round(this.deps.limits.heartbeatMs / 1000),
              serverTime: timestampNow(),
            },
          },
        }),
      );
      this.nextBeat = Date.now() + this.deps.limits.heartbeatMs;
      await this.replay(h.cursors);
    } catch (err) {
      this.deps.logger.error({ err }, "session start failed");
      this.close(
        err instanceof ConnectError && err.code === Code.Unauthenticated ? DISCONNECT.authFailed : DISCONNECT.internal,
      );
    }
  }

  /** Registers the connection, and closes this device's oldest ones beyond the limit, wherever they are. */
  private async register(): Promise<void> {
    const { registry, limits, gatewayId } = this.deps;
    const now = Date.now();
    const count = await registry.register(
      {
        connectionId: this.connectionId,
        profileId: this.profileId,
        deviceId: this.deviceId,
        gatewayId,
        connectedAt: this.connectedAt,
        lastHeartbeat: now,
      },
      limits.heartbeatMs * 3,
    );
    if (count <= limits.maxConnectionsPerDevice) return;
    const mine = await registry.deviceConnections(this.profileId, this.deviceId);
    const excess = mine.length - limits.maxConnectionsPerDevice;
    for (const old of mine.slice(0, Math.max(0, excess))) {
      if (old.connectionId !== this.connectionId) this.deps.hub.replace(old.connectionId, old.gatewayId);
    }
  }

  /** Replays what the device missed, then goes live with what arrived meanwhile. */
  private async replay(cursors: RoomCursor[]): Promise<void> {
    for (const c of cursors) this.order.set(c.roomId, Number(c.seq));
    await this.sync(cursors);
    if (this.state === "closed") return;
    this.push(create(ServerFrameSchema, { frame: { case: "synced", value: {} } }));
    this.state = "live";
    this.release();
  }

  /** A gap in a room: fetch what is missing before showing anything after it. */
  private async catchUp(): Promise<void> {
    if (this.catchingUp || this.state !== "live") return;
    this.catchingUp = true;
    try {
      await this.sync([...this.order.entries()].map(([roomId, seq]) => ({ roomId, seq: BigInt(seq) }) as RoomCursor));
    } catch (err) {
      this.deps.logger.warn({ err }, "gap fill failed");
      this.close(DISCONNECT.internal, "could not fetch missed events");
    } finally {
      this.catchingUp = false;
    }
    if (this.state === "live") this.release();
  }

  /** Sync pages until nothing is missing; events pass the per-room order check. */
  private async sync(cursors: RoomCursor[]): Promise<void> {
    let position = cursors;
    for (;;) {
      const page = await this.deps.chat.sync(
        { cursors: position, limit: SYNC_PAGE, deviceId: this.deviceId },
        this.callOptions(),
      );
      if (this.state === "closed") return;
      for (const r of page.resync) {
        this.order.set(r.roomId, Number(r.fromSeq) - 1);
        this.push(create(ServerFrameSchema, { frame: { case: "resync", value: r } }));
      }
      for (const e of page.events) {
        if (this.order.offer(e.roomId, Number(e.seq)) === "deliver") {
          this.push(create(ServerFrameSchema, { frame: { case: "event", value: e } }));
        }
      }
      for (const c of page.cursors) {
        if ((this.order.position(c.roomId) ?? -1) < Number(c.seq)) this.order.set(c.roomId, Number(c.seq));
      }
      if (!page.hasMore) return;
      position = page.cursors;
    }
  }

  private hold(frame: ServerFrame, bytes: Uint8Array): void {
    this.held.push({ frame, bytes });
    if (this.held.length > MAX_HELD) this.close(DISCONNECT.slow, "too much arrived while catching up");
  }

  /** Passes held live frames on, through the same order check. */
  private release(): void {
    const held = this.held;
    this.held = [];
    for (const { frame, bytes } of held) this.deliver(frame, bytes);
  }

  private push(frame: ServerFrame, bytes?: Uint8Array): void {
    if (this.state === "closed") return;
    if (this.outlet.send(frame, bytes) > this.deps.limits.sendQueueMax) this.close(DISCONNECT.slow);
  }

  private error(requestId: string, code: string, message: string): void {
    this.push(create(ServerFrameSchema, { requestId, frame: { case: "error", value: { code, message } } }));
  }

  private callFailed(requestId: string, err: unknown): void {
    if (err instanceof ConnectError) {
      if (err.code === Code.Unauthenticated) this.close(DISCONNECT.authExpired, err.rawMessage);
      else this.error(requestId, codeName(err.code), err.rawMessage);
      return;
    }
    this.deps.logger.error({ err }, "frame failed");
    this.error(requestId, "internal", "internal error");
  }

  private async heartbeat(): Promise<void> {
    this.push(create(ServerFrameSchema, { frame: { case: "pong", value: { serverTime: timestampNow() } } }));
    await this.deps.registry
      .register(
        {
          connectionId: this.connectionId,
          profileId: this.profileId,
          deviceId: this.deviceId,
          gatewayId: this.deps.gatewayId,
          connectedAt: this.connectedAt,
          lastHeartbeat: Date.now(),
        },
        this.deps.limits.heartbeatMs * 3,
      )
      .catch((err: unknown) => this.deps.logger.warn({ err }, "registry refresh failed"));
  }

  private takeToken(): boolean {
    const rate = this.deps.limits.eventsPerSecond;
    const now = Date.now();
    this.bucket = Math.min(rate, this.bucket + ((now - this.bucketAt) / 1000) * rate);
    this.bucketAt = now;
    this.bucket -= 1;
    return this.bucket >= 0;
  }

  private callOptions() {
    return { headers: { authorization: `Bearer ${this.token}` } };
  }

  private cleanup(): void {
    this.held = [];
    if (this.profileId) {
      this.deps.hub.remove(this);
      void this.deps.registry
        .remove({ connectionId: this.connectionId, profileId: this.profileId, deviceId: this.deviceId })
        .catch(() => {});
    }
    this.deps.onEnd(this);
  }
}
