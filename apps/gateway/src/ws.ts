import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import { ClientFrameSchema, ServerFrameSchema } from "@service-chat/api";
import { type WebSocket, WebSocketServer } from "ws";
import { JSON_PROTOCOL } from "./protocol.js";
import type { DeviceSession, Outlet } from "./session.js";

export interface WebSocketOptions {
  /** Frames larger than this get an error frame; twice as large closes the socket (1009). */
  maxFrameBytes: number;
  createSession(outlet: Outlet, headerToken?: string): DeviceSession;
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
  const batcher = new WriteBatcher();
  const onConnection = (ws: WebSocket, req: IncomingMessage, socket: Duplex) => {
    const json = ws.protocol === JSON_PROTOCOL;
    // Frames waiting: counted from a turn that starts with data still buffered (the device reads
    // slower than we write) until a turn starts with everything gone out.
    let waiting = 0;
    let backlogged = false;
    const outlet: Outlet = {
      send(frame, bytes) {
        if (ws.readyState !== ws.OPEN) return 0;
        if (batcher.hold(socket)) {
          backlogged = ws.bufferedAmount > 0;
          if (!backlogged) waiting = 0;
        }
        if (json) ws.send(toJsonString(ServerFrameSchema, frame), { binary: false });
        else if (bytes) socket.write(framed(bytes));
        else ws.send(toBinary(ServerFrameSchema, frame), { binary: true });
        if (backlogged) waiting++;
        return waiting;
      },
      close(reason) {
        ws.close(reason.code, reason.reason);
      },
    };
    const header = req.headers.authorization;
    const session = options.createSession(outlet, header?.replace(/^Bearer\s+/i, "") || undefined);
    ws.on("message", (data: Buffer, isBinary) => {
      if (data.length > options.maxFrameBytes) {
        session.badFrame(`frame is larger than ${options.maxFrameBytes} bytes`);
        return;
      }
      let frame: ReturnType<typeof fromBinary<typeof ClientFrameSchema>>;
      try {
        frame =
          json || !isBinary
            ? fromJsonString(ClientFrameSchema, data.toString("utf8"))
            : fromBinary(ClientFrameSchema, data);
      } catch {
        session.badFrame(json ? "frame is not a ClientFrame in JSON" : "frame is not a binary ClientFrame");
        return;
      }
      session.receive(frame);
    });
    ws.on("close", () => session.end());
    ws.on("error", () => session.end());
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

/**
 * Holds a socket's writes until the end of the current turn of the event loop, so the frames
 * written to one device in one turn (a batch of events arriving together) leave in one system
 * call instead of one each.
 */
class WriteBatcher {
  private readonly held = new Set<Duplex>();

  /** Corks the socket for the rest of this turn; answers true when it was not held yet. */
  hold(socket: Duplex): boolean {
    if (this.held.has(socket)) return false;
    if (this.held.size === 0) setImmediate(() => this.release());
    socket.cork();
    this.held.add(socket);
    return true;
  }

  private release(): void {
    for (const socket of this.held) socket.uncork();
    this.held.clear();
  }
}

/**
 * Live frames go to many devices with the same bytes: each is framed for the wire once (RFC 6455
 * §5.2: FIN, binary, unmasked as server frames are) and the same buffer is written to every
 * socket, instead of `ws` framing it again per device. Whole frames only, so they never
 * interleave with what `ws` itself writes (pings, close).
 */
const wire = new WeakMap<Uint8Array, Buffer>();

export function framed(bytes: Uint8Array): Buffer {
  let frame = wire.get(bytes);
  if (!frame) {
    const n = bytes.byteLength;
    const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
    frame = Buffer.allocUnsafe(header + n);
    frame[0] = 0x82;
    if (n < 126) frame[1] = n;
    else if (n < 65536) {
      frame[1] = 126;
      frame.writeUInt16BE(n, 2);
    } else {
      frame[1] = 127;
      frame.writeBigUInt64BE(BigInt(n), 2);
    }
    frame.set(bytes, header);
    wire.set(bytes, frame);
  }
  return frame;
}
