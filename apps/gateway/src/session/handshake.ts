import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { type Hello, type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import {
  AppError,
  type Authenticator,
  type ConnectionInfo,
  type ConnectionRegistry,
  type Identity,
} from "@service-chat/core";
import { DISCONNECT, type Disconnect } from "@service-chat/protocol";
import type { Limits } from "../config.js";
import type { LiveHub } from "../hub.js";

/** Who is on the other end, once the hello is accepted. */
export interface Device {
  identity: Identity;
  profileId: string;
  deviceId: string;
  /** The bearer token every call on the device's behalf carries. */
  token: string;
}

export type Admission = { device: Device } | { refused: Disconnect; detail?: string };

/**
 * Checks a hello: a token (the transport's Authorization header first, else hello.token) that the
 * authenticator accepts and that has not expired, and a device id (the token's claim, else the
 * hello's: 1-128 characters, no spaces).
 */
export async function admit(auth: Authenticator, hello: Hello, headerToken?: string): Promise<Admission> {
  const token = headerToken || hello.token;
  if (!token) {
    return {
      refused: DISCONNECT.authFailed,
      detail: "no token: send it in the Authorization header or in hello.token",
    };
  }
  let identity: Identity;
  try {
    identity = await auth.verify(token);
  } catch (err) {
    return { refused: DISCONNECT.authFailed, detail: err instanceof AppError ? err.message : "token not accepted" };
  }
  const deviceId = identity.deviceId || hello.deviceId;
  if (!deviceId || deviceId.length > 128 || /\s/.test(deviceId)) {
    return {
      refused: DISCONNECT.badFrame,
      detail: "hello.device_id: needed (1-128 characters, no spaces) when the token has none",
    };
  }
  if (identity.expiresAt !== undefined && identity.expiresAt <= Date.now()) return { refused: DISCONNECT.authExpired };
  return { device: { identity, profileId: identity.profileId, deviceId, token } };
}

export interface Registration {
  registry: ConnectionRegistry;
  hub: LiveHub;
  limits: Pick<Limits, "heartbeatMs" | "maxConnectionsPerDevice">;
}

/** A registry entry lives three heartbeats past its last refresh. */
const ttl = (r: Pick<Registration, "limits">) => r.limits.heartbeatMs * 3;

/**
 * Registers the connection (at hello; each heartbeat refreshes it), and closes this device's oldest
 * connections beyond the limit, wherever they are. Answers false when this connection is itself
 * beyond it: a newer one of the device registered meanwhile (connects that race), so this one
 * must end as replaced. Every connection registers before it looks, and all see the registry's
 * one order (oldest first), so whatever the interleaving only the newest `max` stay.
 */
export async function register(r: Registration, connection: ConnectionInfo): Promise<boolean> {
  const count = await r.registry.register(connection, ttl(r));
  const max = r.limits.maxConnectionsPerDevice;
  if (count <= max) return true;
  const mine = await r.registry.deviceConnections(connection.profileId, connection.deviceId);
  let kept = true;
  for (const old of mine.slice(0, Math.max(0, mine.length - max))) {
    if (old.connectionId === connection.connectionId) kept = false;
    else r.hub.replace(old.connectionId, old.gatewayId);
  }
  return kept;
}

/** Keeps these connections (the heartbeats of one tick) in the registry for another three heartbeats, in one round trip. */
export async function refresh(
  r: Pick<Registration, "registry" | "limits">,
  connections: readonly ConnectionInfo[],
): Promise<void> {
  await r.registry.refresh(connections, ttl(r));
}

export function welcome(sessionId: string, heartbeatMs: number): ServerFrame {
  return create(ServerFrameSchema, {
    frame: {
      case: "welcome",
      value: { sessionId, heartbeatIntervalSec: Math.round(heartbeatMs / 1000), serverTime: timestampNow() },
    },
  });
}
