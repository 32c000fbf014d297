import type { PresenceFrame, ReceiptFrame, Resync, RoomEvent, TypingFrame } from "@service-chat/api";
import type { ChatStore } from "./store.js";

/** The client's settings, its errors and the events it emits (see client.ts). */

export type ConnectionState = "idle" | "connecting" | "live" | "reconnecting" | "closed";

export interface ChatClientOptions {
  /** The gateway's (or embedded server's) HTTP/1.1 address, e.g. http://127.0.0.1:7000. */
  baseUrl: string;
  token?: string;
  /**
   * Called on every (re)connect and call. `refused` is true when the server has just refused the
   * token it returned last (a call answered `unauthenticated`, a session ended as expired or not
   * authenticated): renew it then. The refused call is made once more with the new token.
   */
  getToken?: (info: TokenRequest) => Promise<string>;
  /** The device, when the token carries no device_id claim. */
  deviceId?: string;
  store?: ChatStore;
  /** JSON frames on the WebSocket instead of binary protobuf. */
  json?: boolean;
  /** Reconnect delay: exponential from min (250 ms), capped at max (5 s), full jitter inside the cap. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Delay between attempts of a send the server could not store (transient): from min (250 ms) to max (10 s). */
  minSendRetryMs?: number;
  maxSendRetryMs?: number;
  /** How often acknowledgements are sent (batched). */
  ackIntervalMs?: number;
  /**
   * A new device (its store holds nothing yet) starts each room at most this many events before
   * its end (default 50), and never before its read marker when the unread ones are fewer: older
   * events are for GetHistory. `Infinity` replays everything since the device's user joined.
   */
  newDeviceWindow?: number;
}

export interface TokenRequest {
  /** The server refused the last token: make a new one. */
  refused: boolean;
}

/** A read receipt; `mine` when it is the signed-in user's own (from another device of theirs). */
export type Receipt = ReceiptFrame & { mine: boolean };

/** A refusal or a failure, with the API's error code (invalid_argument, unauthenticated, …). */
export class ChatError extends Error {
  override readonly name = "ChatError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A send that failed for a reason that is not the message's fault; it is tried again after `delayMs`. */
export interface SendRetry {
  clientId: string;
  roomId: string;
  /** The API's code of the failure (`unavailable`, `internal`, …). */
  code: string;
  message: string;
  /** 1 for the first retry. */
  attempt: number;
  delayMs: number;
}

export interface ChatEvents {
  event: RoomEvent;
  retrying: SendRetry;
  receipt: Receipt;
  typing: TypingFrame;
  presence: PresenceFrame;
  resync: Resync;
  state: ConnectionState;
  error: ChatError;
}
