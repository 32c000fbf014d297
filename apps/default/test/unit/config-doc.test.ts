import { readFile } from "node:fs/promises";
import { expect, it } from "vitest";
import { CONFIG_VARIABLES, loadConfig } from "../../src/config.js";

it("docs/configuration.md lists every variable the service reads, with its default", async () => {
  const doc = await readFile(new URL("../../../../docs/configuration.md", import.meta.url), "utf8");
  const rows = new Map(
    [...doc.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|\s*([^|]*?)\s*\|/gm)].map((m) => [m[1] as string, m[2] as string]),
  );
  expect(CONFIG_VARIABLES.filter((v) => !rows.has(v))).toEqual([]);
  const defaults = loadConfig({}) as Record<string, unknown>;
  const shown = (v: unknown) => (Array.isArray(v) ? v.join(",") : String(v));
  for (const name of CONFIG_VARIABLES) {
    const value = defaults[name];
    if (value === undefined || (Array.isArray(value) && value.length === 0)) continue;
    expect(rows.get(name), name).toBe(`\`${shown(value)}\``);
  }
});
