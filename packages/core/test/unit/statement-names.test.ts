import { describe, expect, it } from "vitest";
import { StatementNames } from "../../src/db/prepared.js";

describe("StatementNames", () => {
  it("names a text the third time it is seen, and keeps the name", () => {
    const names = new StatementNames(10, 3);
    expect(names.nameOf("select $1")).toBeUndefined();
    expect(names.nameOf("select $1")).toBeUndefined();
    const name = names.nameOf("select $1");
    expect(name).toMatch(/^sc0_/);
    expect(names.nameOf("select $1")).toBe(name);
    expect(names.nameOf("select $1 + 1")).toBeUndefined();
  });

  it("names at most `max` texts; after a reset, names are new", () => {
    const names = new StatementNames(2, 1);
    const a = names.nameOf("a $1");
    const b = names.nameOf("b $1");
    expect(new Set([a, b]).size).toBe(2);
    expect(names.nameOf("c $1")).toBeUndefined();
    expect(names.nameOf("a $1")).toBe(a);
    names.reset();
    const again = names.nameOf("a $1");
    expect(again).toBeDefined();
    expect(again).not.toBe(a);
  });
});
