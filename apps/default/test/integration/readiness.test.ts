import type { AddressInfo } from "node:net";
import net from "node:net";
import { startTestApp, type TestApp, until } from "@service-chat/testing";
import { afterAll, describe, expect, it } from "vitest";

/** A TCP relay to `port` that can be cut (every connection dropped, new ones refused) and restored. */
async function cuttableProxy(port: number) {
  let open = true;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (!open) return client.destroy();
    const upstream = net.connect(port, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const readyz = async (t: TestApp) => {
  const res = await fetch(`${t.httpUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, string> } };
};

const apps: TestApp[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const a of apps.splice(0)) await a.stop().catch(() => {});
  for (const c of cleanups.splice(0)) await c();
});

// The order on shutdown (503 first, devices told to move after the wait) is checked on a process of
// its own, with real signals: test/e2e/process.test.ts.
describe("/readyz", () => {
  it("reports each dependency and turns 503 while the registry is unreachable, 200 once it is back", async () => {
    const redis = await cuttableProxy(6379);
    cleanups.push(redis.close);
    const t = await startTestApp({ CACHE_URI: `redis://127.0.0.1:${redis.port}` });
    apps.push(t);
    expect(await readyz(t)).toEqual({
      status: 200,
      body: { status: "ready", checks: { database: "ok", queue: "ok", registry: "ok" } },
    });
    redis.cut();
    const down = await until("readiness to go down", async () => {
      const r = await readyz(t);
      return r.status === 503 && r;
    });
    expect(down.body.checks.database).toBe("ok");
    expect(down.body.checks.registry).not.toBe("ok");
    expect(down.body).toMatchObject({ status: "not ready" });
    redis.restore();
    await until("readiness to come back", async () => (await readyz(t)).status === 200);
  });

  it("in a gateway-only process, checks the Default Service it forwards to", async () => {
    const service = await startTestApp();
    apps.push(service);
    const gateway = await startTestApp({ SERVICES: "gateway", CHAT_SERVICE_URI: service.grpcUrl });
    apps.push(gateway);
    expect(await readyz(gateway)).toEqual({
      status: 200,
      body: { status: "ready", checks: { queue: "ok", registry: "ok", chat_service: "ok" } },
    });
    await service.stop();
    apps.splice(apps.indexOf(service), 1);
    const down = await until("the gateway to report the Default Service gone", async () => {
      const r = await readyz(gateway);
      return r.status === 503 && r;
    });
    expect(down.body.checks).toMatchObject({ queue: "ok", registry: "ok" });
    expect(down.body.checks.chat_service).not.toBe("ok");
  });
});
