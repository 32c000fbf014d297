import { describe, expect, it } from "vitest";
import { isId, newId } from "../../src/ids.js";
import { checkCount, checkId, checkLimit, checkProfileId, checkText } from "../../src/validate.js";

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string; message: string }).message;
  }
  return "ok";
};

describe("field checks", () => {
  it("count text in UTF-8 bytes", () => {
    expect(code(() => checkText("body", "é".repeat(8), { maxBytes: 16 }))).toBe("ok");
    expect(code(() => checkText("body", "é".repeat(9), { maxBytes: 16 }))).toBe("body: is longer than 16 bytes");
  });

  it("keep names on one line and bodies free of control characters", () => {
    expect(code(() => checkText("name", "a\nb", { maxBytes: 10 }))).toMatch(/control/);
    expect(code(() => checkText("body", "a\nb\tc", { maxBytes: 10, multiline: true }))).toBe("ok");
    expect(code(() => checkText("body", "a\u0000b", { maxBytes: 10, multiline: true }))).toMatch(/control/);
  });

  it("require what is required, blank counts as missing", () => {
    expect(code(() => checkText("body", "  ", { maxBytes: 10, required: true }))).toBe("body: is required");
  });

  it("accept server ids and refuse anything else", () => {
    expect(isId(newId())).toBe(true);
    expect(code(() => checkId("room_id", ""))).toBe("room_id: is required");
    expect(code(() => checkId("room_id", "../etc"))).toBe("room_id: is not a valid id");
  });

  it("make time-ordered ids", () => {
    const a = newId(1_000);
    const b = newId(2_000);
    expect(a < b).toBe(true);
    expect(a[14]).toBe("7");
  });

  it("make distinct, well-formed ids across many draws of random bytes", () => {
    const ids = Array.from({ length: 2_000 }, () => newId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(isId(id)).toBe(true);
      expect(id[14]).toBe("7");
      expect("89ab").toContain(id[19]);
    }
  });

  it("accept profile ids from any issuer but not spaces or huge ones", () => {
    expect(code(() => checkProfileId("p", "auth0|abc-123@x"))).toBe("ok");
    expect(code(() => checkProfileId("p", "a b"))).toMatch(/without spaces/);
    expect(code(() => checkProfileId("p", "x".repeat(129)))).toMatch(/1 to 128/);
  });

  it("treat limit 0 as the default and refuse out-of-range limits", () => {
    expect(checkLimit("limit", 0, 50, 100)).toBe(50);
    expect(checkLimit("limit", 100, 50, 100)).toBe(100);
    expect(code(() => checkLimit("limit", 101, 50, 100))).toBe("limit: must be between 1 and 100");
    expect(code(() => checkLimit("limit", -1, 50, 100))).toMatch(/between/);
  });

  it("bound list sizes", () => {
    expect(code(() => checkCount("event", 0, 100, 1))).toBe("event: must not be empty");
    expect(code(() => checkCount("event", 101, 100, 1))).toBe("event: has more than 100 entries");
  });
});
