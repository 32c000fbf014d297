import { readFile } from "node:fs/promises";
import { expect, it } from "vitest";
import { type Action, MATRIX, ROLES } from "../../src/authz/permissions.js";

it("docs/permissions.md shows exactly the matrix the code enforces", async () => {
  const doc = await readFile(new URL("../../../../docs/permissions.md", import.meta.url), "utf8");
  const rows = doc
    .split("\n")
    .filter((line) => /^\|\s*[a-z]+\.[a-z_]+\s*\|/.test(line))
    .map((line) =>
      line
        .split("|")
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  const fromDoc = Object.fromEntries(
    rows.map(([action, ...cells]) => [action, ROLES.filter((_, i) => cells[i] === "✓")]),
  );
  expect(fromDoc).toEqual(Object.fromEntries((Object.keys(MATRIX) as Action[]).map((a) => [a, [...MATRIX[a]]])));
});
