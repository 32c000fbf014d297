import { until } from "@service-chat/testing/until";
import { afterEach, describe, expect, it } from "vitest";
import type { ConnectionInfo, ConnectionRegistry } from "../src/registry/ports.js";

/**
 * The contract every connection registry passes. `open` makes a registry; when `shared`, every
 * registry it opens is on the same store (as several gateways on one Redis are), else each is its own.
 * Tests keep apart by using profile ids of their own.
 */
export interface Backend {
  open(): Promise<ConnectionRegistry>;
  shared?: boolean;
}

const LONG = 60_000;
const SHORT = 300;
/** Lets time pass: a TTL is what these tests are about. */
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

/**
 * Runs a check that needs something observed before a TTL ends with that TTL, then twice it, and
 * so on, until the machine was quick enough for the observation to mean something (`attempt`
 * answers false when it was not): a paused machine costs time, not a failed test.
 */
async function withTtl(first: number, attempt: (ttl: number) => Promise<boolean>): Promise<void> {
  for (let ttl = first; ttl <= first * 64; ttl *= 2) if (await attempt(ttl)) return;
  throw new Error(`every TTL up to ${first * 64} ms ended before the machine could look`);
}

let counter = 0;
/** A fresh profile id, with the ':' and '@' real ids may have. */
const profile = () => `p:${process.pid}:${Date.now()}:${counter++}@example.com`;

function conn(profileId: string, deviceId: string, fields: Partial<ConnectionInfo> = {}): ConnectionInfo {
  const now = Date.now();
  return {
    connectionId: `c:${profileId}:${deviceId}:${counter++}`,
    profileId,
    deviceId,
    gatewayId: "gw-1",
    connectedAt: now,
    lastHeartbeat: now,
    ...fields,
  };
}

