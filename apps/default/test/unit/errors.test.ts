import { Code, ConnectError } from "@connectrpc/connect";
import { AppError, createLogger, type ErrorCode } from "@service-chat/core";
import { describe, expect, it } from "vitest";
import { codeString, errorDetail, toConnectError } from "../../src/server/errors.js";

// The one mapping of domain errors to the wire: an RPC's error and a refused event's ErrorDetail
// carry the same code for the same condition.

const logger = createLogger("silent");
const DOMAIN: ErrorCode[] = [
  "invalid_argument",
  "not_found",
  "permission_denied",
  "unauthenticated",
  "conflict",
  "failed_precondition",
  "resource_exhausted",
  "unavailable",
];

describe("server/errors", () => {
  it.each(DOMAIN)("spells %s the same in an ErrorDetail as in the RPC error", (code) => {
    const err = new AppError(code, "why", "event[2].text.body");
    const rpc = toConnectError(err, logger, "SendEvent");
    expect(errorDetail(err)).toMatchObject({ code: codeString(rpc.code), message: "event[2].text.body: why" });
  });

  it("uses Connect's names, not the domain's", () => {
    expect(errorDetail(new AppError("conflict", "taken")).code).toBe("already_exists");
    expect(errorDetail(new AppError("invalid_argument", "bad")).code).toBe("invalid_argument");
    expect(codeString(Code.DeadlineExceeded)).toBe("deadline_exceeded");
  });

  it("shows unknown errors as internal, and passes Connect errors through", () => {
    expect(toConnectError(new Error("secret detail"), logger, "GetRoom")).toMatchObject({
      code: Code.Internal,
      rawMessage: "internal error",
    });
    const ce = new ConnectError("slow down", Code.ResourceExhausted);
    expect(toConnectError(ce, logger, "GetRoom")).toBe(ce);
  });
});
