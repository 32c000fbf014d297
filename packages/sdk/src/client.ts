import {
  create,
  fromBinary,
  fromJson,
  fromJsonString,
  type JsonValue,
  type MessageInitShape,
  toBinary,
  toJson,
  toJsonString,
} from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  type AckEvent,
  ChatService,
  ClientFrameSchema,
  type PresenceState,
  type RoomEvent,
  RoomEventSchema,
  type ServerFrame,
  ServerFrameSchema,
} from "@service-chat/api";
import { DISCONNECT, JSON_PROTOCOL } from "@service-chat/protocol/device-stream";
import { RoomSequencer } from "@service-chat/protocol/sequencer";
import { type AttachmentInit, type EventInit, messages } from "./messages.js";
import { isPermanent, reconnectDelay } from "./retry.js";
import { sendByCall, sendDelay } from "./sends.js";
import { OPEN, type Socket, socketClass } from "./socket.js";
import { newDeviceStarts, onBrowserWake, tokenSubject } from "./starts.js";
import { type ChatStore, type ClientState, memoryStore } from "./store.js";
import { type ChatClientOptions, ChatError, type ChatEvents, type ConnectionState } from "./types.js";

export * from "./types.js";

type Pending = { event: RoomEvent; attempt: number; resolve(ack: AckEvent): void; reject(err: ChatError): void };

/**
 * A chat client: every ChatService call (`api`), and a live session over WebSocket that shows each
 * event once, in seq order per room, reconnecting by itself and resuming from its positions.
 */
export class ChatClient {
  readonly api: Client<typeof ChatService>;
  state: ConnectionState = "idle";
  private readonly order = new RoomSequencer();
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Map<keyof ChatEvents, Set<(x: any) => void>>();
  private readonly store: ChatStore;
  private loaded?: Promise<void>;
  private socket?: Socket;
  private welcomed = false;
  private lastDisconnect?: { code: number; reason: string; reconnect: boolean; retryAfterMs?: number };
  private attempt = 0;
  private authRetried = false;
  private waiting?: { resolve(): void; reject(err: ChatError): void };
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private heartbeat?: ReturnType<typeof setInterval>;
  private acker?: ReturnType<typeof setInterval>;
  private connecting?: Promise<void>;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private unwatch?: () => void;
  private closedByApp = false;
  private tokenRefused = false;
  /** The signed-in user (the token's `sub`), to tell their own receipts from others'. */
  private me = "";
  /** The store held nothing: this is a new device. */
  private fresh = false;
  private lastFrameAt = 0;
  private readonly ackDue = new Map<string, number>();
  private saveTimer?: ReturnType<typeof setTimeout>;

  constructor(private readonly o: ChatClientOptions) {
    if (!o.token && !o.getToken) throw new Error("createChatClient needs token or getToken");
    this.store = o.store ?? memoryStore();
    this.me = o.token ? (tokenSubject(o.token) ?? "") : "";
    const auth: Interceptor = (next) => async (req) => {
      req.header.set("authorization", `Bearer ${await this.token()}`);
      try {
        return await next(req);
      } catch (err) {
        if (!(err instanceof ConnectError) || err.code !== Code.Unauthenticated || !this.o.getToken) throw err;
        this.tokenRefused = true;
        req.header.set("authorization", `Bearer ${await this.token()}`);
        return next(req);
      }
    };
    this.api = createClient(ChatService, createConnectTransport({ baseUrl: o.baseUrl, interceptors: [auth] }));
  }

