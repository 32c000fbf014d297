import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { type ClientFrame, type Hello, type RoomEvent, type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import type { Logger } from "@service-chat/core";
import { DISCONNECT, type Disconnect } from "@service-chat/protocol";
import type { ChatPort } from "./chat-port.js";
import { pong } from "./pong.js";

/** What dispatch needs of its session. */
export interface DispatchTarget {
  /** For the session's log lines. */
  readonly connectionId?: string;
  readonly state: "hello" | "replaying" | "live" | "closed";
  /** The device's ChatService, from the moment its hello is accepted. */
  readonly port: ChatPort | undefined;
  /** The first frame; later frames wait until it is handled. */
  hello(hello: Hello): Promise<void>;
  /** Writes a frame to the device (`bytes`: its binary form, when shared by many devices). */
  emit(frame: ServerFrame, bytes?: Uint8Array): void;
  /** A ping was answered (its pong stands for the next heartbeat's); absent: nothing to tell. */
  pinged?(): void;
  close(reason: Disconnect, detail?: string): void;
}

export interface DispatchLimits {
  /** Client frames per second (token bucket); beyond, frames get `error` resource_exhausted. */
  eventsPerSecond: number;
  /** Seconds' worth of frames beyond the rate before the device is disconnected (rate limited). */
  rateLimitGraceSec: number;
  /** `send` frames waiting for their ack; beyond, a send is refused with resource_exhausted. */
  maxPendingSends: number;
}

/** Where a device's chain of calls starts: one settled promise for every session. */
const IDLE: Promise<void> = Promise.resolve();

/** Events per call to the port: SendEvent's largest. */
const SEND_BATCH = 100;

interface PendingSend {
  requestId: string;
  event: RoomEvent;
}

/**
 * The device's frames: the rate limit as they arrive; the hello first (every later frame waits
 * for it); then each turned into a call of the device's ChatService port and its answer.
 *
 * Sends are pipelined: a device may have many `send` frames in flight. They go to the port in
 * arrival order, one call at a time per device: the sends that arrive while a call is out travel
 * together in the next (up to 100), so a device sending fast is stored in a few calls and the
 * group committer sees them together, while the device's own order — within a room and across
 * rooms — is the order of its frames. Acks come back in that order. Other frames (read markers,
 * cursors, typing, presence) do not wait for sends; they are handled one at a time among
 * themselves, in order (a typing stop never overtakes its start).
 */
export class Dispatcher {
  /**
   * The rate limit, a token bucket in thousandths of a frame (whole numbers, which V8 keeps in the
   * object instead of a 16-byte number of their own): a second's worth at most saved up,
   * negative once overdrawn.
   */
  private tokens: number;
  /** When the last frame arrived (the bucket's clock, and the session's silence timeout's). */
  heardAt = Date.now();
  /**
   * Settles once the hello was handled; undefined until it arrives, and the one settled `IDLE`
   * once handled (a session then keeps no promise of its own).
   */
  private ready: Promise<void> | undefined;
  /** Sends waiting for the port (made with the first). */
  private sends: PendingSend[] | undefined;
  /** Sends taken by the port call in flight. */
  private sending = 0;
  /** The other calls, one after another. */
  private calls: Promise<void> = IDLE;

  constructor(
    private readonly session: DispatchTarget,
    private readonly limits: DispatchLimits,
    private readonly logger: Logger,
  ) {
    this.tokens = limits.eventsPerSecond * 1000;
  }

  receive(frame: ClientFrame): void {
    if (!this.takeToken()) {
      const rate = this.limits.eventsPerSecond;
      this.error(frame.requestId, "resource_exhausted", `more than ${rate} frames per second`);
      if (this.tokens < -this.limits.rateLimitGraceSec * rate * 1000) this.session.close(DISCONNECT.rateLimited);
      return;
    }
    if (!this.ready) {
      const f = frame.frame;
      if (f.case !== "hello") {
        this.session.close(DISCONNECT.badFrame, "the first frame must be hello");
        return;
      }
      this.ready = this.session
        .hello(f.value)
        .catch((err: unknown) => {
          this.logger.error({ err, connection_id: this.session.connectionId }, "hello failed");
          this.session.close(DISCONNECT.internal);
        })
        .then(() => {
          // Frames that came meanwhile are chained on the promise being settled and still run
          // first: a later frame arrives in a later turn, after they have.
          this.ready = IDLE;
        });
      return;
    }
    // Callbacks of one promise run in the order they were added: frames start in arrival order.
    void this.ready.then(() => this.handle(frame));
  }

  /** The transport could not decode a frame: the device hears why; after the hello, the session goes on. */
  badFrame(reason: string): void {
    if (this.session.state === "hello") this.session.close(DISCONNECT.badFrame, reason);
    else this.error("", "invalid_argument", reason);
  }

  private takeToken(): boolean {
    const rate = this.limits.eventsPerSecond;
    const now = Date.now();
    // Milliseconds × frames per second: thousandths of a frame.
    this.tokens = Math.min(rate * 1000, this.tokens + (now - this.heardAt) * rate) - 1000;
    this.heardAt = now;
    return this.tokens >= 0;
  }

  private handle(frame: ClientFrame): void {
    if (this.session.state === "closed") return;
    const port = this.session.port;
    const id = frame.requestId;
    const f = frame.frame;
    if (!port) this.error(id, "failed_precondition", "the hello was not accepted");
    else if (f.case === "send") this.queueSend(port, id, f.value);
    else if (f.case === "ping") this.pong(id);
    else if (f.case === "ack") this.call(id, () => port.ack(f.value.cursors));
    else if (f.case === "read") this.call(id, () => port.markRead(f.value.roomId, f.value.seq));
    else if (f.case === "typing") this.call(id, () => port.typing(f.value.roomId, f.value.active));
    else if (f.case === "presence") this.call(id, () => port.presence(f.value.state));
    else if (f.case === "hello") this.error(id, "failed_precondition", "hello was already sent");
    else this.error(id, "invalid_argument", "frame: empty or unknown frame kind");
  }

  private queueSend(port: ChatPort, requestId: string, event: RoomEvent): void {
    this.sends ??= [];
    const sends = this.sends;
    if (sends.length + this.sending >= this.limits.maxPendingSends) {
      this.error(requestId, "resource_exhausted", `more than ${this.limits.maxPendingSends} sends waiting`);
      return;
    }
    sends.push({ requestId, event });
    if (this.sending === 0) void this.drainSends(port);
  }

  /** One port call at a time, each with every send that waited for it (at most SEND_BATCH). */
  private async drainSends(port: ChatPort): Promise<void> {
    while (this.sends && this.sends.length > 0 && this.session.state !== "closed") {
      const batch = this.sends.splice(0, SEND_BATCH);
      this.sending = batch.length;
      try {
        const acks = await port.send(batch.map((s) => s.event));
        batch.forEach((s, i) => {
          const ack = acks[i];
          if (ack) this.answer(s.requestId, { case: "ack", value: ack });
          else this.error(s.requestId, "internal", "internal error");
        });
      } catch (err) {
        for (const s of batch) this.failed(s.requestId, err);
      }
    }
    this.sending = 0;
    this.sends = undefined;
  }

  /** A ping's answer; without a request id (as devices ping), the pong every device gets this millisecond. */
  private pong(requestId: string): void {
    if (requestId !== "") this.answer(requestId, { case: "pong", value: { serverTime: timestampNow() } });
    else if (this.session.state !== "closed") {
      const shared = pong(Date.now());
      this.session.emit(shared.frame, shared.bytes);
    }
    this.session.pinged?.();
  }

  private call(requestId: string, work: () => Promise<unknown>): void {
    this.calls = this.calls
      .then(() => (this.session.state === "closed" ? undefined : work()))
      .then(
        () => {},
        (err: unknown) => this.failed(requestId, err),
      );
  }

  private answer(requestId: string, frame: MessageInitShape<typeof ServerFrameSchema>["frame"]): void {
    if (this.session.state !== "closed") this.session.emit(create(ServerFrameSchema, { requestId, frame }));
  }

  private error(requestId: string, code: string, message: string): void {
    this.answer(requestId, { case: "error", value: { code, message } });
  }

  private failed(requestId: string, err: unknown): void {
    if (this.session.state === "closed") return;
    if (err instanceof ConnectError) {
      if (err.code === Code.Unauthenticated) this.session.close(DISCONNECT.authExpired, err.rawMessage);
      else this.error(requestId, codeToString(err.code), err.rawMessage);
      return;
    }
    this.logger.error({ err, connection_id: this.session.connectionId }, "frame failed");
    this.error(requestId, "internal", "internal error");
  }
}
