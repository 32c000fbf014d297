/**
 * The framework baseline of the send path: a Connect server — connect-node on a plaintext HTTP/2
 * (h2c) server, as Service Chat's GRPC_PORT is — whose ChatService.SendEvent answers at once with
 * one ack per event, storing nothing. Driven by the same generator with the same calls as
 * "SendEvent ×1, closed loop", it shows what the RPC framework itself costs per call.
 * Prints its port over IPC.
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ChatService } from "@service-chat/api";

let seq = 0n;
const server = http2.createServer(
  connectNodeAdapter({
    routes: (router) =>
      router.service(ChatService, {
        sendEvent: (req) => ({
          ack: req.event.map((e) => ({ eventId: `e${++seq}`, roomId: e.roomId, seq, clientId: e.clientId })),
        }),
      }),
    readMaxBytes: 8 * 1024 * 1024,
  }),
);

server.listen(0, "127.0.0.1", 4096, () => {
  process.send?.({ listening: (server.address() as AddressInfo).port });
});

// Nothing to finish: callers' HTTP/2 sessions need not be waited for.
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
