import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { type ClientFrame, type Hello, type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import type { Logger } from "@service-chat/core";
import { DISCONNECT, type Disconnect } from "@service-chat/protocol";
import type { ChatPort } from "./chat-port.js";

/** What dispatch needs of its session. */
export interface DispatchTarget {
  readonly state: "hello" | "replaying" | "live" | "closed";
  /** The device's ChatService, from the moment its hello is accepted. */
  readonly port: ChatPort | undefined;
  /** The first frame; later frames wait until it is handled. */
  hello(hello: Hello): Promise<void>;
  emit(frame: ServerFrame): void;
  close(reason: Disconnect, detail?: string): void;
}

export interface DispatchLimits {
  /** Client frames per second (token bucket); beyond, frames get `error` resource_exhausted. */
  eventsPerSecond: number;
  /** Seconds' worth of frames beyond the rate before the device is disconnected (rate limited). */
  rateLimitGraceSec: number;
}

/**
 * The device's frames: the rate limit as they arrive, then one at a time and in order, each
 * turned into a call of the device's ChatService port and its answer (`send` → `ack`, `ping` →
 * `pong`, a refusal → `error` with the Connect code's name).
 */
export class Dispatcher {
  /** The rate limit, a token bucket: a second's worth at most saved up, negative once overdrawn. */
  private tokens: number;
  private tokensAt = Date.now();
  private handling: Promise<void> = Promise.resolve();

  constructor(
    private readonly session: DispatchTarget,
    private readonly limits: DispatchLimits,
    private readonly logger: Logger,
  ) {
    this.tokens = limits.eventsPerSecond;
  }

  receive(frame: ClientFrame): void {
    if (!this.takeToken()) {
      const rate = this.limits.eventsPerSecond;
      this.error(frame.requestId, "resource_exhausted", `more than ${rate} frames per second`);
      if (this.tokens < -this.limits.rateLimitGraceSec * rate) this.session.close(DISCONNECT.rateLimited);
      return;
    }
    this.handling = this.handling
      .then(() => this.handle(frame))
      .catch((err: unknown) => {
        this.logger.error({ err }, "frame failed");
        this.session.close(DISCONNECT.internal);
      });
  }

  /** The transport could not decode a frame: the device hears why; after the hello, the session goes on. */
  badFrame(reason: string): void {
    if (this.session.state === "hello") this.session.close(DISCONNECT.badFrame, reason);
    else this.error("", "invalid_argument", reason);
  }

  private takeToken(): boolean {
    const rate = this.limits.eventsPerSecond;
    const now = Date.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    this.tokens -= 1;
    return this.tokens >= 0;
  }

  private async handle(frame: ClientFrame): Promise<void> {
    const { session } = this;
    if (session.state === "closed") return;
    const f = frame.frame;
    if (session.state === "hello") {
      if (f.case !== "hello") return session.close(DISCONNECT.badFrame, "the first frame must be hello");
      return session.hello(f.value);
    }
    const port = session.port;
    if (!port) return this.error(frame.requestId, "failed_precondition", "the hello is still being handled");
    try {
      switch (f.case) {
        case "hello":
          return this.error(frame.requestId, "failed_precondition", "hello was already sent");
        case "ping":
          return this.answer(frame.requestId, { case: "pong", value: { serverTime: timestampNow() } });
        case "send":
          return this.answer(frame.requestId, { case: "ack", value: await port.send(f.value) });
        case "ack":
          return await port.ack(f.value.cursors);
        case "read":
          return await port.markRead(f.value.roomId, f.value.seq);
        case "typing":
          return await port.typing(f.value.roomId, f.value.active);
        case "presence":
          return await port.presence(f.value.state);
        default:
          return this.error(frame.requestId, "invalid_argument", "frame: empty or unknown frame kind");
      }
    } catch (err) {
      this.failed(frame.requestId, err);
    }
  }

  private answer(requestId: string, frame: MessageInitShape<typeof ServerFrameSchema>["frame"]): void {
    this.session.emit(create(ServerFrameSchema, { requestId, frame }));
  }

  private error(requestId: string, code: string, message: string): void {
    this.answer(requestId, { case: "error", value: { code, message } });
  }

  private failed(requestId: string, err: unknown): void {
    if (err instanceof ConnectError) {
      if (err.code === Code.Unauthenticated) this.session.close(DISCONNECT.authExpired, err.rawMessage);
      else this.error(requestId, codeToString(err.code), err.rawMessage);
      return;
    }
    this.logger.error({ err }, "frame failed");
    this.error(requestId, "internal", "internal error");
  }
}
