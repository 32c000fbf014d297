import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { create, fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import { type ClientFrame, ClientFrameSchema, type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "@service-chat/core";
import { type Disconnect, JSON_PROTOCOL } from "@service-chat/protocol";
import { type WebSocket, WebSocketServer } from "ws";
import type { DeviceSession } from "./session/device-session.js";
import type { Sink } from "./session/writer.js";

export interface WebSocketOptions {
  /** Frames larger than this get an error frame; twice as large closes the socket (1009). */
  maxFrameBytes: number;
  createSession(sink: Sink, headerToken?: string): DeviceSession;
}

const SESSION = Symbol("session");
type SessionSocket = WebSocket & { [SESSION]: DeviceSession };

/**
 * A device's ping, the frame idle devices send most (every device, every 25 s or so): `ping {}`
 * with no request id. Recognised by its bytes (binary) or its text as the SDK writes it (JSON),
 * and handed on as one shared frame (frozen: nothing may change it) instead of being decoded: in an
 * idle gateway's profile the decode was about a fifth of a ping's whole handling.
 */
const PING: ClientFrame = Object.freeze(create(ClientFrameSchema, { frame: { case: "ping", value: {} } }));
const PING_BINARY = Buffer.from(toBinary(ClientFrameSchema, PING));
const PING_JSON = Buffer.from(toJsonString(ClientFrameSchema, PING));

function isPing(data: Buffer, json: boolean): boolean {
  const ping = json ? PING_JSON : PING_BINARY;
  return data.length === ping.length && data.equals(ping);
}

/**
 * The device stream over WebSocket at /ws, for browsers: binary protobuf frames, or JSON frames
 * when the client asks for the `json` subprotocol. Browsers cannot set headers: they send the
 * token in hello.token.
 */
export function webSocketEndpoint(options: WebSocketOptions) {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxFrameBytes * 2,
    handleProtocols: (protocols) => (protocols.has(JSON_PROTOCOL) ? JSON_PROTOCOL : false),
  });
  // The listeners are the same functions for every socket (`this` is the socket, its session a
  // property of it): per connection they would cost three closures and their context.
  function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
    const session = (this as SessionSocket)[SESSION];
    if (data.length > options.maxFrameBytes) {
      session.badFrame(`frame is larger than ${options.maxFrameBytes} bytes`);
      return;
    }
    const json = this.protocol === JSON_PROTOCOL || !isBinary;
    if (isPing(data, json)) {
      session.receive(PING);
      return;
    }
    // Checked before parsing, in about a millisecond per megabyte: deep nesting costs a parser far more.
    if (json && nestsDeeperThan(data)) {
      session.badFrame(`frame nests deeper than ${MAX_JSON_DEPTH} levels`);
      return;
    }
    let frame: ReturnType<typeof fromBinary<typeof ClientFrameSchema>>;
    try {
      frame = json ? fromJsonString(ClientFrameSchema, data.toString("utf8")) : fromBinary(ClientFrameSchema, data);
    } catch {
      session.badFrame(
        this.protocol === JSON_PROTOCOL ? "frame is not a ClientFrame in JSON" : "frame is not a binary ClientFrame",
      );
      return;
    }
    session.receive(frame);
  }
  function onEnd(this: WebSocket): void {
    (this as SessionSocket)[SESSION].end();
  }
  const onConnection = (ws: WebSocket, req: IncomingMessage, socket: Duplex) => {
    const sink = new WebSocketSink(ws, socket, ws.protocol === JSON_PROTOCOL);
    const header = req.headers.authorization;
    (ws as SessionSocket)[SESSION] = options.createSession(sink, header?.replace(/^Bearer\s+/i, "") || undefined);
    ws.on("message", onMessage);
    ws.on("close", onEnd);
    ws.on("error", onEnd);
  };
  return {
    /** Takes over an HTTP upgrade to /ws; answers false for other paths. */
    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
      if ((req.url ?? "").split("?")[0] !== "/ws") return false;
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req, socket));
      return true;
    },
    close: () => new Promise<void>((resolve) => wss.close(() => resolve())),
  };
}

/** A session's writes to a WebSocket: binary protobuf, or JSON text for the `json` subprotocol. */
class WebSocketSink implements Sink {
  constructor(
    private readonly ws: WebSocket,
    /** The socket under `ws`: live frames are written to it directly, framed once (`framed`). */
    private readonly socket: Duplex,
    readonly json: boolean,
  ) {}

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** What ws holds plus what the socket has not handed to the kernel. */
  backlogged(): boolean {
    return this.ws.bufferedAmount > 0;
  }

  /** Corked for the rest of the turn: the frames of one turn leave in one system call. */
  hold(): void {
    this.socket.cork();
  }

  release(): void {
    this.socket.uncork();
  }

  /** Answers the bytes written (for JSON, its length in characters: near enough). */
  write(frame: ServerFrame, bytes?: Uint8Array): number {
    if (bytes) {
      // A live frame, the same for every device: encoded and framed once for all of them.
      const wire = this.json ? framedJson(bytes, frame) : framed(bytes);
      this.socket.write(wire);
      return wire.byteLength;
    }
    if (this.json) {
      const text = toJsonString(ServerFrameSchema, frame);
      this.ws.send(text, { binary: false });
      return text.length;
    }
    const binary = toBinary(ServerFrameSchema, frame);
    this.ws.send(binary, { binary: true });
    return binary.byteLength;
  }

  end(reason: Disconnect): void {
    this.ws.close(reason.code, reason.reason);
  }
}

/**
 * Live frames go to many devices with the same bytes: each is framed for the wire once (RFC 6455
 * §5.2: FIN, binary or text, unmasked as server frames are) and the same buffer is written to
 * every socket, instead of `ws` framing it again per device. Whole frames only, so they never
 * interleave with what `ws` itself writes (pings, close). Keyed by the live frame's bytes, which
 * the hub hands to every device of a delivery.
 */
const binaryWire = new WeakMap<Uint8Array, Buffer>();
const jsonWire = new WeakMap<Uint8Array, Buffer>();

/** A binary WebSocket frame of `bytes`. */
export function framed(bytes: Uint8Array): Buffer {
  let frame = binaryWire.get(bytes);
  if (!frame) {
    frame = wsFrame(0x82, bytes);
    binaryWire.set(bytes, frame);
  }
  return frame;
}

/** A text WebSocket frame of `frame` in JSON (the `json` subprotocol), for the live frame `bytes`. */
export function framedJson(bytes: Uint8Array, frame: ServerFrame): Buffer {
  let wire = jsonWire.get(bytes);
  if (!wire) {
    wire = wsFrame(0x81, Buffer.from(toJsonString(ServerFrameSchema, frame), "utf8"));
    jsonWire.set(bytes, wire);
  }
  return wire;
}

function wsFrame(first: number, payload: Uint8Array): Buffer {
  const n = payload.byteLength;
  const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + n);
  frame[0] = first;
  if (n < 126) frame[1] = n;
  else if (n < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  frame.set(payload, header);
  return frame;
}
