import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AckEvent, Resync, RoomEvent, RoomEventSchema, ServerFrame } from "@service-chat/api";
import { type Device, grpcDevice, wsDevice } from "./devices.js";
import { UNTIL_TIMEOUT_MS } from "./until.js";

type EventInit = MessageInitShape<typeof RoomEventSchema>;

export interface GatewayAddress {
  name: string;
  /** HTTP/1.1 port: /ws. */
  httpUrl: string;
  /** h2c port: GatewayService.Connect. */
  grpcUrl: string;
}

export type DeviceTransport = "ws-binary" | "ws-json" | "grpc";

export interface ResumingDeviceOptions {
  profileId: string;
  deviceId: string;
  transport: DeviceTransport;
  /** A bearer token (with sub and device_id) for each connection. */
  token(): Promise<string>;
  /** The gateways it may use; it starts on the first. */
  gateways: GatewayAddress[];
  /** Reconnect backoff: base × 2^failed attempts, at most max, jittered by ±50%. */
  backoffMs?: { base: number; max: number };
  /** A connection that shows nothing (not even a pong) for this long counts as dead. */
  silenceMs?: number;
}

/** Why a send got no ack: the connection ended, the server refused it, or nothing came in time. */
export class SendFailed extends Error {
  override readonly name = "SendFailed";
  constructor(
    message: string,
    /** The error code from an `error` frame or the ack's error, when the server answered. */
    readonly code?: string,
  ) {
    super(message);
  }
}

interface Live {
  device: Device;
  gateway: GatewayAddress;
  processed: number;
  lastFrameAt: number;
  heartbeatMs: number;
  /** Resolves once the client gave up on the connection (silence, or stop). */
  abandoned: Promise<void>;
  abandon(): void;
}

interface Pending {
  live: Live;
  resolve(ack: AckEvent): void;
  reject(err: Error): void;
}

/**
 * A device as a careful client writes it: it keeps its position per room (the highest seq shown,
 * starting from its first hello's replay), shows each (room, seq) once, records what it showed in
 * arrival order, and whenever its connection ends — a disconnect frame that allows a reconnect, or
 * the socket or stream just dying — connects again after a short jittered backoff, to its own
 * gateway if that one answers and to another otherwise, sending hello with its positions as
 * cursors. A `resync` moves the room's position to from_seq - 1.
 */
export class ResumingDevice {
  readonly positions = new Map<string, number>();
  /** Every event shown, in arrival order. */
  readonly shown: RoomEvent[] = [];
  readonly resyncs: Resync[] = [];
  /** Each established connection: which gateway, when. */
  readonly connections: { gateway: string; at: number }[] = [];
  /** Events received again after being shown (never shown twice). */
  duplicates = 0;
  /** Connection attempts that got no welcome. */
  failedAttempts = 0;
  /** Set when the server said not to reconnect. */
  ended?: { code: number; reason: string };
  lastClose?: { gateway: string; code: number; reason: string; at: number };

  private readonly seen = new Set<string>();
  private readonly pending = new Map<string, Pending>();
  private readonly waiters = new Set<() => void>();
  private live?: Live;
  private stopped = false;
  private requests = 0;
  private failures = 0;
  private loop?: Promise<void>;
  private wakeBackoff: () => void = () => {};

  constructor(private readonly o: ResumingDeviceOptions) {}

  get profileId(): string {
    return this.o.profileId;
  }

  get deviceId(): string {
    return this.o.deviceId;
  }

  get transport(): DeviceTransport {
    return this.o.transport;
  }

  /** Connections after the first. */
  get reconnects(): number {
    return Math.max(0, this.connections.length - 1);
  }

  /** The gateway of the current connection, if connected. */
  get gateway(): string | undefined {
    return this.live?.gateway.name;
  }

  /** Starts the connection loop; resolves once the first connection is welcomed. */
  async start(timeoutMs = UNTIL_TIMEOUT_MS): Promise<void> {
    this.loop ??= this.run();
    await this.connected(timeoutMs);
  }

  /** The seqs shown in a room, in arrival order. */
  seqs(roomId: string): number[] {
    return this.shown.filter((e) => e.roomId === roomId).map((e) => Number(e.seq));
  }

