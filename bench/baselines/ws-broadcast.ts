/**
 * The baseline of the fan-out and idle-connection scenarios: a minimal WebSocket broadcast
 * server on the `ws` library, nothing else. Every connection is a receiver, except one on
 * `/send`, whose frames are written as they are to every receiver. Prints its port over IPC.
 */
import type { AddressInfo } from "node:net";
import type WebSocket from "ws";
import { WebSocketServer } from "ws";

const receivers = new Set<WebSocket>();
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });

wss.on("connection", (ws, req) => {
  if (req.url === "/send") {
    ws.on("message", (data: Buffer) => {
      for (const r of receivers) r.send(data, { binary: true });
    });
    return;
  }
  receivers.add(ws);
  ws.on("close", () => receivers.delete(ws));
  ws.on("error", () => receivers.delete(ws));
});

wss.on("listening", () => {
  process.send?.({ listening: (wss.address() as AddressInfo).port });
});

const stop = () => {
  for (const ws of receivers) ws.terminate();
  wss.close(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