  /** Opens the live session; resolves once what was missed has been replayed. */
  connect(): Promise<void> {
    if (this.state === "live") return Promise.resolve();
    this.connecting ??= this.start().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async start(): Promise<void> {
    await this.load();
    if (this.fresh) {
      this.fresh = false;
      const starts = await newDeviceStarts(
        this.api,
        this.o.newDeviceWindow ?? 50,
        (id) => this.order.position(id) !== undefined,
      ).catch(() => new Map<string, number>());
      for (const [room, seq] of starts) this.order.set(room, seq);
      this.persist();
    }
    this.closedByApp = false;
    this.unwatch ??= onBrowserWake(() => this.reconnectNow());
    if (this.acker === undefined) this.acker = setInterval(() => this.flushAcks(), this.o.ackIntervalMs ?? 1000);
    const live = new Promise<void>((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
    if (this.state === "idle" || this.state === "closed") void this.open();
    return live;
  }

  on<K extends keyof ChatEvents>(kind: K, listener: (x: ChatEvents[K]) => void): () => void {
    const set = this.listeners.get(kind) ?? new Set();
    set.add(listener);
    this.listeners.set(kind, set);
    return () => set.delete(listener);
  }

  /** The events as an async iterator (ends when the client closes). */
  async *events(): AsyncGenerator<RoomEvent> {
    const queue: RoomEvent[] = [];
    let wake: () => void = () => {};
    const off = this.on("event", (e) => {
      queue.push(e);
      wake();
    });
    const offState = this.on("state", () => wake());
    try {
      for (;;) {
        const next = queue.shift();
        if (next) yield next;
        else if (this.state === "closed") return;
        else await new Promise<void>((r) => (wake = r));
      }
    } finally {
      off();
      offState();
    }
  }

  /**
   * Sends an event. It gets a client id (if it has none) and waits in the outbox until the server
   * acknowledges it; after a reconnect, or when the server could not store it (unavailable,
   * internal, …: a `retrying` event says so), it is sent again with the same id, so it is stored
   * once. It is refused (ChatError) only when the answer says the message itself is wrong
   * (invalid_argument, permission_denied, not_found, failed_precondition, …).
   */
  async send(init: EventInit): Promise<AckEvent> {
    await this.load();
    const event = create(RoomEventSchema, { ...init, clientId: init.clientId || randomId() });
    if (this.state === "idle" || this.state === "closed") return this.sendByCall(event);
    const done = new Promise<AckEvent>((resolve, reject) =>
      this.pending.set(event.clientId, { event, attempt: 0, resolve, reject }),
    );
    this.persist();
    if (this.welcomed) this.transmit(event);
    return done;
  }

  /** Sends a text message; give `clientId` to match the pending message with its event later. */
  sendText(roomId: string, body: string, clientId = ""): Promise<AckEvent> {
    return this.send(messages.text(roomId, body, clientId));
  }

  /** A text message answering `parentId` (its `parentId` field). */
  reply(roomId: string, parentId: string, body: string, clientId = ""): Promise<AckEvent> {
    return this.send(messages.reply(roomId, parentId, body, clientId));
  }

  /** Replaces the text of your message `targetEventId`; history then shows it with `edited`. */
  edit(roomId: string, targetEventId: string, body: string, clientId = ""): Promise<AckEvent> {
    return this.send(messages.edit(roomId, targetEventId, body, clientId));
  }

  /** Deletes `targetEventId` for everyone; history then shows it empty with `redacted`. */
  redact(roomId: string, targetEventId: string, reason = "", clientId = ""): Promise<AckEvent> {
    return this.send(messages.redact(roomId, targetEventId, reason, clientId));
  }

  /** Adds your reaction `key` to `targetEventId`, or removes it with `add` false. */
  react(roomId: string, targetEventId: string, key: string, add = true, clientId = ""): Promise<AckEvent> {
    return this.send(messages.react(roomId, targetEventId, key, add, clientId));
  }

  /** Sends an attachment whose bytes are already stored at `a.uri` (see docs/api.md, attachments). */
  sendAttachment(roomId: string, a: AttachmentInit, clientId = ""): Promise<AckEvent> {
    return this.send(messages.attachment(roomId, a, clientId));
  }

  markRead(roomId: string, seq: number | bigint): void {
    this.frame({ frame: { case: "read", value: { roomId, seq: BigInt(seq) } } });
  }

  typing(roomId: string, active: boolean): void {
    this.frame({ frame: { case: "typing", value: { roomId, active } } });
  }

  setPresence(state: PresenceState): void {
    this.frame({ frame: { case: "presence", value: { state } } });
  }

  /** The highest seq shown in a room. */
  position(roomId: string): number | undefined {
    return this.order.position(roomId);
  }

  /** Ends the session for good. */
  close(): void {
    this.flushAcks();
    this.closedByApp = true;
    this.setState("closed");
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.acker) clearInterval(this.acker);
    this.acker = undefined;
    this.socket?.close(1000, "client closed");
    this.socket = undefined;
    this.waiting?.reject(new ChatError("cancelled", "the client was closed"));
    this.waiting = undefined;
    this.persist(true);
  }

  private async open(): Promise<void> {
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let token: string;
    try {
      token = await this.token();
    } catch {
      this.retry();
      return;
    }
    if (this.state === "closed") return;
    const Ws = await socketClass();
    const ws = new Ws(`${this.o.baseUrl.replace(/^http/, "ws")}/ws`, this.o.json ? [JSON_PROTOCOL] : []);
    ws.binaryType = "arraybuffer";
    this.socket = ws;
    this.welcomed = false;
    this.lastDisconnect = undefined;
    ws.addEventListener("open", () => {
      const cursors = [...this.order.entries()].map(([roomId, seq]) => ({ roomId, seq: BigInt(seq) }));
      this.frame({ frame: { case: "hello", value: { token, deviceId: this.o.deviceId ?? "", cursors } } }, ws);
    });
    ws.addEventListener("message", (ev: { data: ArrayBuffer | string }) => {
      try {
        const frame =
          typeof ev.data === "string"
            ? fromJsonString(ServerFrameSchema, ev.data, { ignoreUnknownFields: true })
            : fromBinary(ServerFrameSchema, new Uint8Array(ev.data));
        this.onFrame(frame);
      } catch {
        this.emit("error", new ChatError("internal", "a frame from the server could not be read"));
      }
    });
    ws.addEventListener("close", () => this.onClose(ws));
    ws.addEventListener("error", () => {});
  }

  private onFrame(f: ServerFrame): void {
    this.lastFrameAt = Date.now();
    const frame = f.frame;
    switch (frame.case) {
      case "welcome": {
        const interval = Math.max(1, frame.value.heartbeatIntervalSec) * 1000;
        this.welcomed = true;
        this.attempt = 0;
        this.authRetried = false;
        if (this.heartbeat) clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => {
          // The server sends something every interval: silence means the connection died quietly.
          if (Date.now() - this.lastFrameAt > 2.5 * interval) this.socket?.close(4000, "silent server");
          else this.frame({ frame: { case: "ping", value: {} } });
        }, interval);
        for (const p of this.pending.values()) this.transmit(p.event);
        return;
      }
      case "synced":
        this.setState("live");
        this.waiting?.resolve();
        this.waiting = undefined;
        return;
      case "event":
        this.onEvent(frame.value);
        return;
      case "resync":
        this.order.set(frame.value.roomId, Number(frame.value.fromSeq) - 1);
        this.persist();
        this.emit("resync", frame.value);
        return;
      case "ack":
        this.onAck(f.requestId, frame.value);
        return;
      case "error": {
        const pending = this.pending.get(f.requestId);
        const err = new ChatError(frame.value.code, frame.value.message);
        if (pending) this.failed(pending, err);
        else this.emit("error", err);
        return;
      }
      case "receipt":
        this.emit("receipt", Object.assign(frame.value, { mine: frame.value.profileId === this.me }));
        return;
      case "typing":
        this.emit("typing", frame.value);
        return;
      case "presence":
        this.emit("presence", frame.value);
        return;
      case "disconnect":
        this.lastDisconnect = frame.value;
        return;
      default:
        return;
    }
  }

  private onEvent(e: RoomEvent): void {
    const verdict = this.order.offer(e.roomId, Number(e.seq));
    if (verdict === "duplicate") return;
    if (verdict === "gap") {
      // Something is missing: reconnecting replays from our positions, in order.
      this.socket?.close(4000, "gap");
      return;
    }
    this.ackDue.set(e.roomId, Number(e.seq));
    this.persist();
    this.emit("event", e);
  }

  private onAck(clientId: string, ack: AckEvent): void {
    const pending = this.pending.get(clientId);
    if (!pending) return;
    if (ack.error) {
      this.failed(pending, new ChatError(ack.error.code, ack.error.message));
      return;
    }
    this.pending.delete(clientId);
    this.persist();
    pending.resolve(ack);
  }

  /** A send the server did not store: refused for good, or kept and sent again after a backoff. */
  private failed(pending: Pending, err: ChatError): void {
    const id = pending.event.clientId;
    if (isPermanent(err.code)) {
      this.pending.delete(id);
      this.persist();
      pending.reject(err);
      return;
    }
    const delayMs = sendDelay(err.code, pending.attempt++, this.o);
    this.emit("retrying", {
      clientId: id,
      roomId: pending.event.roomId,
      code: err.code,
      message: err.message,
      attempt: pending.attempt,
      delayMs,
    });
    this.later(() => {
      // After a reconnect the welcome has sent it again already; a second copy is harmless (same id).
      if (this.welcomed && this.pending.get(id) === pending) this.transmit(pending.event);
    }, delayMs);
  }

  private sendByCall(event: RoomEvent): Promise<AckEvent> {
    return sendByCall(this.api, event, this.o, (retry) => this.emit("retrying", retry));
  }

  private onClose(ws: Socket): void {
    if (this.socket !== ws) return;
    this.socket = undefined;
    this.welcomed = false;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.state === "closed") return;
    const d = this.lastDisconnect;
    const authFailed = d?.code === DISCONNECT.authFailed.code;
    const again = !d || d.reconnect || (authFailed && !!this.o.getToken && !this.authRetried);
    if (authFailed) this.authRetried = true;
    if (authFailed || d?.code === DISCONNECT.authExpired.code) this.tokenRefused = true;
    if (!again) {
      const err = new ChatError(authFailed ? "unauthenticated" : "disconnected", d?.reason ?? "disconnected");
      this.setState("closed");
      this.emit("error", err);
      this.waiting?.reject(err);
      this.waiting = undefined;
      return;
    }
    this.retry();
  }

