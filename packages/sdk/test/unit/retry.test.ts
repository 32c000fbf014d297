import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { backoff, codeName, errorCode, isPermanent, reconnectDelay } from "../../src/retry.js";

describe("backoff", () => {
  it("grows from the base and never passes the cap, with full jitter inside it", () => {
    expect(backoff(0, 250, 5000, () => 1)).toBe(250);
    expect(backoff(3, 250, 5000, () => 1)).toBe(2000);
    for (const attempt of [5, 10, 50, 1000]) expect(backoff(attempt, 250, 5000, () => 1)).toBe(5000);
    expect(backoff(1000, 250, 5000, () => 0)).toBe(0);
    expect(backoff(8, 250, 5000, () => 0.5)).toBe(2500);
  });
});

describe("reconnect delay", () => {
  it("is the backoff, or the server's retry-after plus the backoff as jitter", () => {
    expect(reconnectDelay(3, 250, 5000, 0, () => 1)).toBe(2000);
    expect(reconnectDelay(0, 250, 5000, 5000, () => 0)).toBe(5000);
    expect(reconnectDelay(0, 250, 5000, 5000, () => 1)).toBe(5250);
    expect(reconnectDelay(10, 250, 5000, 5000, () => 0.5)).toBe(7500);
  });
});

describe("which send failures are final", () => {
  it("gives up only on answers about the message itself", () => {
    for (const code of ["invalid_argument", "permission_denied", "not_found", "failed_precondition"]) {
      expect(isPermanent(code), code).toBe(true);
    }
    for (const code of ["unavailable", "internal", "deadline_exceeded", "aborted", "resource_exhausted", "unknown"]) {
      expect(isPermanent(code), code).toBe(false);
    }
  });

  it("spells Connect codes as the API does; a failure without one is unavailable", () => {
    expect(codeName(Code.DeadlineExceeded)).toBe("deadline_exceeded");
    expect(codeName(Code.ResourceExhausted)).toBe("resource_exhausted");
    expect(errorCode(new ConnectError("x", Code.Internal))).toBe("internal");
    expect(errorCode(new TypeError("fetch failed"))).toBe("unavailable");
  });
});
