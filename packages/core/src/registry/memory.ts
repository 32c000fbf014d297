import type { ConnectionInfo, ConnectionRegistry } from "./ports.js";

/** In-process registry: the embedded default and tests. */
export class MemoryRegistry implements ConnectionRegistry {
  private readonly connections = new Map<string, { info: ConnectionInfo; expires: number }>();
  private readonly seen = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  async register(connection: ConnectionInfo, ttlMs: number): Promise<void> {
    this.connections.set(connection.connectionId, { info: { ...connection }, expires: this.now() + ttlMs });
    this.seen.set(connection.profileId, Math.max(this.seen.get(connection.profileId) ?? 0, connection.lastHeartbeat));
  }

  async remove(connection: Pick<ConnectionInfo, "connectionId" | "profileId">): Promise<void> {
    if (this.connections.delete(connection.connectionId)) this.seen.set(connection.profileId, this.now());
  }

  async deviceConnections(profileId: string, deviceId: string): Promise<ConnectionInfo[]> {
    return this.live()
      .filter((c) => c.profileId === profileId && c.deviceId === deviceId)
      .sort((a, b) => a.connectedAt - b.connectedAt);
  }

  async online(profileIds: readonly string[]): Promise<Set<string>> {
    const wanted = new Set(profileIds);
    return new Set(this.live().flatMap((c) => (wanted.has(c.profileId) ? [c.profileId] : [])));
  }

  async lastSeen(profileIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const p of profileIds) {
      const t = this.seen.get(p);
      if (t !== undefined) out.set(p, t);
    }
    return out;
  }

  async close(): Promise<void> {}

  private live(): ConnectionInfo[] {
    const now = this.now();
    const out: ConnectionInfo[] = [];
    for (const [id, c] of this.connections) {
      if (c.expires <= now) this.connections.delete(id);
      else out.push(c.info);
    }
    return out;
  }
}
