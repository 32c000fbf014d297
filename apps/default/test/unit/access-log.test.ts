import { Writable } from "node:stream";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { AdminService } from "@service-chat/api";
import { type Authenticator, createLogger, notFound } from "@service-chat/core";
import { expect, it } from "vitest";
import { accessLogInterceptor } from "../../src/server/access-log.js";
import { authInterceptor } from "../../src/server/auth.js";
import { errorInterceptor } from "../../src/server/errors.js";

/** A pino logger like the app's, whose lines land in `lines`. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const logger = createLogger("info", false, out);
  return { lines, logger };
}

const auth: Authenticator = {
  async verify(token) {
    if (token !== "good") throw new ConnectError("bad token", Code.Unauthenticated);
    return { profileId: "alice", contactId: "", deviceId: "", expiresAt: Date.now() + 60_000 } as never;
  },
};

function client() {
  const { lines, logger } = capture();
  const transport = createRouterTransport(
    (router) =>
      router.service(AdminService, {
        async listAuditLog() {
          logger.info("inside the handler");
          throw notFound("nothing here");
        },
      }),
    { router: { interceptors: [accessLogInterceptor(logger), errorInterceptor(logger), authInterceptor(auth)] } },
  );
  return { lines, admin: createClient(AdminService, transport) };
}

it("writes one access line per call with procedure, code, duration, caller and request id — never the token", async () => {
  const { lines, admin } = client();
  const err = await admin
    .listAuditLog({}, { headers: { authorization: "Bearer good", "x-request-id": "abc-123" } })
    .then(
      () => new ConnectError("the call succeeded"),
      (e: unknown) => ConnectError.from(e),
    );
  expect(err.code).toBe(Code.NotFound);
  expect(err.metadata.get("x-request-id")).toBe("abc-123");
  const access = lines.filter((l) => l.msg === "rpc");
  expect(access).toHaveLength(1);
  expect(access[0]).toMatchObject({
    procedure: "chat.v1.AdminService/ListAuditLog",
    code: "not_found",
    profile_id: "alice",
    request_id: "abc-123",
  });
  expect(access[0]?.duration_ms).toBeTypeOf("number");
  // The handler's own line carries the same request id.
  expect(lines.find((l) => l.msg === "inside the handler")?.request_id).toBe("abc-123");
  expect(JSON.stringify(lines)).not.toContain("good");
});

it("generates a request id when the caller sends none (or an unusable one) and logs unauthenticated calls", async () => {
  const { lines, admin } = client();
  const ids: string[] = [];
  for (const header of [undefined, "has spaces; and <markup>", "x".repeat(200)]) {
    const err = await admin.listAuditLog({}, { headers: header ? { "x-request-id": header } : {} }).then(
      () => new ConnectError("the call succeeded"),
      (e: unknown) => ConnectError.from(e),
    );
    expect(err.code).toBe(Code.Unauthenticated);
    ids.push(err.metadata.get("x-request-id") ?? "");
  }
  expect(ids.every((id) => /^[\w-]{16}$/.test(id))).toBe(true);
  expect(new Set(ids).size).toBe(3);
  expect(lines.filter((l) => l.msg === "rpc").map((l) => [l.code, l.profile_id])).toEqual([
    ["unauthenticated", ""],
    ["unauthenticated", ""],
    ["unauthenticated", ""],
  ]);
});
