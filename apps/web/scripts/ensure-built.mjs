/**
 * Builds the web chat into apps/web/dist when it is missing or older than any file it was built
 * from (dist/.inputs.json lists them); otherwise does nothing, in a few milliseconds. Run by
 * `npm start` (prestart) and the web chat's test. Processes started together build once: a lock
 * directory makes the others wait and then find dist current. Without --strict a failed build
 * only warns, so the server still starts (without the web chat).
 */
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const lock = fileURLToPath(new URL("../../../node_modules/.cache/service-chat-web-build.lock", import.meta.url));
const strict = process.argv.includes("--strict");
const LOCK_STALE_MS = 120_000;

function staleReason() {
  let inputs;
  try {
    inputs = JSON.parse(readFileSync(`${root}dist/.inputs.json`, "utf8"));
    statSync(`${root}dist/index.html`);
  } catch {
    return "not built yet";
  }
  for (const file of inputs.files) {
    const info = statSync(file, { throwIfNoEntry: false });
    if (!info || info.mtimeMs > inputs.startedAt) return `${file} changed`;
  }
  return undefined;
}

async function withLock(fn) {
  const deadline = Date.now() + LOCK_STALE_MS;
  mkdirSync(dirname(lock), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS || Date.now() > deadline) rmSync(lock, { recursive: true, force: true });
      else await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

if (staleReason()) {
  await withLock(async () => {
    const reason = staleReason();
    if (!reason) return;
    const started = performance.now();
    console.error(`building the web chat (${reason})…`);
    try {
      const { build } = await import("vite");
      await build({ root, logLevel: "warn" });
      console.error(`web chat built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } catch (err) {
      console.error(`the web chat could not be built: ${err instanceof Error ? err.message : err}`);
      if (strict) process.exitCode = 1;
      else console.error("starting without it; `npm run build:web` shows the details");
    }
  });
}
