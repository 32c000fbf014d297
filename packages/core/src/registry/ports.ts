/**
 * The connection registry: which devices are connected, through which gateway, and since when.
 * Shared by every gateway (Redis) or in process (memory). Entries live for a TTL refreshed by
 * heartbeats, so a gateway that dies takes its entries with it within one TTL.
 */
export interface ConnectionInfo {
  connectionId: string;
  profileId: string;
  deviceId: string;
  gatewayId: string;
  /** Unix ms. */
  connectedAt: number;
  /** Unix ms. */
  lastHeartbeat: number;
}

export interface ConnectionRegistry {
  /**
   * Adds or refreshes a connection; it disappears `ttlMs` after its last refresh. Answers how many
   * connections its device has now, counting it (possibly also some that just expired): only
   * above the limit does the caller need `deviceConnections`.
   */
  register(connection: ConnectionInfo, ttlMs: number): Promise<number>;
  /**
   * Refreshes connections already registered (the heartbeats of one gateway tick, all in one round
   * trip): each lives `ttlMs` more and its `lastHeartbeat` moves, as `register` would do. A
   * connection no longer registered (removed, or expired) is left out, never brought back.
   */
  refresh(connections: readonly ConnectionInfo[], ttlMs: number): Promise<void>;
  /** Removes a connection at once (clean disconnect); the profile's last-seen time is kept. */
  remove(connection: Pick<ConnectionInfo, "connectionId" | "profileId" | "deviceId">): Promise<void>;
  /** The live connections of one device, oldest first. */
  deviceConnections(profileId: string, deviceId: string): Promise<ConnectionInfo[]>;
  /** Which of these profiles have at least one live connection. */
  online(profileIds: readonly string[]): Promise<Set<string>>;
  /** When each profile was last seen connected (unix ms); absent if never. */
  lastSeen(profileIds: readonly string[]): Promise<Map<string, number>>;
  /** Resolves when the backend answers a round trip now; rejects (or hangs) while it cannot. For /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Forgets a profile (its erasure): every connection of it and when it was last seen. */
  forget(profileId: string): Promise<void>;
}
