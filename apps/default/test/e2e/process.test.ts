import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startService, until, wsDevice } from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

// `npm start`'s entry point as a process of its own, on its default kind of database: an embedded
// PGlite in a folder (the cluster test runs processes on the PostgreSQL server).
let dir: string;
let dbUri: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "chat-process-"));
  dbUri = `pglite://${join(dir, "data")}`;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const start = () => startService("the service", { DB_URI: dbUri, LOG_LEVEL: "warn" });

async function post(base: string, token: string, method: string, body: unknown) {
  const res = await fetch(`${base}/chat.v1.ChatService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return (await res.json()) as Record<string, any>;
}

async function devToken(base: string, sub: string): Promise<string> {
  const res = await fetch(`${base}/dev/token`, { method: "POST", body: JSON.stringify({ sub }) });
  return ((await res.json()) as { token: string }).token;
}

it("starts, prints what to do next, keeps data across a restart, and stops cleanly on SIGTERM", async () => {
  const first = await start();
  expect(first.output()).toContain("npm run token -- alice");
  const { room } = await post(first.httpUrl, await devToken(first.httpUrl, "alice"), "CreateRoom", {
    name: "kept",
    type: "ROOM_TYPE_GROUP",
  });
  expect(await first.stop()).toBe(0);

  const second = await start();
  // The development signer's key lives in memory: a restarted service needs a new token.
  const { room: found } = await post(second.httpUrl, await devToken(second.httpUrl, "alice"), "GetRoom", {
    roomId: room.id,
  });
  expect(found.name).toBe("kept");
  expect(await second.stop()).toBe(0);
});

it("on SIGTERM answers /readyz 503 while devices are still served, and a second SIGTERM ends that wait", async () => {
  // A wait no test would sit through: only the second signal can end it.
  const service = await startService("the draining service", {
    DB_URI: "pglite://memory",
    SHUTDOWN_UNREADY_SEC: "300",
    LOG_LEVEL: "info",
  });
  const token = await devToken(service.httpUrl, "alice");
  const device = await wsDevice(service.httpUrl, { case: "hello", value: { token, deviceId: "d1" } });
  await device.waitFor((f) => f.frame.case === "welcome");
  let closed = false;
  void device.closed.then(() => (closed = true));

  service.child.kill("SIGTERM");
  const unready = await until("/readyz to answer 503", async () => {
    const res = await fetch(`${service.httpUrl}/readyz`);
    const body = (await res.json()) as { checks: Record<string, string> };
    return res.status === 503 && body;
  });
  expect(unready.checks.process).toBe("draining");
  // Not ready, yet still serving: the device was not told to move and still gets answers.
  device.send({ requestId: "still-served", frame: { case: "ping", value: {} } });
  await device.waitFor((f) => f.requestId === "still-served" && f.frame.case === "pong");
  expect(closed).toBe(false);

  service.child.kill("SIGTERM");
  expect((await device.closed).code).toBe(4007);
  expect(await service.exited).toBe(0);
  expect(service.output()).toContain("the wait before draining is cut short");
});
