import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startService } from "@service-chat/testing";
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
