import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

// `buf curl` (from the @bufbuild/buf package) as an outside client with no .proto files: it learns
// the schema from the server's reflection service, which needs HTTP/2 (the h2c port).
const run = promisify(execFile);
const BUF = join(import.meta.dirname, "../../../../node_modules/.bin/buf");
const bufCurl = async (...args: string[]) => (await run(BUF, ["curl", "--http2-prior-knowledge", ...args])).stdout;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

it("lists the services it serves and their methods, without a token", async () => {
  const services = (await bufCurl("--list-services", t.grpcUrl)).trim().split("\n");
  expect(services).toEqual(
    expect.arrayContaining([
      "chat.v1.ChatService",
      "chat.v1.AdminService",
      "chat.v1.GatewayService",
      "grpc.reflection.v1.ServerReflection",
    ]),
  );
  const methods = await bufCurl("--list-methods", t.grpcUrl);
  expect(methods).toContain("chat.v1.ChatService/SendEvent");
  expect(methods).toContain("chat.v1.AdminService/ListAuditLog");
});

it("lets a client call methods over gRPC and Connect knowing only their names", async () => {
  const token = await t.signer.sign({ sub: "refl-alice" });
  const auth = ["-H", `Authorization: Bearer ${token}`];
  const created = JSON.parse(
    await bufCurl(
      "--protocol",
      "grpc",
      ...auth,
      "-d",
      '{"name":"reflected","type":"ROOM_TYPE_GROUP"}',
      `${t.grpcUrl}/chat.v1.ChatService/CreateRoom`,
    ),
  );
  expect(created.room.name).toBe("reflected");
  const found = JSON.parse(await bufCurl(...auth, "-d", "{}", `${t.grpcUrl}/chat.v1.ChatService/SearchRooms`));
  expect(found.rooms.map((r: { id: string }) => r.id)).toContain(created.room.id);
});
