#!/usr/bin/env node
// The `chat` command: its compiled code (dist/, made by `npm run build`; always there once installed).
import { existsSync } from "node:fs";

const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(main)) {
  console.error("chat: not built yet; run `npm run build` in the repository first");
  process.exit(2);
}
await import(main.href);
