import { type Client, ConnectError } from "@connectrpc/connect";
import type { AckEvent, ChatService, RoomEvent } from "@service-chat/api";
import { backoff, errorCode, isPermanent } from "./retry.js";
import { type ChatClientOptions, ChatError, type SendRetry } from "./types.js";

/** How long to wait before sending again an event the server could not store (`code`), on try `attempt` (0: the first retry). */
export function sendDelay(code: string, attempt: number, o: ChatClientOptions): number {
  // Over the rate: the budget refills steadily, so wait about a second each time (growing would
  // only delay a busy sender that the server would take again a moment later).
  if (code === "resource_exhausted") return 1000 + Math.round(500 * Math.random());
  return backoff(attempt, o.minSendRetryMs ?? 250, o.maxSendRetryMs ?? 10_000);
}

/**
 * Sends one event by SendEvent calls, one at a time, repeated with the same client id until it is
 * stored (its ack) or refused for good (ChatError); each retry is told to `retrying` first.
 */
export async function sendByCall(
  api: Client<typeof ChatService>,
  event: RoomEvent,
  o: ChatClientOptions,
  retrying: (retry: SendRetry) => void,
): Promise<AckEvent> {
  for (let attempt = 0; ; attempt++) {
    let err: ChatError;
    try {
      const { ack } = await api.sendEvent({ event: [event] });
      const a = ack[0];
      if (a && !a.error) return a;
      err = a?.error
        ? new ChatError(a.error.code, a.error.message)
        : new ChatError("internal", "no answer for the event");
    } catch (e) {
      err = new ChatError(errorCode(e), e instanceof ConnectError ? e.rawMessage : String(e));
    }
    if (isPermanent(err.code)) throw err;
    const delayMs = sendDelay(err.code, attempt, o);
    retrying({
      clientId: event.clientId,
      roomId: event.roomId,
      code: err.code,
      message: err.message,
      attempt: attempt + 1,
      delayMs,
    });
    await new Promise((r) => setTimeout(r, delayMs));
  }
}
