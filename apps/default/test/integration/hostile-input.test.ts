import http from "node:http";
import http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import { PresenceState, RoomEventType, RoomType } from "@service-chat/api";
import { nestsDeeperThan } from "@service-chat/core";
import {
  failsWith,
  groupRoom,
  type Issuer,
  sendOk,
  startIssuer,
  startTestApp,
  type TestApp,
  text,
  wsDevice,
} from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

/** A POST answered, whatever happens to the rest of the body the server chose not to read. */
function post(url: string, body: Buffer | string, headers: Record<string, string>) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => {
        text += d.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * A POST whose body is begun (`start`, half of what content-length announces) and never finished:
 * only a server that answers without reading the body answers it at all.
 */
function postUnfinished(url: string, start: string, headers: Record<string, string>) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      url,
      { method: "POST", headers: { ...headers, "content-length": String(2 * Buffer.byteLength(start)) } },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => {
          text += d.toString();
        });
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, body: text });
          req.destroy();
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject); // after the answer, the server's closing the connection changes nothing
    req.write(start);
  });
}

/**
 * The texts this process's JSON parser (the service runs here) was given during `work`: what was
 * parsed, not how long anything took.
 */
async function parsedDuring(work: () => Promise<unknown>): Promise<string[]> {
  const parse = vi.spyOn(JSON, "parse");
  try {
    await work();
    return parse.mock.calls.map(([text]) => String(text));
  } finally {
    parse.mockRestore();
  }
}

/** The sizes of the texts in `parsed` that nest deeper than the service accepts (none, if it refused them unparsed). */
const tooDeep = (parsed: string[]) => parsed.filter((text) => nestsDeeperThan(text)).map((text) => text.length);

const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
const nestedObject = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;