  /** Sends an event over the device stream; resolves with its ack (rejects with SendFailed otherwise). */
  async send(event: EventInit, timeoutMs = 10_000): Promise<AckEvent> {
    const live = await this.connected(timeoutMs);
    const requestId = `r${++this.requests}`;
    return new Promise<AckEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new SendFailed(`no ack for ${requestId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(requestId, {
        live,
        resolve: (ack) => {
          clearTimeout(timer);
          resolve(ack);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      live.device.send({ requestId, frame: { case: "send", value: event } });
    });
  }

  /** Ends the connection and the reconnect loop. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeBackoff();
    this.live?.abandon();
    for (const w of this.waiters) w();
    await this.loop;
  }

  /** Resolves with the current connection, waiting (bounded) for one. */
  private async connected(timeoutMs: number): Promise<Live> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.live) return this.live;
      if (this.stopped) throw new SendFailed("device stopped");
      if (this.ended) throw new SendFailed(`server ended the device: ${this.ended.code} ${this.ended.reason}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new SendFailed(`not connected within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
  }

  private async run(): Promise<void> {
    let preferred = 0;
    while (!this.stopped && !this.ended) {
      const order = [preferred, ...this.o.gateways.keys()].filter((g, i, all) => all.indexOf(g) === i);
      let opened: Live | undefined;
      for (const g of order) {
        if (this.stopped || this.ended) return;
        opened = await this.open(this.o.gateways[g] as GatewayAddress);
        if (opened) {
          preferred = g;
          break;
        }
      }
      if (!opened) {
        this.failures++;
        await this.backoff();
        continue;
      }
      this.failures = 0;
      await this.serve(opened);
      if (!this.stopped && !this.ended) await this.backoff();
    }
  }

  /** Connects to one gateway with hello(cursors = positions); answers the connection once welcomed. */
  private async open(gateway: GatewayAddress): Promise<Live | undefined> {
    let device: Device;
    try {
      const token = await this.o.token();
      const cursors = [...this.positions].map(([roomId, seq]) => ({ roomId, seq: BigInt(seq) }));
      device =
        this.o.transport === "grpc"
          ? await grpcDevice(gateway.grpcUrl, token, {
              case: "hello",
              value: { deviceId: this.o.deviceId, cursors },
            })
          : await wsDevice(
              gateway.httpUrl,
              { case: "hello", value: { token, deviceId: this.o.deviceId, cursors } },
              { json: this.o.transport === "ws-json" },
            );
    } catch {
      this.failedAttempts++;
      return undefined;
    }
    const first = await Promise.race([
      device.waitFor((f) => f.frame.case === "welcome" || f.frame.case === "disconnect", 5_000).catch(() => undefined),
      device.closed.then(() => device.frames.find((f) => f.frame.case === "welcome" || f.frame.case === "disconnect")),
    ]);
    if (first?.frame.case !== "welcome" || this.stopped) {
      device.close();
      this.failedAttempts++;
      if (first?.frame.case === "disconnect" && !first.frame.value.reconnect) {
        this.ended = { code: first.frame.value.code, reason: first.frame.value.reason };
      }
      return undefined;
    }
    let abandon: () => void = () => {};
    const abandoned = new Promise<void>((resolve) => {
      abandon = resolve;
    });
    return {
      device,
      gateway,
      processed: 0,
      lastFrameAt: Date.now(),
      heartbeatMs: Math.max(100, first.frame.value.heartbeatIntervalSec * 1000),
      abandoned,
      abandon: () => abandon(),
    };
  }

  /** Shows what the connection brings until it ends. */
  private async serve(live: Live): Promise<void> {
    this.live = live;
    this.connections.push({ gateway: live.gateway.name, at: Date.now() });
    for (const w of this.waiters) w();
    const silenceMs = this.o.silenceMs ?? Math.max(3_000, live.heartbeatMs * 4);
    const drain = setInterval(() => this.drain(live), 10);
    const ping = setInterval(() => {
      if (Date.now() - live.lastFrameAt > silenceMs) live.abandon();
      else live.device.send({ frame: { case: "ping", value: {} } });
    }, live.heartbeatMs);
    const closed = await Promise.race([live.device.closed, live.abandoned.then(() => undefined)]);
    clearInterval(drain);
    clearInterval(ping);
    this.drain(live);
    live.device.close();
    this.live = undefined;
    for (const [id, p] of this.pending) {
      if (p.live !== live) continue;
      this.pending.delete(id);
      p.reject(new SendFailed("connection closed before the ack"));
    }
    const disconnect = live.device.frames.findLast((f) => f.frame.case === "disconnect");
    const code = disconnect?.frame.case === "disconnect" ? disconnect.frame.value.code : (closed?.code ?? 0);
    const reason = disconnect?.frame.case === "disconnect" ? disconnect.frame.value.reason : (closed?.reason ?? "");
    this.lastClose = { gateway: live.gateway.name, code, reason, at: Date.now() };
  }

  private drain(live: Live): void {
    const frames = live.device.frames;
    if (live.processed < frames.length) live.lastFrameAt = Date.now();
    while (live.processed < frames.length) this.handle(frames[live.processed++] as ServerFrame);
  }

  private handle(f: ServerFrame): void {
    switch (f.frame.case) {
      case "event": {
        const e = f.frame.value;
        const key = `${e.roomId}\u0000${e.seq}`;
        if (this.seen.has(key)) {
          this.duplicates++;
          return;
        }
        this.seen.add(key);
        this.shown.push(e);
        this.positions.set(e.roomId, Math.max(this.positions.get(e.roomId) ?? 0, Number(e.seq)));
        return;
      }
      case "resync":
        this.resyncs.push(f.frame.value);
        this.positions.set(f.frame.value.roomId, Number(f.frame.value.fromSeq) - 1);
        return;
      case "ack": {
        const p = this.pending.get(f.requestId);
        if (!p) return;
        this.pending.delete(f.requestId);
        const ack = f.frame.value;
        if (ack.error) p.reject(new SendFailed(`refused: ${ack.error.code} ${ack.error.message}`, ack.error.code));
        else p.resolve(ack);
        return;
      }
      case "error": {
        const p = this.pending.get(f.requestId);
        if (!p) return;
        this.pending.delete(f.requestId);
        p.reject(new SendFailed(`error frame: ${f.frame.value.code} ${f.frame.value.message}`, f.frame.value.code));
        return;
      }
      case "disconnect":
        if (!f.frame.value.reconnect) this.ended = { code: f.frame.value.code, reason: f.frame.value.reason };
        return;
      default:
        return;
    }
  }

  private backoff(): Promise<void> {
    const { base, max } = this.o.backoffMs ?? { base: 100, max: 2_000 };
    const ms = Math.min(max, base * 2 ** this.failures) * (0.5 + Math.random());
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeBackoff = done;
    });
  }
}
