import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DISCONNECT } from "../../src/device-stream.js";

describe("disconnect codes", () => {
  it("are those docs/stream-protocol.md lists, each with the same reconnect advice", () => {
    const doc = readFileSync(new URL("../../../../docs/stream-protocol.md", import.meta.url), "utf8");
    const documented = [...doc.matchAll(/^\| (40\d\d) \|[^|]*\| (yes|no) +\|/gm)].map((m) => [
      Number(m[1]),
      m[2] === "yes",
    ]);
    const coded = Object.values(DISCONNECT).map((d) => [d.code, d.reconnect]);
    expect(documented).toEqual(coded);
  });
});
