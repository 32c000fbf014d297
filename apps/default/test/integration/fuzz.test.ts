import { RoomEventType, RoomType } from "@service-chat/api";
import { groupRoom, startTestApp, type TestApp, wsDevice } from "@service-chat/testing";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Property-based: whatever a client sends — any JSON, any bytes, any strings in the right fields,
 * any WebSocket frame — the answer is a client error or a success, never `internal`, and the
 * service goes on answering. (A failing case is printed by fast-check with its seed.)
 */
const METHODS = [
  "CreateRoom",
  "GetRoom",
  "SearchRooms",
  "UpdateRoom",
  "DeleteRoom",
  "AddRoomSubscriptions",
  "RemoveRoomSubscriptions",
  "UpdateSubscriptionRole",
  "SearchRoomSubscriptions",
  "SendEvent",
  "GetHistory",
  "SearchEvents",
  "AckEvents",
  "MarkRead",
  "Sync",
  "SendTyping",
  "GetPresence",
  "SetPresence",
];

/** Strings with anything in them: NUL, control characters, lone surrogates, astral characters. */
const anyString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("\u0000", "\ud800", "\udfff", "a\u0000b", "\u202e", "💬", "%_\\", ""),
);

describe("fuzzed input", () => {
  let t: TestApp;
  let token: string;
  let roomId: string;
  beforeAll(async () => {
    t = await startTestApp();
    token = await t.signer.sign({ sub: "fuzzer" });
    roomId = await groupRoom(t, "fuzzer", "friend");
  });
  afterAll(async () => {
    await t.stop();
  });

  const call = async (method: string, body: Uint8Array | string, contentType: string) => {
    const res = await fetch(`${t.httpUrl}/chat.v1.ChatService/${method}`, {
      method: "POST",
      headers: { "content-type": contentType, authorization: `Bearer ${token}` },
      body,
    });
    const text = await res.text();
    return { status: res.status, code: res.status === 200 ? "ok" : (JSON.parse(text) as { code: string }).code };
  };

  const neverInternal = (answer: { status: number; code: string }) => {
    expect(answer.status).toBeLessThan(500);
    expect(answer.code).not.toBe("internal");
  };

  it("answers any JSON body with a client error or a success", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), fc.jsonValue({ maxDepth: 70 }), async (method, value) => {
        neverInternal(await call(method, JSON.stringify(value), "application/json"));
      }),
      { numRuns: 150 },
    );
  });

  it("answers any bytes, as JSON or as binary, with a client error or a success", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...METHODS),
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom("application/json", "application/proto"),
        async (method, bytes, contentType) => {
          neverInternal(await call(method, bytes, contentType));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("answers well-formed requests holding any strings with a client error or a success", async () => {
    const chat = t.as("fuzzer");
    await fc.assert(
      fc.asyncProperty(
        anyString,
        anyString,
        fc.dictionary(anyString, fc.oneof(anyString, fc.integer(), fc.boolean()), { maxKeys: 3 }),
        async (name, body, metadata) => {
          const outcomes = await Promise.allSettled([
            chat.createRoom({ name, type: RoomType.GROUP, metadata }),
            chat.updateRoom({ roomId, description: body, metadata }),
            chat.sendEvent({
              event: [{ roomId, clientId: name, type: RoomEventType.TEXT, content: { case: "text", value: { body } } }],
            }),
            chat.searchEvents({ query: body, cursor: name }),
            chat.searchRooms({ query: name }),
            chat.getHistory({ roomId, cursor: body }),
            chat.addRoomSubscriptions({ roomId, members: [{ profileId: name, profileName: body }] }),
            chat.getPresence({ profileIds: [name] }),
          ]);
          for (const o of outcomes) {
            if (o.status === "rejected") expect((o.reason as { code?: number }).code).not.toBe(13); // internal
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("closes a WebSocket whose first frame is anything but a hello as a bad frame, never as internal", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          fc.jsonValue({ maxDepth: 70 }).map((v) => JSON.stringify(v)),
        ),
        fc.boolean(),
        async (frame, json) => {
          const device = await wsDevice(t.httpUrl, undefined, { json });
          device.raw(frame);
          const { code } = await device.closed;
          expect([4001, 4002]).toContain(code);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("still answers its health check, and stored no room it cannot read back", async () => {
    expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
    const { rooms } = await t.as("fuzzer").searchRooms({ limit: 100 });
    for (const r of rooms) await expect(t.as("fuzzer").getRoom({ roomId: r.id })).resolves.toBeDefined();
  });
});
