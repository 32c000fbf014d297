#!/usr/bin/env node
/**
 * `npm run build` (and `npm start` before it starts): compiles every package and app to JavaScript
 * with declaration files (`tsc -b tsconfig.build.json`, incremental: half a second when nothing
 * changed), then copies what the compiled code reads at run time (the SQL migrations) next to it.
 * With `--web`, also builds the web chat when it is missing or stale.
 */
import { spawnSync } from "node:child_process";
import { cpSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");

const run = (args) => {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

run([tsc, "-b", "tsconfig.build.json"]);
// Copied afresh each time: a migration renamed or removed in the sources must not linger here.
rmSync(`${root}apps/default/dist/db/migrations`, { recursive: true, force: true });
cpSync(`${root}apps/default/src/db/migrations`, `${root}apps/default/dist/db/migrations`, {
  recursive: true,
  filter: (src) => !src.endsWith(".ts"),
});
if (process.argv.includes("--web")) run(["apps/web/scripts/ensure-built.mjs"]);
