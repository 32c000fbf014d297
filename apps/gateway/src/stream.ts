import type { HandlerContext } from "@connectrpc/connect";
import type { ClientFrame, ServerFrame } from "@service-chat/api";
import { DISCONNECT } from "./protocol.js";
import type { DeviceSession, Outlet } from "./session.js";

/**
 * GatewayService.Connect over HTTP/2 (gRPC or Connect): the same session as /ws. Frames for the
 * device wait in a queue the HTTP/2 stream drains as fast as the device reads; a queue that grows
 * past the limit means a slow device.
 */
export async function* connectStream(
  requests: AsyncIterable<ClientFrame>,
  ctx: HandlerContext,
  createSession: (outlet: Outlet, headerToken?: string) => DeviceSession,
): AsyncGenerator<ServerFrame> {
  const queue: ServerFrame[] = [];
  let ended = false;
  let wake: () => void = () => {};
  const outlet: Outlet = {
    send(frame) {
      if (ended) return 0;
      queue.push(frame);
      wake();
      return queue.length;
    },
    close() {
      ended = true;
      wake();
    },
  };
  const header = ctx.requestHeader.get("authorization");
  const session = createSession(outlet, header?.replace(/^Bearer\s+/i, "") || undefined);
  ctx.signal.addEventListener("abort", () => outlet.close(DISCONNECT.normal), { once: true });
  void (async () => {
    try {
      for await (const frame of requests) session.receive(frame);
    } catch {
      // the device went away or sent something undecodable: the stream is over
    } finally {
      session.end();
      outlet.close(DISCONNECT.normal);
    }
  })();
  for (;;) {
    const next = queue.shift();
    if (next) {
      yield next;
      continue;
    }
    if (ended) return;
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
  }
}
