import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import { ClientFrameSchema, ServerFrameSchema } from "@service-chat/api";
import { WebSocketServer } from "ws";
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
  wss.on("connection", (ws, req: IncomingMessage) => {
    const json = ws.protocol === JSON_PROTOCOL;
    // Frames waiting: counted from the moment the socket stops taking data at once (the device
    // reads slower than we write) until everything buffered has gone out.
    let waiting = 0;
    const outlet: Outlet = {
      send(frame, bytes) {
        if (ws.readyState !== ws.OPEN) return 0;
        if (ws.bufferedAmount === 0) waiting = 0;
        const data = json ? toJsonString(ServerFrameSchema, frame) : (bytes ?? toBinary(ServerFrameSchema, frame));
        ws.send(data, { binary: !json });
        if (ws.bufferedAmount > 0) waiting++;
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
  });
  return {
    /** Takes over an HTTP upgrade to /ws; answers false for other paths. */
    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
      if ((req.url ?? "").split("?")[0] !== "/ws") return false;
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
      return true;
    },
    close: () => new Promise<void>((resolve) => wss.close(() => resolve())),
  };
}