describe("hostile input", () => {
  let t: TestApp;
  let token: string;
  beforeAll(async () => {
    t = await startTestApp();
    token = await t.signer.sign({ sub: "mallory" });
  });
  afterAll(async () => {
    await t.stop();
  });
  const rpc = (method: string) => `${t.httpUrl}/chat.v1.ChatService/${method}`;

  it("refuses a call without a valid token before reading its body: answered while the body is still unsent, nothing parsed", async () => {
    const start = nested(3 * 1024 * 1024).slice(0, 3 * 1024 * 1024); // half of it: the opening brackets
    for (const authorization of [undefined, "Bearer not.a.token"]) {
      let answer: { status: number; body: string } | undefined;
      const parsed = await parsedDuring(async () => {
        answer = await postUnfinished(rpc("CreateRoom"), start, {
          "content-type": "application/json",
          ...(authorization ? { authorization } : {}),
        });
      });
      expect(answer?.status).toBe(401);
      expect(JSON.parse(answer?.body ?? "{}")).toMatchObject({ code: "unauthenticated" });
      expect(tooDeep(parsed)).toEqual([]);
    }
  });

  it("refuses JSON nested deeper than 64 levels before parsing it, naming the body", async () => {
    for (const body of [
      nested(3 * 1024 * 1024),
      nestedObject(200_000),
      `{"name":"x","metadata":${nestedObject(100)}}`,
    ]) {
      let answer: { status: number; body: string } | undefined;
      const parsed = await parsedDuring(async () => {
        answer = await post(rpc("CreateRoom"), body, {
          "content-type": "application/json",
          authorization: `Bearer ${token}`,
        });
      });
      expect(answer?.status).toBe(400);
      expect(JSON.parse(answer?.body ?? "{}")).toEqual({
        code: "invalid_argument",
        message: "body: nests deeper than 64 levels",
      });
      expect(tooDeep(parsed)).toEqual([]);
    }
    // Within the limit, the same body goes to the parser (and this test sees the parser's work).
    const fine = `{"name":"x","type":"ROOM_TYPE_GROUP","metadata":${nestedObject(60)}}`;
    let answer: { status: number; body: string } | undefined;
    const parsed = await parsedDuring(async () => {
      answer = await post(rpc("CreateRoom"), fine, {
        "content-type": "application/json",
        authorization: `Bearer ${token}`,
      });
    });
    expect(answer?.status, answer?.body).toBe(200);
    expect(parsed).toContain(fine);
  });

  it("answers a binary body that does not decode with invalid_argument, not internal", async () => {
    const answer = await post(rpc("CreateRoom"), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), {
      "content-type": "application/proto",
      authorization: `Bearer ${token}`,
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toEqual({
      code: "invalid_argument",
      message: "body: is not a binary CreateRoomRequest message",
    });
  });

  it("answers a gRPC-Web message that does not decode with invalid_argument, not internal", async () => {
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, garbage.length]), garbage]);
    const answer = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = http.request(
        rpc("CreateRoom"),
        {
          method: "POST",
          headers: { "content-type": "application/grpc-web+proto", authorization: `Bearer ${token}` },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (d: Buffer) => chunks.push(d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(frame);
    });
    expect(answer.status).toBe(200);
    // The trailers travel as the body's last frame (flag 0x80): "grpc-status: 3" and its message.
    expect(answer.body[0]).toBe(0x80);
    const trailer = answer.body.subarray(5).toString();
    expect(trailer).toMatch(/grpc-status: ?3\r\n/);
    expect(decodeURIComponent(/grpc-message: ?([^\r]*)/.exec(trailer)?.[1] ?? "")).toBe(
      "request: is not a binary CreateRoomRequest message",
    );
  });

  it("answers a gRPC message that does not decode with invalid_argument, not internal", async () => {
    const session = http2.connect(t.grpcUrl);
    try {
      const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, garbage.length]), garbage]);
      const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/chat.v1.ChatService/CreateRoom",
          "content-type": "application/grpc",
          te: "trailers",
          authorization: `Bearer ${token}`,
        });
        let headers: http2.IncomingHttpHeaders = {};
        stream.on("response", (h) => {
          headers = h;
        });
        stream.on("trailers", (h) => resolve(h));
        stream.on("end", () => resolve(headers)); // trailers-only
        stream.on("error", reject);
        stream.resume();
        stream.end(frame);
      });
      expect(trailers["grpc-status"]).toBe("3");
      expect(decodeURIComponent(String(trailers["grpc-message"]))).toBe(
        "request: is not a binary CreateRoomRequest message",
      );
    } finally {
      session.close();
    }
  });

  it("still serves ordinary JSON and binary calls, and a body compressed with gzip", async () => {
    const alice = t.as("alice");
    const { room } = await alice.createRoom({ name: "fine", type: RoomType.GROUP, metadata: { a: { b: [1, 2] } } });
    expect(room?.metadata).toEqual({ a: { b: [1, 2] } });
    const binary = t.as("alice", "connect-binary");
    await expect(binary.getRoom({ roomId: room?.id as string })).resolves.toMatchObject({ room: { name: "fine" } });
    const { gzipSync } = await import("node:zlib");
    const answer = await post(rpc("GetRoom"), gzipSync(JSON.stringify({ roomId: room?.id })), {
      "content-type": "application/json",
      "content-encoding": "gzip",
      authorization: `Bearer ${await t.signer.sign({ sub: "alice" })}`,
    });
    expect(answer.status, answer.body).toBe(200);
  });

  it.each([
    ["a NUL character", { note: "a\u0000b" }],
    ["a NUL character", { "k\u0000": 1 }],
    ["a lone surrogate", { note: "\ud800" }],
    ["a lone surrogate", { list: ["ok", "\udc00x"] }],
  ])("refuses room metadata containing %s, storing nothing", async (what, metadata) => {
    const alice = t.as("alice");
    const before = await t.db
      .selectFrom("rooms")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .executeTakeFirst();
    const err = await failsWith(
      alice.createRoom({ name: "m", type: RoomType.GROUP, metadata }),
      Code.InvalidArgument,
      "metadata",
    );
    expect(err.rawMessage).toContain(what);
    const after = await t.db
      .selectFrom("rooms")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .executeTakeFirst();
    expect(Number(after?.n)).toBe(Number(before?.n));
    const roomId = await groupRoom(t, "alice");
    await failsWith(alice.updateRoom({ roomId, metadata }), Code.InvalidArgument, "metadata");
  });

  it.each([9e15, -9e15, -1])("refuses a forged search cursor whose time is %d", async (time) => {
    const cursor = Buffer.from(JSON.stringify({ v: 1, t: time, s: 1, id: "x" })).toString("base64url");
    await failsWith(t.as("alice").searchEvents({ query: "hello", cursor }), Code.InvalidArgument, "cursor");
  });

  it("refuses a token whose sub holds a NUL before any write", async () => {
    const bad = await t.signer.sign({ sub: "eve\u0000admin" });
    const err = await failsWith(t.withToken(bad).createRoom({ name: "x", type: RoomType.GROUP }), Code.Unauthenticated);
    expect(err.rawMessage).toContain("sub");
  });

  it("shows no presence through a deleted room, and sends none through it", async () => {
    const roomId = await groupRoom(t, "carol", "dave");
    const presence = async () => (await t.as("carol").getPresence({ profileIds: ["dave"] })).presence;
    expect(await presence()).toHaveLength(1);
    await t.as("carol").deleteRoom({ roomId });
    expect(await presence()).toEqual([]);
    const dave = await wsDevice(t.httpUrl, {
      case: "hello",
      value: { token: await t.signer.sign({ sub: "dave" }), deviceId: "dave-1" },
    });
    await dave.waitFor((f) => f.frame.case === "synced");
    await t.as("carol").setPresence({ state: PresenceState.AWAY });
    // A marker through a room they still share shows the order: carol's presence would be before it.
    const shared = await groupRoom(t, "erin", "dave");
    await sendOk(t.as("erin"), text(shared, "marker"));
    await dave.waitFor(
      (f) => f.frame.case === "event" && f.frame.value.roomId === shared && f.frame.value.type === RoomEventType.TEXT,
    );
    expect(dave.frames.filter((f) => f.frame.case === "presence")).toEqual([]);
    dave.close();
  });

  it("refuses a development token for a sub holding a NUL", async () => {
    const res = await fetch(`${t.httpUrl}/dev/token`, {
      method: "POST",
      body: JSON.stringify({ sub: "eve\u0000admin" }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /^sub must be .* without spaces or control characters$/,
    );
  });

  it("closes a hello with a malformed cursor with 4001, not to be retried, naming the cursor", async () => {
    for (const cursor of [
      { roomId: "not-a-uuid", seq: 0n },
      { roomId: "00000000-0000-4000-8000-000000000000", seq: -1n },
    ]) {
      const device = await wsDevice(t.httpUrl, { case: "hello", value: { token, deviceId: "d1", cursors: [cursor] } });
      const closed = await device.closed;
      expect(closed.code).toBe(4001);
      const last = device.frames.at(-1)?.frame;
      expect(last?.case).toBe("disconnect");
      if (last?.case !== "disconnect") return;
      expect(last.value.reconnect).toBe(false);
      expect(last.value.reason).toMatch(/^bad frame: hello\.cursors\[0\]\.(room_id|seq): /);
    }
  });

  it("refuses a deeply nested first WebSocket frame before parsing it", async () => {
    const device = await wsDevice(t.httpUrl, undefined, { json: true });
    let closed: { code: number; reason: string } | undefined;
    const parsed = await parsedDuring(async () => {
      device.raw(nestedObject(40_000)); // 234 KiB
      closed = await device.closed;
    });
    expect(closed?.code).toBe(4001);
    expect(device.frames.at(-1)?.frame.value).toMatchObject({ reason: "bad frame: frame nests deeper than 64 levels" });
    expect(tooDeep(parsed)).toEqual([]);
    // A frame within the limit goes to the parser (and this test sees the parser's work).
    const fine = await wsDevice(t.httpUrl, undefined, { json: true });
    const hello = JSON.stringify({ hello: { token, deviceId: "json-1" } });
    const welcomed = await parsedDuring(async () => {
      fine.raw(hello);
      await fine.waitFor((f) => f.frame.case === "welcome");
    });
    expect(welcomed).toContain(hello);
    fine.close();
  });
});

describe("tokens that never expire", () => {
  let issuer: Issuer;
  let t: TestApp;
  beforeAll(async () => {
    issuer = await startIssuer("hostile-test");
    t = await startTestApp({ OAUTH2_ISSUER: issuer.url, OAUTH2_JWT_VERIFY_AUDIENCE: "hostile-test" });
  });
  afterAll(async () => {
    await t.stop();
    await issuer.close();
  });

  it("are refused: every token must carry exp", async () => {
    const forever = await issuer.sign({ sub: "alice" }, { exp: null });
    const err = await failsWith(t.withToken(forever).searchRooms({}), Code.Unauthenticated);
    expect(err.rawMessage).toBe("token has no expiry (exp)");
    const fine = await issuer.sign({ sub: "alice" });
    await expect(t.withToken(fine).searchRooms({})).resolves.toBeDefined();
  });
});
