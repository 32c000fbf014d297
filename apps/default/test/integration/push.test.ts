import { createHmac, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code } from "@connectrpc/connect";
import { RoomEventType } from "@service-chat/api";
import { groupRoom, startTestApp, type TestApp, text, until } from "@service-chat/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

const SECRET = "webhook-secret-for-tests";

/** A push provider on loopback: records each call, answers 200 or 503 as told. */
const hook = {
  calls: [] as { body: Record<string, any>; signature: string; raw: string }[],
  failing: false,
  server: http.createServer((req, res) => {
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      hook.calls.push({ raw, body: JSON.parse(raw), signature: String(req.headers["x-chat-signature"]) });
      res.writeHead(hook.failing ? 503 : 200).end();
    });
  }),
};

let t: TestApp;
beforeAll(async () => {
  await new Promise<void>((r) => hook.server.listen(0, "127.0.0.1", () => r()));
  t = await startTestApp({
    QUEUE_USER_EVENT_DELIVERY_NAME: `p${randomBytes(4).toString("hex")}`,
    PUSH_WEBHOOK_URL: `http://127.0.0.1:${(hook.server.address() as AddressInfo).port}/push`,
    PUSH_WEBHOOK_SECRET: SECRET,
    PUSH_MAX_ATTEMPTS: "3",
    PUSH_RETRY_BASE_MS: "50",
    ADMIN_PROFILE_IDS: "root",
  });
});
afterAll(async () => {
  await t.stop();
  await new Promise<void>((r) => hook.server.close(() => r()));
});

const online = (profileId: string) =>
  t.app.registry.register(
    {
      connectionId: `c-${profileId}`,
      profileId,
      deviceId: "d",
      gatewayId: "g",
      connectedAt: Date.now(),
      lastHeartbeat: Date.now(),
    },
    60_000,
  );

it("notifies the members with no live connection, signed, with a preview unless encrypted", async () => {
  const roomId = await groupRoom(t, "pa", "pb", "pc");
  await online("pc");
  hook.calls.length = 0;
  await t.as("pa").sendEvent({
    event: [
      { roomId, type: RoomEventType.TEXT, content: { case: "text", value: { body: "lunch at noon?" } } },
      {
        roomId,
        type: RoomEventType.ENCRYPTED,
        content: { case: "encrypted", value: { algorithm: "m.megolm", ciphertext: new Uint8Array([9]) } },
      },
    ],
  });
  await until("two pushes", () => hook.calls.length === 2);
  const [text, secret] = hook.calls.sort((a, b) => Number(a.body.seq) - Number(b.body.seq));
  expect(text?.body).toMatchObject({
    type: "chat.event",
    room_id: roomId,
    sender: "pa",
    event_type: "text",
    preview: "lunch at noon?",
    recipients: ["pb"],
  });
  expect(secret?.body.preview).toBeUndefined();
  expect(secret?.body.event_type).toBe("encrypted");
  const [, ts, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(text?.signature ?? "") ?? [];
  expect(v1).toBe(createHmac("sha256", SECRET).update(`${ts}.${text?.raw}`).digest("hex"));
});

it("retries with backoff, keeps what failed every attempt as a dead letter, and an admin replays it", async () => {
  const roomId = await groupRoom(t, "qa", "qb");
  hook.calls.length = 0;
  hook.failing = true;
  const { ack } = await t.as("qa").sendEvent({
    event: [{ roomId, type: RoomEventType.TEXT, content: { case: "text", value: { body: "are you there?" } } }],
  });
  await until("three attempts", () => hook.calls.length === 3);
  const admin = t.adminAs("root");
  await until("the dead letter", async () => (await admin.listPushDeadLetters({})).deadLetters.length === 1);
  const [letter] = (await admin.listPushDeadLetters({})).deadLetters;
  expect(letter).toMatchObject({ roomId, eventId: ack[0]?.eventId, recipients: ["qb"], attempts: 3 });
  expect(letter?.lastError).toContain("503");

  await expect(t.adminAs("qa").listPushDeadLetters({})).rejects.toMatchObject({ code: Code.PermissionDenied });
  await expect(admin.replayPushDeadLetters({ ids: ["nope"] })).rejects.toMatchObject({ code: Code.InvalidArgument });

  hook.failing = false;
  hook.calls.length = 0;
  expect((await admin.replayPushDeadLetters({ ids: [letter!.id] })).replayedIds).toEqual([letter!.id]);
  await until("the replayed push", () => hook.calls.length === 1);
  expect(hook.calls[0]?.body).toMatchObject({ event_id: ack[0]?.eventId, recipients: ["qb"] });
  expect((await admin.listPushDeadLetters({})).deadLetters).toEqual([]);
  // The replay is in the audit log, with who did it and which letters.
  const { entries } = await admin.listAuditLog({ action: "push.dead_letters_replayed" });
  expect(entries.map((e) => [e.actorId, e.targets])).toEqual([["root", [letter!.id]]]);
});

it("does not notify for room changes, reactions, or the sender", async () => {
  const roomId = await groupRoom(t, "ra", "rb");
  hook.calls.length = 0;
  const { ack } = await t.as("ra").sendEvent({
    event: [{ roomId, type: RoomEventType.TEXT, content: { case: "text", value: { body: "ping" } } }],
  });
  await t.as("rb").sendEvent({
    event: [
      {
        roomId,
        type: RoomEventType.REACTION,
        content: { case: "reaction", value: { targetEventId: ack[0]!.eventId, key: "👍", add: true } },
      },
    ],
  });
  await t.as("ra").addRoomSubscriptions({ roomId, members: [{ profileId: "rc" }] });
  // A later message: fan-out hands events to the notifier in order and it starts their pushes in
  // order, so once this one's push is in, any push the events before it wrongly caused is in too.
  await t.as("rb").sendEvent({ event: [text(roomId, "last")] });
  await until("the last message's push", () => hook.calls.some((c) => c.body.preview === "last"));
  expect(hook.calls.map((c) => [c.body.preview, [...c.body.recipients].sort()])).toEqual([
    ["ping", ["rb"]],
    ["last", ["ra", "rc"]],
  ]);
});
