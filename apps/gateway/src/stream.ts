import type { HandlerContext } from "@connectrpc/connect";
import type { ClientFrame, ServerFrame } from "@service-chat/api";
import type { DeviceSession } from "./session/device-session.js";
import type { Sink } from "./session/writer.js";

/**
 * GatewayService.Connect over HTTP/2 (gRPC or Connect): the same session as /ws. Frames for the
 * device wait in a queue the HTTP/2 stream drains as fast as the device reads; the session's
 * writer counts what waits there against its bound.
 */
export async function* connectStream(
  requests: AsyncIterable<ClientFrame>,
  ctx: HandlerContext,
  createSession: (sink: Sink, headerToken?: string) => DeviceSession,
): AsyncGenerator<ServerFrame> {
  const queue: ServerFrame[] = [];
  let ended = false;
  let wake: () => void = () => {};
  const sink: Sink = {
    get open() {
      return !ended;
    },
    backlogged: () => queue.length > 0,
    write(frame, bytes) {
      queue.push(frame);
      wake();
      return bytes?.byteLength;
    },
    end() {
      ended = true;
      wake();
    },
  };
  const header = ctx.requestHeader.get("authorization");
  const session = createSession(sink, header?.replace(/^Bearer\s+/i, "") || undefined);
  const end = () => {
    ended = true;
    wake();
  };
  ctx.signal.addEventListener("abort", end, { once: true });
  void (async () => {
    try {
      for await (const frame of requests) session.receive(frame);
    } catch {
      // the device went away or sent something undecodable: the stream is over
    } finally {
      session.end();
      end();
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
