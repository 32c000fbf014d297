import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "../../src/cursor.js";
import { AppError } from "../../src/errors.js";

describe("cursors", () => {
  it("round-trip their values", () => {
    const c = encodeCursor({ r: "room", s: 42 });
    expect(decodeCursor("cursor", c, { r: "string", s: "number" })).toMatchObject({ r: "room", s: 42 });
  });

  it("are absent when empty", () => {
    expect(decodeCursor("cursor", "", { s: "number" })).toBeUndefined();
  });

  it.each([
    ["garbage", "%%%"],
    ["base64 of non-JSON", Buffer.from("hello").toString("base64url")],
    ["another version", Buffer.from(JSON.stringify({ v: 2, s: 1 })).toString("base64url")],
    ["a wrong field type", Buffer.from(JSON.stringify({ v: 1, s: "1" })).toString("base64url")],
    ["an unsafe number", Buffer.from(JSON.stringify({ v: 1, s: 2 ** 60 })).toString("base64url")],
    ["a missing field", Buffer.from(JSON.stringify({ v: 1 })).toString("base64url")],
  ])("refuse %s as invalid_argument naming the field", (_, bad) => {
    let err: unknown;
    try {
      decodeCursor("page_cursor", bad, { s: "number" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: "invalid_argument", field: "page_cursor" });
  });
});
