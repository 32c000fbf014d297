import { Code } from "@connectrpc/connect";
import { type Issuer, startIssuer, startTestApp, type TestApp } from "@service-chat/testing";
import { generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const AUDIENCE = "service-chat-test";

describe("with an OIDC issuer", () => {
  let issuer: Issuer;
  let t: TestApp;
  beforeAll(async () => {
    issuer = await startIssuer(AUDIENCE);
    t = await startTestApp({ OAUTH2_ISSUER: issuer.url, OAUTH2_JWT_VERIFY_AUDIENCE: AUDIENCE });
  });
  afterAll(async () => {
    await t.stop();
    await issuer.close();
  });

  const call = (token: string | undefined) => t.withToken(token).searchRooms({});

  it("accepts a valid token and takes the profile from sub", async () => {
    const token = await issuer.sign({ sub: "oidc-alice", contact_id: "alice@example.com" });
    const { room } = await t.withToken(token).createRoom({ name: "r", type: 2 });
    expect(room?.creatorId).toBe("oidc-alice");
  });

  it.each([
    ["no token", undefined, /missing Authorization/],
    ["a malformed token", "not.a.jwt", /malformed/],
  ])("refuses %s", async (_, token, message) => {
    await expect(call(token)).rejects.toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: expect.stringMatching(message),
    });
  });

  it("refuses an expired token", async () => {
    const token = await issuer.sign({ sub: "a" }, { exp: Math.floor(Date.now() / 1000) - 60 });
    await expect(call(token)).rejects.toMatchObject({ code: Code.Unauthenticated, rawMessage: "token expired" });
  });

  it("refuses a token for another audience", async () => {
    const token = await issuer.sign({ sub: "a", aud: "someone-else" });
    await expect(call(token)).rejects.toMatchObject({ code: Code.Unauthenticated, rawMessage: /claim aud/ });
  });

  it("refuses a token from another issuer", async () => {
    const token = await issuer.sign({ sub: "a", iss: "https://evil.example.com" });
    await expect(call(token)).rejects.toMatchObject({ code: Code.Unauthenticated, rawMessage: /claim iss/ });
  });

  it("refuses a forged token (right key id, wrong key)", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const token = await issuer.sign({ sub: "a" }, { key: privateKey });
    await expect(call(token)).rejects.toMatchObject({ code: Code.Unauthenticated, rawMessage: /signature/ });
  });

  it("refuses a token without a subject", async () => {
    const token = await issuer.sign({ contact_id: "x" });
    await expect(call(token)).rejects.toMatchObject({ code: Code.Unauthenticated, rawMessage: /sub/ });
  });

  it("refuses a token of the development signer", async () => {
    const { createDevSigner } = await import("@service-chat/core");
    const token = await (await createDevSigner()).sign({ sub: "a" });
    await expect(call(token)).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("does not serve development tokens", async () => {
    const res = await fetch(`${t.httpUrl}/dev/token`, { method: "POST", body: JSON.stringify({ sub: "a" }) });
    expect(res.status).toBe(404);
  });
});

describe("with the development signer", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  const devToken = (body: unknown) =>
    fetch(`${t.httpUrl}/dev/token`, { method: "POST", body: JSON.stringify(body) }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as { token?: string; error?: string },
    }));

  it("issues a token over POST /dev/token that the API accepts, with contact and device claims", async () => {
    const { status, body } = await devToken({ sub: "dev-alice", contact_id: "+254700000000", device_id: "phone" });
    expect(status).toBe(200);
    const { ack } = await t
      .withToken(body.token)
      .createRoom({ name: "r", type: 2 })
      .then(async ({ room }) =>
        t.withToken(body.token).sendEvent({
          event: [{ roomId: room!.id, type: 1, content: { case: "text", value: { body: "hi" } } }],
        }),
      );
    const { events } = await t.withToken(body.token).getHistory({ roomId: ack[0]!.roomId, limit: 1 });
    expect(events[0]?.source).toMatchObject({ profileId: "dev-alice", contactId: "+254700000000" });
  });

  it.each([
    [{}, /sub/],
    [{ sub: "has space" }, /sub/],
    [{ sub: "a", ttl_s: 5 }, /ttl_s/],
    [{ sub: "a", device_id: 7 }, /device_id/],
  ])("refuses a bad token request %j", async (req, message) => {
    const { status, body } = await devToken(req);
    expect(status).toBe(400);
    expect(body.error).toMatch(message);
  });

  it("refuses a body that is not JSON", async () => {
    const res = await fetch(`${t.httpUrl}/dev/token`, { method: "POST", body: "sub=alice" });
    expect(res.status).toBe(400);
  });

  it("refuses an expired development token", async () => {
    const token = await t.signer.sign({ sub: "a", ttl_s: -10 });
    await expect(t.withToken(token).searchRooms({})).rejects.toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: "token expired",
    });
  });

  it("refuses a header that is not a bearer token", async () => {
    const res = await fetch(`${t.httpUrl}/chat.v1.ChatService/SearchRooms`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Basic YWxpY2U6c2VjcmV0" },
      body: "{}",
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { message: string }).message).toMatch(/Bearer/);
  });
});
