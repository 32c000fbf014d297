import { describe, expect, it } from "vitest";
import { connectionId } from "../../src/session/connection-id.js";

describe("connectionId", () => {
  it("answers 128 random bits as 22 base64url characters, never the same twice, also past the pool's 256", () => {
    const ids = Array.from({ length: 2000 }, () => connectionId());
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
