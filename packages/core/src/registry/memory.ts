import type { ConnectionInfo, ConnectionRegistry } from "./ports.js";

interface Entry {
  info: ConnectionInfo;
  expires: number;
}

/**
 * In-process registry: the embedded default and tests. Connections are indexed by device and by
 * profile, so what a hello or a presence question costs does not grow with the number of devices
 * connected; expired entries are dropped when read.
 */
export class MemoryRegistry implements ConnectionRegistry {
  private readonly connections = new Map<string, Entry>();
  private readonly byDevice = new Map<string, Set<string>>();
  private readonly byProfile = new Map<string, Set<string>>();
  private readonly seen = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  async register(connection: ConnectionInfo, ttlMs: number): Promise<number> {
    const { connectionId, profileId, deviceId } = connection;
    this.connections.set(connectionId, { info: { ...connection }, expires: this.now() + ttlMs });
    index(this.byDevice, deviceKey(profileId, deviceId), connectionId);
    index(this.byProfile, profileId, connectionId);
    this.seen.set(profileId, Math.max(this.seen.get(profileId) ?? 0, connection.lastHeartbeat));
    return this.live(this.byDevice, deviceKey(profileId, deviceId)).length;
  }

  async refresh(connections: readonly ConnectionInfo[], ttlMs: number): Promise<void> {
    const now = this.now();
    for (const c of connections) {
      const entry = this.connections.get(c.connectionId);
      if (!entry || entry.expires <= now) continue;
      entry.info = { ...entry.info, lastHeartbeat: c.lastHeartbeat };
      entry.expires = now + ttlMs;
      this.seen.set(c.profileId, Math.max(this.seen.get(c.profileId) ?? 0, c.lastHeartbeat));
    }
  }

  async remove(connection: Pick<ConnectionInfo, "connectionId" | "profileId" | "deviceId">): Promise<void> {
    if (this.drop(connection)) this.seen.set(connection.profileId, this.now());
  }

  async deviceConnections(profileId: string, deviceId: string): Promise<ConnectionInfo[]> {
    return this.live(this.byDevice, deviceKey(profileId, deviceId)).sort((a, b) => a.connectedAt - b.connectedAt);
  }

  async online(profileIds: readonly string[]): Promise<Set<string>> {
    return new Set(profileIds.filter((p) => this.live(this.byProfile, p).length > 0));
  }

  async lastSeen(profileIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const p of profileIds) {
      const t = this.seen.get(p);
      if (t !== undefined) out.set(p, t);
    }
    return out;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  async forget(profileId: string): Promise<void> {
    for (const id of [...(this.byProfile.get(profileId) ?? [])]) {
      const entry = this.connections.get(id);
      if (entry) this.drop(entry.info);
    }
    this.byProfile.delete(profileId);
    this.seen.delete(profileId);
  }

  /** Forgets a connection (its last-seen time stays as it was); answers whether it was known. */
  private drop({ connectionId, profileId, deviceId }: Pick<ConnectionInfo, "connectionId" | "profileId" | "deviceId">) {
    unindex(this.byDevice, deviceKey(profileId, deviceId), connectionId);
    unindex(this.byProfile, profileId, connectionId);
    return this.connections.delete(connectionId);
  }

  /** The unexpired connections under `key` of an index; expired ones leave the registry. */
  private live(byKey: Map<string, Set<string>>, key: string): ConnectionInfo[] {
    const ids = byKey.get(key);
    if (!ids) return [];
    const now = this.now();
    const out: ConnectionInfo[] = [];
    for (const id of ids) {
      const entry = this.connections.get(id);
      if (entry && entry.expires > now) out.push(entry.info);
      else if (entry) this.drop(entry.info);
      else ids.delete(id);
    }
    if (ids.size === 0) byKey.delete(key);
    return out;
  }
}

const deviceKey = (profileId: string, deviceId: string) => `${profileId}\n${deviceId}`;

function index(byKey: Map<string, Set<string>>, key: string, id: string): void {
  const ids = byKey.get(key);
  if (ids) ids.add(id);
  else byKey.set(key, new Set([id]));
}

function unindex(byKey: Map<string, Set<string>>, key: string, id: string): void {
  const ids = byKey.get(key);
  if (ids?.delete(id) && ids.size === 0) byKey.delete(key);
}
