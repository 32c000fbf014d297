import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

// The layers of docs/ARCHITECTURE.md, checked on the source: SQL drivers and the query builder
// only in the stores and db/, the RPC library only in the RPC edge and the composition root.

const SRC = fileURLToPath(new URL("../../src", import.meta.url));

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files = await Promise.all(
    entries.map((e) =>
      e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
    ),
  );
  return files.flat();
}

/** The modules a file imports, type-only imports and re-exports included. */
function imports(code: string): string[] {
  return [...code.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']/g)].map((m) => m[1] as string);
}

const isStore = (file: string) => file.startsWith("db/") || /^[a-z-]+\/store\.ts$/.test(file);
const isRpcEdge = (file: string) => file.startsWith("server/") || file === "app.ts";
const SQL = /^(kysely|pg|@electric-sql\/pglite)(\/|$)/;
const RPC = /^@connectrpc\//;

async function offenders(allowed: (file: string) => boolean, banned: RegExp): Promise<string[]> {
  const found: string[] = [];
  for (const path of await sources(SRC)) {
    const file = relative(SRC, path).split("\\").join("/");
    if (allowed(file)) continue;
    for (const module of imports(await readFile(path, "utf8")))
      if (banned.test(module)) found.push(`${file}: ${module}`);
  }
  return found;
}

it("imports kysely, pg and PGlite only in the stores and db/", async () => {
  expect(await offenders(isStore, SQL)).toEqual([]);
});

it("imports the RPC library only in server/ and the composition root", async () => {
  expect(await offenders(isRpcEdge, RPC)).toEqual([]);
});

it("sees the imports it looks for", async () => {
  // The checks above would pass on a parser that finds nothing.
  const all = await offenders(() => false, /^kysely$|^@connectrpc\/connect$/);
  expect(all).toEqual(expect.arrayContaining(["events/store.ts: kysely", "server/errors.ts: @connectrpc/connect"]));
  expect(imports('import type { A } from "x";\nexport { b } from "y";\nimport {\n  c,\n} from "z";')).toEqual([
    "x",
    "y",
    "z",
  ]);
});
