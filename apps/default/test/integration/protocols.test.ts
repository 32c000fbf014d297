import { Code } from "@connectrpc/connect";
import { RoomEventType, RoomType } from "@service-chat/api";
import { type Protocol, startTestApp, type TestApp } from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const PROTOCOLS: Protocol[] = ["connect", "connect-binary", "connect-h2", "grpc", "grpc-web"];

describe.each(PROTOCOLS)("ChatService over %s", (protocol) => {
  it("creates a room, sends and reads back, with errors carrying their code", async () => {
    const me = t.as(`p-${protocol}`, protocol);
    const { room } = await me.createRoom({ name: protocol, type: RoomType.GROUP, metadata: { tier: "gold", n: 3 } });
    expect(room?.metadata).toEqual({ tier: "gold", n: 3 });
    const { ack } = await me.sendEvent({
      event: [
        {
          roomId: room!.id,
          type: RoomEventType.ENCRYPTED,
          content: { case: "encrypted", value: { algorithm: "m.megolm", ciphertext: new Uint8Array([1, 2, 255]) } },
        },
      ],
    });
    expect(ack[0]?.error).toBeUndefined();
    const { events } = await me.getHistory({ roomId: room!.id, limit: 1 });
    expect(events[0]?.content).toMatchObject({ case: "encrypted", value: { ciphertext: new Uint8Array([1, 2, 255]) } });
    await expect(me.getRoom({ roomId: "nope" })).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(t.withToken(undefined, protocol).getRoom({ roomId: room!.id })).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
  });
});

describe("plain HTTP", () => {
  it("answers health and readiness", async () => {
    expect(await (await fetch(`${t.httpUrl}/healthz`)).json()).toEqual({ status: "ok" });
    expect(await (await fetch(`${t.httpUrl}/readyz`)).json()).toEqual({
      status: "ready",
      checks: { database: "ok", queue: "ok", registry: "ok" },
    });
  });

  it("answers unknown paths with 404", async () => {
    expect((await fetch(`${t.httpUrl}/nope`)).status).toBe(404);
  });

  it("answers a body that is not JSON with invalid_argument", async () => {
    const token = await t.signer.sign({ sub: "json" });
    const res = await fetch(`${t.httpUrl}/chat.v1.ChatService/GetRoom`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: "{not json",
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it("takes the README's curl example as written (Connect JSON with enum names)", async () => {
    const token = (
      (await (await fetch(`${t.httpUrl}/dev/token`, { method: "POST", body: '{"sub":"curl"}' })).json()) as {
        token: string;
      }
    ).token;
    const post = async (method: string, body: unknown) => {
      const res = await fetch(`${t.httpUrl}/chat.v1.ChatService/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as Record<string, any>;
    };
    const { room } = await post("CreateRoom", {
      name: "general",
      type: "ROOM_TYPE_GROUP",
      members: [{ profileId: "bob" }],
    });
    const { ack } = await post("SendEvent", {
      event: [{ roomId: room.id, type: "ROOM_EVENT_TYPE_TEXT", text: { body: "Hello, Bob!" }, clientId: "m1" }],
    });
    expect(ack[0]).toMatchObject({ seq: "2", clientId: "m1" });
    const { events } = await post("GetHistory", { roomId: room.id });
    expect(events[0]).toMatchObject({ seq: "2", text: { body: "Hello, Bob!" } });
  });
});
