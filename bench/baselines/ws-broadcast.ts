/**
 * The baseline of the fan-out and idle-connection scenarios: a minimal WebSocket broadcast
 * server on the `ws` library, nothing else. Every connection is a receiver, except those on
 * `/send`, whose frames are written as they are to every receiver (`/send?to=N`: to the first N
 * to have connected, a room of N). A receiver's own frames (the idle devices' pings) are each
 * answered with a `pong{server_time}` frame, as a gateway answers a ping. Prints its port over IPC.
 */
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ServerFrameSchema } from "@service-chat/api";
import type WebSocket from "ws";
import { WebSocketServer } from "ws";

const receivers = new Set<WebSocket>();
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });

let pong = { at: -1, bytes: new Uint8Array() };
function pongNow(): Uint8Array {
  const at = Date.now();
  if (pong.at !== at) {
    const frame = create(ServerFrameSchema, { frame: { case: "pong", value: { serverTime: timestampFromMs(at) } } });
    pong = { at, bytes: toBinary(ServerFrameSchema, frame) };
  }
  return pong.bytes;
}

wss.on("connection", (ws, req) => {
  const url = new URL(req.url ?? "/", "http://x");
  if (url.pathname === "/send") {
    const to = Number(url.searchParams.get("to") ?? Number.POSITIVE_INFINITY);
    ws.on("message", (data: Buffer) => {
      let n = 0;
      for (const r of receivers) {
        if (n++ >= to) break;
        r.send(data, { binary: true });
      }
    });
    return;
  }
  receivers.add(ws);
  ws.on("message", () => ws.send(pongNow(), { binary: true }));
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
