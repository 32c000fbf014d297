import { spawnSync } from "node:child_process";
import { ROOT } from "./process.js";

/**
 * The e2e project's global set-up: builds what the end-to-end tests run (`npm run build`'s compile
 * step, incremental), since they start the service and the CLI from their build as a user does.
 */
export default function build(): void {
  const r = spawnSync(process.execPath, ["scripts/build.mjs"], { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`the build failed (exit ${r.status}): see its output above`);
}
