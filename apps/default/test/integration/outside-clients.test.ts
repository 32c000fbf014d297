import http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import { failsWith, groupRoom, startTestApp, type TestApp, text } from "@service-chat/testing";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ORIGIN = "https://chat.example.com";
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ CORS_ALLOWED_ORIGINS: `${ORIGIN}, http://localhost:5173` });
});
afterAll(() => t.stop());

describe("CORS", () => {
  it("answers a preflight from an allowed origin with Connect's and gRPC-Web's methods and headers", async () => {
    const res = await fetch(`${t.httpUrl}/chat.v1.ChatService/SearchRooms`, {
      method: "OPTIONS",
      headers: {
        origin: ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization,connect-protocol-version",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const h of ["content-type", "authorization", "connect-protocol-version", "x-grpc-web", "grpc-timeout"]) {
      expect(allowed).toContain(h);
    }
  });

  it("exposes the status headers to an allowed origin's calls, and nothing to other origins", async () => {
    const call = (origin: string) =>
      fetch(`${t.httpUrl}/chat.v1.ChatService/SearchRooms`, {
        method: "POST",
        headers: { origin, "content-type": "application/json" },
        body: "{}",
      });
    const allowed = await call(ORIGIN);
    expect(allowed.status).toBe(401);
    expect(allowed.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect((allowed.headers.get("access-control-expose-headers") ?? "").toLowerCase()).toContain("grpc-status");
    expect((allowed.headers.get("access-control-expose-headers") ?? "").toLowerCase()).toContain("x-request-id");
    const other = await call("https://evil.example.net");
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await fetch(`${t.httpUrl}/chat.v1.ChatService/SearchRooms`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example.net", "access-control-request-method": "POST" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("unknown methods", () => {
  it("are unimplemented over Connect (unary and GET) and gRPC-Web", async () => {
    const connect = await fetch(`${t.httpUrl}/chat.v1.ChatService/NoSuchMethod`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(connect.status).toBe(404);
    expect(await connect.json()).toMatchObject({ code: "unimplemented" });
    const get = await fetch(`${t.httpUrl}/chat.v1.NoSuchService/Get?connect=v1&encoding=json&message={}`);
    expect(await get.json()).toMatchObject({ code: "unimplemented" });
    const web = await fetch(`${t.httpUrl}/chat.v1.ChatService/NoSuchMethod`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: new Uint8Array(5),
    });
    expect(web.headers.get("grpc-status")).toBe("12");
    // Paths that are not procedures still get the plain 404.
    expect((await fetch(`${t.httpUrl}/nope`)).status).toBe(404);
  });

  it("are unimplemented over gRPC (HTTP/2)", async () => {
    const session = http2.connect(t.grpcUrl);
    try {
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = session.request({
          ":method": "POST",
          ":path": "/chat.v1.ChatService/NoSuchMethod",
          "content-type": "application/grpc",
          te: "trailers",
        });
        req.on("response", resolve);
        req.on("error", reject);
        req.end(Buffer.alloc(5));
      });
      expect(headers["grpc-status"]).toBe("12");
    } finally {
      session.close();
    }
  });
});

describe("deadlines", () => {
  it.skipIf(process.env.TEST_DB === "pglite")(
    "answer deadline_exceeded when the deadline passes while the call waits, and a retry finds what was stored",
    async () => {
      const roomId = await groupRoom(t, "dl-alice");
      const alice = t.as("dl-alice");
      const event = text(roomId, "late", { clientId: "dl-1" });
      // Another transaction holds the room's row: the send waits for it.
      let release!: () => void;
      const released = new Promise<void>((r) => {
        release = r;
      });
      let locked!: () => void;
      const held = new Promise<void>((r) => {
        locked = r;
      });
      const holder = t.db.transaction().execute(async (tx) => {
        await sql`select id from rooms where id = ${roomId} for update`.execute(tx);
        locked();
        await released;
      });
      try {
        await held;
        // Answered while the row is still held: the deadline ended the call, not the end of the wait.
        await failsWith(alice.sendEvent({ event: [event] }, { timeoutMs: 300 }), Code.DeadlineExceeded);
      } finally {
        release();
        await holder;
      }
      const { ack } = await alice.sendEvent({ event: [event] });
      expect(ack[0]?.seq).toBe(2n);
      expect(ack[0]?.error).toBeUndefined();
    },
  );

  it("are read from the Connect header too, answered by the server itself", async () => {
    const roomId = await groupRoom(t, "dl-bob");
    const token = await t.signer.sign({ sub: "dl-bob" });
    // A raw call, so that the answer is the server's and not the client library's own timer.
    const res = await fetch(`${t.httpUrl}/chat.v1.ChatService/SendEvent`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "connect-timeout-ms": "1" },
      body: JSON.stringify({ event: [{ roomId, type: "ROOM_EVENT_TYPE_TEXT", text: { body: "too late" } }] }),
    });
    expect(await res.json()).toMatchObject({ code: "deadline_exceeded" });
  });
});
