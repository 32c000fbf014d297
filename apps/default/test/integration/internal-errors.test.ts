import { Code } from "@connectrpc/connect";
import { startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop().catch(() => {}));

it("reports an unexpected failure as internal, without its details, and readiness goes down", async () => {
  await t.app.database!.close();
  const err = await t
    .as("alice")
    .searchRooms({})
    .catch((e: unknown) => e);
  expect(err).toMatchObject({ code: Code.Internal, rawMessage: "internal error" });
  const ready = await fetch(`${t.httpUrl}/readyz`);
  expect(ready.status).toBe(503);
});
