import { type RefinementCtx, z } from "zod";

/**
 * The gateway's settings, read from the environment with the rest of the process's config
 * (apps/default/src/config.ts composes this schema into the one validated config object).
 * docs/configuration.md lists each with its default; a new limit goes here, in `limitsOf`, and
 * there.
 */
export const gatewaySettings = z.object({
  GATEWAY_ID: z
    .string()
    .regex(/^[\w.-]{1,64}$/, "must be 1-64 letters, digits, '.', '_' or '-'")
    .optional(),
  HEARTBEAT_INTERVAL_SEC: z.coerce.number().min(0.05).max(600).default(30),
  CONNECTION_TIMEOUT_SEC: z.coerce.number().min(0.1).max(3600).default(90),
  HELLO_TIMEOUT_SEC: z.coerce.number().min(0.05).max(600).default(10),
  MAX_CONNECTIONS_PER_DEVICE: z.coerce.number().int().min(1).max(100).default(1),
  MAX_EVENTS_PER_SECOND: z.coerce.number().int().min(1).max(100_000).default(100),
  RATE_LIMIT_GRACE_SEC: z.coerce.number().min(0).max(3600).default(5),
  MAX_PENDING_SENDS: z.coerce.number().int().min(1).max(100_000).default(1000),
  SEND_QUEUE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(1024 * 1024 * 1024)
    .default(1024 * 1024),
  MAX_FRAME_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(256 * 1024),
  REPLAY_PAGE_SIZE: z.coerce.number().int().min(1).max(1000, "must be at most 1000 (Sync's largest page)").default(500),
  MAX_HELD_FRAMES: z.coerce.number().int().min(100).max(1_000_000).default(10_000),
  SHUTDOWN_GRACE_SEC: z.coerce.number().min(0).max(300).default(10),
  MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(18_000),
  FULL_RETRY_AFTER_SEC: z.coerce.number().min(0).max(3600).default(5),
  /** Retired: the send queue is bounded in bytes now. Refused rather than ignored, so nobody relies on it. */
  SEND_QUEUE_MAX: z
    .never({ errorMap: () => ({ message: "is replaced by SEND_QUEUE_MAX_BYTES (the bound is in bytes now)" }) })
    .optional(),
});

export type GatewaySettings = z.infer<typeof gatewaySettings>;

/** The checks between gateway settings; run by the composed schema's superRefine. */
export function checkGatewaySettings(c: GatewaySettings, ctx: RefinementCtx): void {
  if (c.CONNECTION_TIMEOUT_SEC <= c.HEARTBEAT_INTERVAL_SEC) {
    ctx.addIssue({
      code: "custom",
      path: ["CONNECTION_TIMEOUT_SEC"],
      message: "must be longer than HEARTBEAT_INTERVAL_SEC",
    });
  }
  if (c.SEND_QUEUE_MAX_BYTES < c.MAX_FRAME_BYTES) {
    ctx.addIssue({
      code: "custom",
      path: ["SEND_QUEUE_MAX_BYTES"],
      message: "must be at least MAX_FRAME_BYTES (a device's send queue must hold the largest frame a device may send)",
    });
  }
}

/** What a device session is held to, in the units the code uses. */
export interface Limits {
  heartbeatMs: number;
  /** A device silent this long is disconnected. */
  timeoutMs: number;
  /** How long a new connection has to send its hello. */
  helloTimeoutMs: number;
  maxConnectionsPerDevice: number;
  /** Client frames per second (token bucket); beyond, frames get `error` resource_exhausted. */
  eventsPerSecond: number;
  /** Seconds' worth of frames beyond the rate a device may send before it is disconnected. */
  rateLimitGraceSec: number;
  /** A device's `send` frames not answered yet; beyond, a send is refused (resource_exhausted). */
  maxPendingSends: number;
  /** Bytes written to a device that is not keeping up, before it counts as slow (the writer's bound). */
  sendQueueMaxBytes: number;
  /** Events per Sync page when replaying or filling a gap. */
  replayPageSize: number;
  /** Live frames held while a session replays or fills a gap, before it counts as slow. */
  maxHeldFrames: number;
  /** Device connections this process holds at most; beyond, a new one is refused as `full`. */
  maxConnections: number;
  /** What a refused connection is told to wait before it reconnects. */
  fullRetryAfterMs: number;
}

export function limitsOf(s: GatewaySettings): Limits {
  return {
    heartbeatMs: s.HEARTBEAT_INTERVAL_SEC * 1000,
    timeoutMs: s.CONNECTION_TIMEOUT_SEC * 1000,
    helloTimeoutMs: s.HELLO_TIMEOUT_SEC * 1000,
    maxConnectionsPerDevice: s.MAX_CONNECTIONS_PER_DEVICE,
    eventsPerSecond: s.MAX_EVENTS_PER_SECOND,
    rateLimitGraceSec: s.RATE_LIMIT_GRACE_SEC,
    maxPendingSends: s.MAX_PENDING_SENDS,
    sendQueueMaxBytes: s.SEND_QUEUE_MAX_BYTES,
    replayPageSize: s.REPLAY_PAGE_SIZE,
    maxHeldFrames: s.MAX_HELD_FRAMES,
    maxConnections: s.MAX_CONNECTIONS,
    fullRetryAfterMs: s.FULL_RETRY_AFTER_SEC * 1000,
  };
}
