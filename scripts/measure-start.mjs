#!/usr/bin/env node
// Measures a service process from spawn to its first 200 on /readyz, and its RSS once ready
// (and again after 5 s idle). Usage: node scripts/measure-start.mjs [--runs=N] -- CMD ARGS...
// The process gets free ports and the caller's environment; it is stopped with SIGTERM after.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

const args = process.argv.slice(2);
const sep = args.indexOf("--");
const runs = Number(args.find((a) => a.startsWith("--runs="))?.slice(7) ?? 1);
const cmd = args.slice(sep + 1);
if (sep < 0 || cmd.length === 0) {
  console.error("usage: node scripts/measure-start.mjs [--runs=N] -- CMD ARGS...");
  process.exit(2);
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);

for (let i = 0; i < runs; i++) {
  const [http, grpc] = [await freePort(), await freePort()];
  const started = performance.now();
  const child = spawn(cmd[0], cmd.slice(1), {
    env: { ...process.env, HTTP_PORT: String(http), GRPC_PORT: String(grpc), LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  let ready = 0;
  while (!ready && child.exitCode === null) {
    const res = await fetch(`http://127.0.0.1:${http}/readyz`).catch(() => undefined);
    if (res?.ok) ready = performance.now() - started;
    else await sleep(20);
  }
  if (!ready) {
    console.error(`exited with ${child.exitCode} before ready`);
    process.exit(1);
  }
  const rssReady = rssKiB(child.pid);
  await sleep(5000);
  const rssIdle = rssKiB(child.pid);
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  console.log(
    JSON.stringify({
      run: i + 1,
      readyMs: Math.round(ready),
      rssReadyMiB: +(rssReady / 1024).toFixed(1),
      rssIdleMiB: +(rssIdle / 1024).toFixed(1),
    }),
  );
}
