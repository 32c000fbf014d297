import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, freshDatabase, TEST_DB } from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

const ROOT = new URL("../../..", import.meta.url).pathname;

let dir: string;
let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "chat-process-"));
  db = TEST_DB === "pglite" ? { uri: `pglite://${join(dir, "data")}`, drop: async () => {} } : await freshDatabase();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await db.drop();
});

/** Runs `npm start`'s entry point as its own process and waits until it is ready. */
async function start() {
  const [http, grpc] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ["--import", "tsx", "apps/default/src/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, DB_URI: db.uri, HTTP_PORT: String(http), GRPC_PORT: String(grpc), LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const base = `http://127.0.0.1:${http}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { child, base, grpc, output: () => output };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGKILL");
  throw new Error(`service did not become ready:\n${output}`);
}

const stop = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.kill("SIGTERM");
  });

async function post(base: string, token: string, method: string, body: unknown) {
  const res = await fetch(`${base}/chat.v1.ChatService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return (await res.json()) as Record<string, any>;
}

it("starts, prints what to do next, keeps data across a restart, and stops cleanly on SIGTERM", async () => {
  const first = await start();
  expect(first.output()).toContain("npm run token -- alice");
  const { token } = (await (
    await fetch(`${first.base}/dev/token`, { method: "POST", body: '{"sub":"alice"}' })
  ).json()) as {
    token: string;
  };
  const { room } = await post(first.base, token, "CreateRoom", { name: "kept", type: "ROOM_TYPE_GROUP" });
  expect(await stop(first.child)).toBe(0);

  const second = await start();
  // The development signer's key lives in memory: a restarted service needs a new token.
  const { token: again } = (await (
    await fetch(`${second.base}/dev/token`, { method: "POST", body: '{"sub":"alice"}' })
  ).json()) as { token: string };
  const { room: found } = await post(second.base, again, "GetRoom", { roomId: room.id });
  expect(found.name).toBe("kept");
  expect(await stop(second.child)).toBe(0);
}, 60_000);