export function registryContract(name: string, backend: Backend): void {
  describe(`${name}: connection registry`, () => {
    const opened: ConnectionRegistry[] = [];
    afterEach(async () => {
      for (const r of opened.splice(0)) await r.close().catch(() => {});
    });
    const open = async () => {
      const r = await backend.open();
      opened.push(r);
      return r;
    };

    it("answers a ping while its backend is reachable (readiness)", async () => {
      const reg = await open();
      await expect(reg.ping()).resolves.toBeUndefined();
    });

    it("lists a device's connections, oldest first, and only that device's", async () => {
      const reg = await open();
      const p = profile();
      const t = Date.now();
      const [a, b, c] = [3000, 2000, 1000].map((ago) => conn(p, "d1", { connectedAt: t - ago }));
      const otherDevice = conn(p, "d2");
      const otherProfile = conn(profile(), "d1");
      // Ids that would collide if joined into a key with ':' unescaped: (p:x, y) and (p, x:y).
      const colonProfile = conn(`${p}:x`, "y");
      const colonDevice = conn(p, "x:y");
      for (const x of [b!, c!, a!, otherDevice, otherProfile, colonProfile, colonDevice]) await reg.register(x, LONG);

      expect(await reg.deviceConnections(p, "d1")).toEqual([a, b, c]);
      expect(await reg.deviceConnections(p, "d2")).toEqual([otherDevice]);
      expect(await reg.deviceConnections(`${p}:x`, "y")).toEqual([colonProfile]);
      expect(await reg.deviceConnections(p, "x:y")).toEqual([colonDevice]);
      expect(await reg.deviceConnections(p, "d3")).toEqual([]);
      expect(await reg.deviceConnections(profile(), "d1")).toEqual([]);
    });

    it("answers, on register, how many connections the device has now, counting the new one", async () => {
      const reg = await open();
      const p = profile();
      const [a, b] = [conn(p, "d1"), conn(p, "d1")];
      expect(await reg.register(a, LONG)).toBe(1);
      expect(await reg.register(conn(p, "d2"), LONG)).toBe(1);
      expect(await reg.register(b, LONG)).toBe(2);
      expect(await reg.register({ ...a, lastHeartbeat: Date.now() }, LONG)).toBe(2); // a refresh adds none
      await reg.remove(a);
      expect(await reg.register({ ...b, lastHeartbeat: Date.now() }, LONG)).toBe(1);
    });

    it("registers and removes many connections asked for at once (a burst of connects), each counted in order", async () => {
      const reg = await open();
      const p = profile();
      const t = Date.now();
      const same = Array.from({ length: 5 }, (_, i) => conn(p, "d1", { connectedAt: t + i }));
      const others = Array.from({ length: 40 }, (_, i) => conn(p, `d-${i}`));
      const counts = await Promise.all([...same, ...others].map((c) => reg.register(c, LONG)));
      expect(counts).toEqual([1, 2, 3, 4, 5, ...others.map(() => 1)]);
      expect((await reg.deviceConnections(p, "d1")).map((c) => c.connectionId)).toEqual(
        same.map((c) => c.connectionId),
      );
      await Promise.all([...same.slice(0, 4), ...others].map((c) => reg.remove(c)));
      expect((await reg.deviceConnections(p, "d1")).map((c) => c.connectionId)).toEqual([same[4]!.connectionId]);
      expect(await reg.deviceConnections(p, "d-7")).toEqual([]);
      expect(await reg.online([p])).toEqual(new Set([p]));
    });

    it("answers exactly the profiles with a live connection", async () => {
      const reg = await open();
      const [many, one, never] = [profile(), profile(), profile()];
      await reg.register(conn(many, "d1"), LONG);
      await reg.register(conn(many, "d1"), LONG);
      await reg.register(conn(many, "d2"), LONG);
      await reg.register(conn(one, "d1"), LONG);

      expect(await reg.online([many, one, never])).toEqual(new Set([many, one]));
      expect(await reg.online([one, one])).toEqual(new Set([one]));
      expect(await reg.online([never])).toEqual(new Set());
      expect(await reg.online([])).toEqual(new Set());
    });

    it("refreshes many registrations at once (a tick's heartbeats): each lives longer, its heartbeat moved", async () => {
      await withTtl(SHORT, async (ttl) => {
        const reg = await open();
        const [p, q] = [profile(), profile()];
        const a = conn(p, "d1");
        const b = conn(q, "d1");
        await reg.register(a, ttl);
        await reg.register(b, ttl);
        const registered = Date.now();
        await sleepUntil(registered + ttl / 2);
        const refreshing = Date.now();
        await reg.refresh(
          [
            { ...a, lastHeartbeat: refreshing },
            { ...b, lastHeartbeat: refreshing },
          ],
          ttl,
        );

        await sleepUntil(registered + ttl + 30); // past the registrations' end, before the refresh's
        const online = await reg.online([p, q]);
        const connections = await reg.deviceConnections(p, "d1");
        const lastSeen = await reg.lastSeen([p, q]);
        if (Date.now() >= refreshing + ttl) return false;
        expect(online).toEqual(new Set([p, q]));
        expect(connections).toEqual([{ ...a, lastHeartbeat: refreshing }]);
        expect(lastSeen).toEqual(
          new Map([
            [p, refreshing],
            [q, refreshing],
          ]),
        );
        await until("the refreshed registrations to end", async () => (await reg.online([p, q])).size === 0);
        return true;
      });
    });

    it("never brings back with a refresh a connection removed meanwhile, nor adds one never registered", async () => {
      const reg = await open();
      const [p, q] = [profile(), profile()];
      const gone = conn(p, "d1");
      await reg.register(gone, LONG);
      await reg.remove(gone);
      const stranger = conn(q, "d1");
      await reg.refresh([{ ...gone, lastHeartbeat: Date.now() }, stranger], LONG);
      await reg.refresh([], LONG);
      expect(await reg.online([p, q])).toEqual(new Set());
      expect(await reg.deviceConnections(p, "d1")).toEqual([]);
      expect(await reg.deviceConnections(q, "d1")).toEqual([]);
    });

    it("refreshes a tick of 1,200 heartbeats, first to last, but none removed meanwhile", async () => {
      const reg = await open();
      const all = Array.from({ length: 1_200 }, () => conn(profile(), "d1"));
      await Promise.all(all.map((c) => reg.register(c, LONG)));
      const gone = all[700] as ConnectionInfo;
      await reg.remove(gone);
      const beat = Date.now() + 1;
      await reg.refresh(
        all.map((c) => ({ ...c, lastHeartbeat: beat })),
        LONG,
      );
      for (const c of [all[0], all[499], all[500], all[1_199]] as ConnectionInfo[]) {
        expect(await reg.deviceConnections(c.profileId, "d1")).toEqual([{ ...c, lastHeartbeat: beat }]);
      }
      expect(await reg.deviceConnections(gone.profileId, "d1")).toEqual([]);
      expect(await reg.online([gone.profileId])).toEqual(new Set());
    });

    it("refreshing a registration extends its life and updates its heartbeat", async () => {
      await withTtl(SHORT, async (ttl) => {
        const reg = await open();
        const p = profile();
        const c = conn(p, "d1");
        await reg.register(c, ttl);
        const registered = Date.now(); // the first registration ends by registered + ttl
        await sleepUntil(registered + ttl / 2);
        const refreshing = Date.now(); // the refreshed one ends no sooner than refreshing + ttl
        const refreshed = { ...c, lastHeartbeat: refreshing };
        await reg.register(refreshed, ttl);

        await sleepUntil(registered + ttl + 30); // past the first registration's end, before the refresh's
        const connections = await reg.deviceConnections(p, "d1");
        const online = await reg.online([p]);
        const lastSeen = await reg.lastSeen([p]);
        if (Date.now() >= refreshing + ttl) return false;
        expect(connections).toEqual([refreshed]);
        expect(online).toEqual(new Set([p]));
        expect(lastSeen).toEqual(new Map([[p, refreshed.lastHeartbeat]]));

        await until("the refreshed registration to end", async () => (await reg.online([p])).size === 0);
        expect(await reg.deviceConnections(p, "d1")).toEqual([]);
        return true;
      });
    });

    it("forgets a connection once its TTL passes without a refresh, as when its gateway dies", async () => {
      await withTtl(SHORT, async (ttl) => {
        const reg = await open();
        const [mixed, dead, left] = [profile(), profile(), profile()];
        const gone = conn(mixed, "d1", { gatewayId: "gw-dead", connectedAt: Date.now() - 1000 });
        const kept = conn(mixed, "d1");
        const alone = conn(dead, "d1", { gatewayId: "gw-dead" });
        // A long-lived connection that leaves cleanly must not keep a dead one alive.
        const leaving = conn(left, "d1");
        const stranded = conn(left, "d1", { gatewayId: "gw-dead" });
        const start = Date.now(); // no short registration ends before start + ttl
        await reg.register(gone, ttl);
        await reg.register(alone, ttl);
        await reg.register(kept, LONG);
        await reg.register(leaving, LONG);
        await reg.register(stranded, ttl);
        await reg.remove(leaving);
        const connections = await reg.deviceConnections(mixed, "d1");
        const online = await reg.online([mixed, dead, left]);
        if (Date.now() >= start + ttl) return false;
        expect(connections).toEqual([gone, kept]);
        expect(online).toEqual(new Set([mixed, dead, left]));

        await until("the short registrations to end", async () => (await reg.online([dead, left])).size === 0);
        await until("the mixed device's short one to end", async () =>
          (await reg.deviceConnections(mixed, "d1")).every((x) => x.connectionId !== gone.connectionId),
        );
        expect(await reg.deviceConnections(mixed, "d1")).toEqual([kept]);
        expect(await reg.deviceConnections(dead, "d1")).toEqual([]);
        expect(await reg.deviceConnections(left, "d1")).toEqual([]);
        expect(await reg.online([mixed, dead, left])).toEqual(new Set([mixed]));
        expect(await reg.lastSeen([dead])).toEqual(new Map([[dead, alone.lastHeartbeat]]));
        return true;
      });
    });

    it("removes a connection at once and keeps when its profile was last seen", async () => {
      const reg = await open();
      const p = profile();
      const a = conn(p, "d1", { lastHeartbeat: Date.now() - 5000 });
      const b = conn(p, "d2", { lastHeartbeat: Date.now() - 5000 });
      await reg.register(a, LONG);
      await reg.register(b, LONG);

      await reg.remove(a);
      expect(await reg.deviceConnections(p, "d1")).toEqual([]);
      expect(await reg.deviceConnections(p, "d2")).toEqual([b]);
      expect(await reg.online([p])).toEqual(new Set([p]));

      await reg.remove(b);
      const after = Date.now();
      expect(await reg.deviceConnections(p, "d2")).toEqual([]);
      expect(await reg.online([p])).toEqual(new Set());
      const seen = (await reg.lastSeen([p])).get(p);
      expect(seen).toBeGreaterThanOrEqual(b.lastHeartbeat);
      expect(seen).toBeLessThanOrEqual(after);

      await reg.remove(b); // removing twice is harmless
      expect(await reg.online([p])).toEqual(new Set());
    });

    it("forgets a profile: its connections and when it was last seen, no one else's", async () => {
      const reg = await open();
      const [p, q] = [profile(), profile()];
      await reg.register(conn(p, "d1"), LONG);
      await reg.register(conn(p, "d2"), LONG);
      const other = conn(q, "d1");
      await reg.register(other, LONG);

      await reg.forget(p);
      expect(await reg.deviceConnections(p, "d1")).toEqual([]);
      expect(await reg.deviceConnections(p, "d2")).toEqual([]);
      expect(await reg.online([p, q])).toEqual(new Set([q]));
      expect(await reg.lastSeen([p, q])).toEqual(new Map([[q, other.lastHeartbeat]]));
      await reg.forget(p); // forgetting twice is harmless
    });

    it("answers when profiles were last seen: their latest heartbeat, nothing if never", async () => {
      const reg = await open();
      const [p, q, never] = [profile(), profile(), profile()];
      const t = Date.now();
      const a = conn(p, "d1", { lastHeartbeat: t - 5000 });
      await reg.register(a, LONG);
      await reg.register({ ...a, lastHeartbeat: t - 1000 }, LONG);
      await reg.register(conn(p, "d2", { lastHeartbeat: t - 2000 }), LONG); // older than d1's: not the latest
      await reg.register(conn(q, "d1", { lastHeartbeat: t - 3000 }), LONG);

      expect(await reg.lastSeen([p, q, never])).toEqual(
        new Map([
          [p, t - 1000],
          [q, t - 3000],
        ]),
      );
      expect(await reg.lastSeen([])).toEqual(new Map());
    });

    it.runIf(backend.shared)("lets registries on the same store see each other's connections", async () => {
      const one = await open();
      const two = await open();
      const p = profile();
      const a = conn(p, "d1", { gatewayId: "gw-1", connectedAt: Date.now() - 1000 });
      const b = conn(p, "d1", { gatewayId: "gw-2" });
      await one.register(a, LONG);
      await two.register(b, LONG);

      for (const reg of [one, two]) {
        expect(await reg.deviceConnections(p, "d1")).toEqual([a, b]);
        expect(await reg.online([p])).toEqual(new Set([p]));
        expect(await reg.lastSeen([p])).toEqual(new Map([[p, b.lastHeartbeat]]));
      }

      await two.remove(a);
      expect(await one.deviceConnections(p, "d1")).toEqual([b]);
      await one.remove(b);
      expect(await two.online([p])).toEqual(new Set());
    });
  });
}