  private retry(): void {
    const delay = reconnectDelay(
      this.attempt,
      this.o.minBackoffMs ?? 250,
      this.o.maxBackoffMs ?? 5000,
      this.lastDisconnect?.retryAfterMs ?? 0,
    );
    this.attempt++;
    this.setState("reconnecting");
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.open();
    }, delay);
  }

  /**
   * Tries to reconnect at once instead of waiting out the backoff: for a "reconnect now" button,
   * and called by the client itself when the browser comes back online or the page becomes
   * visible. Does nothing while connected or connecting; after the session ended for good
   * (`closed` by the server) it starts a new one.
   */
  reconnectNow(): void {
    if (this.state === "reconnecting" && this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      this.attempt = 0;
      void this.open();
    } else if (this.state === "closed" && !this.closedByApp) {
      void this.connect().catch(() => {});
    }
  }

  private transmit(event: RoomEvent): void {
    this.frame({ requestId: event.clientId, frame: { case: "send", value: event } });
  }

  private frame(init: MessageInitShape<typeof ClientFrameSchema>, ws = this.socket): void {
    if (!ws || ws.readyState !== OPEN) return;
    const msg = create(ClientFrameSchema, init);
    ws.send(this.o.json ? toJsonString(ClientFrameSchema, msg) : toBinary(ClientFrameSchema, msg));
  }

  private flushAcks(): void {
    if (this.ackDue.size === 0 || !this.welcomed) return;
    const cursors = [...this.ackDue].map(([roomId, seq]) => ({ roomId, seq: BigInt(seq) }));
    this.ackDue.clear();
    this.frame({ frame: { case: "ack", value: { cursors } } });
  }

  private async token(): Promise<string> {
    if (!this.o.getToken) return this.o.token as string;
    const refused = this.tokenRefused;
    this.tokenRefused = false;
    const token = await this.o.getToken({ refused });
    this.me = tokenSubject(token) ?? this.me;
    return token;
  }

  private load(): Promise<void> {
    this.loaded ??= this.store.load().then((state) => {
      this.fresh = state === undefined;
      for (const [room, seq] of Object.entries(state?.positions ?? {})) this.order.set(room, seq);
      for (const { clientId, event } of state?.outbox ?? []) {
        const e = fromJson(RoomEventSchema, event as JsonValue);
        e.clientId = clientId;
        this.pending.set(clientId, { event: e, attempt: 0, resolve: () => {}, reject: () => {} });
      }
    });
    return this.loaded;
  }

  /** Saves positions and outbox, at most every 200 ms (or now). */
  private persist(now = false): void {
    const save = () => {
      this.saveTimer = undefined;
      const state: ClientState = {
        positions: Object.fromEntries(this.order.entries()),
        outbox: [...this.pending.values()].map((p) => ({
          clientId: p.event.clientId,
          event: toJson(RoomEventSchema, p.event),
        })),
      };
      void this.store.save(state).catch(() => {});
    };
    if (now) {
      if (this.saveTimer) clearTimeout(this.saveTimer);
      save();
    } else this.saveTimer ??= setTimeout(save, 200);
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }

  private emit<K extends keyof ChatEvents>(kind: K, value: ChatEvents[K]): void {
    for (const l of this.listeners.get(kind) ?? []) l(value);
  }
}

function randomId(): string {
  return globalThis.crypto.randomUUID();
}

export function createChatClient(options: ChatClientOptions): ChatClient {
  return new ChatClient(options);
}
