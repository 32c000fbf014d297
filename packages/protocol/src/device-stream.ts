/**
 * Disconnect codes of the device stream (docs/stream-protocol.md), for the gateway that sends them
 * and the clients that act on them. The same number is the DisconnectFrame code and, on
 * WebSocket, the close code. `reconnect` says whether a client should connect again (with
 * backoff) or stop until something changes.
 */
export const DISCONNECT = {
  /** The client said goodbye or the server ended the session normally. */
  normal: { code: 4000, reason: "normal", reconnect: false },
  /** The first frame was not a valid hello, or a frame could not be decoded too often. */
  badFrame: { code: 4001, reason: "bad frame", reconnect: false },
  /** The token is missing, malformed or not accepted: get a new one before reconnecting. */
  authFailed: { code: 4002, reason: "authentication failed", reconnect: false },
  /** The token expired during the session: reconnect with a fresh token. */
  authExpired: { code: 4003, reason: "token expired", reconnect: true },
  /** A newer connection of the same device took this one's place (MAX_CONNECTIONS_PER_DEVICE). */
  replaced: { code: 4004, reason: "replaced by a newer connection", reconnect: false },
  /** The device did not read fast enough and its send queue overflowed: reconnect and resume. */
  slow: { code: 4005, reason: "too slow", reconnect: true },
  /** The device kept sending beyond its rate for too long: reconnect after a pause. */
  rateLimited: { code: 4006, reason: "rate limited", reconnect: true },
  /** The gateway is shutting down: reconnect (to another instance) and resume. */
  shutdown: { code: 4007, reason: "server shutting down", reconnect: true },
  /** Nothing arrived from the device within CONNECTION_TIMEOUT_SEC. */
  timeout: { code: 4008, reason: "connection timed out", reconnect: true },
  /** Something failed on the server side: reconnect and resume. */
  internal: { code: 4009, reason: "internal error", reconnect: true },
  /**
   * The gateway holds as many connections as it may (MAX_CONNECTIONS): reconnect after the
   * `retry_after_ms` the disconnect frame gives (jittered), to this gateway or another.
   */
  full: { code: 4010, reason: "gateway full", reconnect: true },
} as const;

export type Disconnect = (typeof DISCONNECT)[keyof typeof DISCONNECT];

/** The JSON subprotocol of /ws; without it, frames are binary protobuf. */
export const JSON_PROTOCOL = "json";
