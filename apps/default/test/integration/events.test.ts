import { create } from "@bufbuild/protobuf";
import { timestampFromDate, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { CallAction, RoomEventSchema, RoomEventType, SystemEventKind, TextFormat } from "@service-chat/api";
import {
  countRows,
  type EventInit,
  eventById,
  failsWith,
  fullHistory,
  groupRoom,
  react,
  send,
  sendOk,
  sendRefused,
  startTestApp,
  type TestApp,
  text,
} from "@service-chat/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

describe("SendEvent", () => {
  it("stores every content kind and history shows each back unchanged", async () => {
    const alice = t.as("kind-alice");
    const roomId = await groupRoom(t, "kind-alice", "kind-bob");
    const [a, b] = await send(alice, text(roomId, "*first*"), text(roomId, "second"));
    const sentAt = timestampFromDate(new Date(Date.now() - 60_000));
    const kinds: EventInit[] = [
      {
        roomId,
        type: RoomEventType.TEXT,
        content: { case: "text", value: { body: "line 1\n\tline 2 ✓", format: TextFormat.MARKDOWN } },
      },
      {
        roomId,
        type: RoomEventType.ATTACHMENT,
        content: {
          case: "attachment",
          value: {
            uri: "https://files.example/a.png",
            mimeType: "image/png",
            sizeBytes: 123456789n,
            filename: "a.png",
            caption: "a cat",
          },
        },
      },
      {
        roomId,
        type: RoomEventType.REACTION,
        content: { case: "reaction", value: { targetEventId: a!.eventId, key: "🎉", add: true } },
      },
      {
        roomId,
        type: RoomEventType.ENCRYPTED,
        content: {
          case: "encrypted",
          value: {
            algorithm: "m.megolm.v1",
            ciphertext: new Uint8Array([0, 1, 2, 255, 0]),
            senderKeyId: "k1",
            sessionId: "s1",
          },
        },
      },
      {
        roomId,
        type: RoomEventType.CALL,
        content: { case: "call", value: { callId: "call-1", action: CallAction.OFFER, sdp: "v=0\r\n" } },
      },
      {
        roomId,
        type: RoomEventType.EDIT,
        content: {
          case: "edit",
          value: { targetEventId: a!.eventId, text: { body: "*first*, edited", format: TextFormat.PLAIN } },
        },
      },
      {
        roomId,
        type: RoomEventType.REDACTION,
        content: { case: "redaction", value: { targetEventId: b!.eventId, reason: "oops" } },
      },
    ];
    const events = kinds.map((e, i) => ({ ...e, clientId: `kind-${i}`, sentAt }));
    const acks = await send(alice, ...events);
    expect(acks.map((k) => k.error)).toEqual(events.map(() => undefined));

    const history = await fullHistory(t.as("kind-bob"), roomId);
    acks.forEach((ack, i) => {
      const got = history.find((e) => e.id === ack.eventId);
      const sent = create(RoomEventSchema, events[i]);
      expect(got?.type).toBe(sent.type);
      expect(got?.content).toEqual(sent.content);
      expect(got).toMatchObject({ roomId, seq: ack.seq, clientId: `kind-${i}`, edited: false, redacted: false });
      expect(got?.source?.profileId).toBe("kind-alice");
      expect(timestampMs(got!.sentAt!)).toBe(timestampMs(sentAt));
      expect(timestampMs(got!.serverTs!)).toBeGreaterThan(timestampMs(sentAt));
    });
    const first = history.find((e) => e.id === a!.eventId);
    expect(first).toMatchObject({ edited: true, content: { case: "text", value: { body: "*first*, edited" } } });
    expect(history.find((e) => e.id === b!.eventId)).toMatchObject({
      redacted: true,
      content: { value: { body: "" } },
    });
  });

  it("answers 100 events with one ack each, in order, with dense seqs", async () => {
    const alice = t.as("batch-alice");
    const roomId = await groupRoom(t, "batch-alice");
    const bodies = Array.from({ length: 100 }, (_, i) => `message ${i}`);
    const acks = await send(alice, ...bodies.map((b, i) => text(roomId, b, { clientId: `c${i}` })));
    expect(acks.map((a) => a.error)).toEqual(bodies.map(() => undefined));
    expect(acks.map((a) => a.seq)).toEqual(bodies.map((_, i) => BigInt(i + 2)));
    expect(acks.map((a) => a.clientId)).toEqual(bodies.map((_, i) => `c${i}`));
    expect(new Set(acks.map((a) => a.eventId)).size).toBe(100);
    expect(acks.every((a) => a.roomId === roomId)).toBe(true);
    const history = await fullHistory(alice, roomId);
    expect(history.slice(1).map((e) => [e.id, e.content.value])).toEqual(
      acks.map((a, i) => [a.eventId, expect.objectContaining({ body: bodies[i] })]),
    );
    const [next] = await send(alice, text(roomId, "after"));
    expect(next?.seq).toBe(102n);
  });

  it("refuses 101 events, or none, as a whole", async () => {
    const alice = t.as("big-alice");
    const roomId = await groupRoom(t, "big-alice");
    const before = await countRows(t);
    const many = Array.from({ length: 101 }, (_, i) => text(roomId, `m${i}`));
    await failsWith(alice.sendEvent({ event: many }), Code.InvalidArgument, "event");
    await failsWith(alice.sendEvent({ event: [] }), Code.InvalidArgument, "event");
    expect(await countRows(t)).toEqual(before);
  });

  it("answers events for several rooms in the order they were sent", async () => {
    const alice = t.as("multi-alice");
    const r1 = await groupRoom(t, "multi-alice");
    const r2 = await groupRoom(t, "multi-alice");
    const closed = await groupRoom(t, "multi-eve");
    const before = await countRows(t);
    const acks = await send(alice, text(r1, "a"), text(r2, "b"), text(closed, "c"), text(r1, "d"), text(r2, "e"));
    expect(acks.map((a) => [a.roomId, a.seq, a.error?.code])).toEqual([
      [r1, 2n, undefined],
      [r2, 2n, undefined],
      [closed, 0n, "not_found"],
      [r1, 3n, undefined],
      [r2, 3n, undefined],
    ]);
    expect(await countRows(t)).toEqual({ events: before.events + 4, outbox: before.outbox + 4 });
    const bodies = async (id: string) => (await fullHistory(alice, id)).slice(1).map((e) => e.content.value);
    expect(await bodies(r1)).toEqual([expect.objectContaining({ body: "a" }), expect.objectContaining({ body: "d" })]);
    expect(await bodies(r2)).toEqual([expect.objectContaining({ body: "b" }), expect.objectContaining({ body: "e" })]);
  });

  it("stores the good events of a call when one is bad", async () => {
    const alice = t.as("mixed-alice");
    const roomId = await groupRoom(t, "mixed-alice");
    const acks = await send(alice, text(roomId, "good 1"), text(roomId, ""), text(roomId, "good 2"));
    expect(acks[1]?.error).toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("event[1].text.body"),
    });
    expect(acks[1]?.eventId).toBe("");
    expect([acks[0]?.error, acks[2]?.error]).toEqual([undefined, undefined]);
    expect([acks[0]?.seq, acks[2]?.seq]).toEqual([2n, 3n]);
    const bodies = (await fullHistory(alice, roomId)).slice(1).map((e) => e.content.value);
    expect(bodies).toEqual([expect.objectContaining({ body: "good 1" }), expect.objectContaining({ body: "good 2" })]);
  });

  it("refuses an event whose type does not match its content", async () => {
    const alice = t.as("type-alice");
    const roomId = await groupRoom(t, "type-alice");
    const before = await countRows(t, roomId);
    const attachment = { case: "attachment" as const, value: { uri: "https://x.example/f", mimeType: "text/plain" } };
    await sendRefused(
      alice,
      { roomId, type: RoomEventType.TEXT, content: attachment },
      "invalid_argument",
      "event[0].type",
    );
    await sendRefused(alice, { roomId, type: RoomEventType.ATTACHMENT }, "invalid_argument", "event[0].content");
    await sendRefused(
      alice,
      { roomId, content: { case: "text", value: { body: "x" } } },
      "invalid_argument",
      "event[0].type",
    );
    await sendRefused(alice, { ...text(roomId, "x"), type: 42 as RoomEventType }, "invalid_argument", "event[0].type");
    expect(await countRows(t, roomId)).toEqual(before);
  });

  it("refuses system events from clients", async () => {
    const alice = t.as("sys-alice");
    const roomId = await groupRoom(t, "sys-alice");
    const before = await countRows(t, roomId);
    const system = { case: "system" as const, value: { kind: SystemEventKind.ROOM_DELETED, actorId: "sys-alice" } };
    await sendRefused(
      alice,
      { roomId, type: RoomEventType.SYSTEM, content: system },
      "invalid_argument",
      "event[0].type",
    );
    await sendRefused(
      alice,
      { roomId, type: RoomEventType.TEXT, content: system },
      "invalid_argument",
      "event[0].type",
    );
    expect(await countRows(t, roomId)).toEqual(before);
    expect((await t.as("sys-alice").getRoom({ roomId })).room).toBeDefined();
  });

  it("sends only as the caller", async () => {
    const alice = t.as("src-alice");
    const roomId = await groupRoom(t, "src-alice", "src-bob");
    const [forged, own] = await send(
      alice,
      text(roomId, "from bob?", { source: { profileId: "src-bob" } }),
      text(roomId, "from me", { source: { profileId: "src-alice", profileName: "Alice" } }),
    );
    expect(forged?.error).toMatchObject({
      code: "permission_denied",
      message: expect.stringContaining("event[0].source.profile_id"),
    });
    expect(own?.error).toBeUndefined();
    const history = await fullHistory(alice, roomId);
    expect(history.map((e) => e.source?.profileId)).toEqual(["src-alice", "src-alice"]);
    expect(history[1]?.content.value).toMatchObject({ body: "from me" });
  });

  it("refuses senders who are not active members with a write role", async () => {
    const roomId = await groupRoom(t, "who-alice", "who-bob");
    await t.as("who-alice").addRoomSubscriptions({ roomId, members: [{ profileId: "who-guest", role: "guest" }] });
    await sendRefused(t.as("who-eve"), text(roomId, "hi"), "not_found");
    await sendRefused(t.as("who-guest"), text(roomId, "hi"), "permission_denied");
    await t.as("who-alice").removeRoomSubscriptions({ roomId, profileIds: ["who-bob"] });
    await sendRefused(t.as("who-bob"), text(roomId, "hi"), "not_found");
    const history = await fullHistory(t.as("who-alice"), roomId);
    expect(history.filter((e) => e.type !== RoomEventType.SYSTEM)).toEqual([]);
  });
});

describe("replies and reactions", () => {
  it("accepts a parent_id of the same room only", async () => {
    const alice = t.as("reply-alice");
    const roomId = await groupRoom(t, "reply-alice");
    const otherRoom = await groupRoom(t, "reply-alice");
    const parent = await sendOk(alice, text(roomId, "question"));
    const elsewhere = await sendOk(alice, text(otherRoom, "elsewhere"));
    const reply = await sendOk(alice, text(roomId, "answer", { parentId: parent.eventId }));
    expect((await eventById(alice, roomId, reply.eventId)).parentId).toBe(parent.eventId);
    const before = await countRows(t);
    await sendRefused(
      alice,
      text(roomId, "x", { parentId: elsewhere.eventId }),
      "invalid_argument",
      "event[0].parent_id",
    );
    await sendRefused(
      alice,
      text(roomId, "x", { parentId: crypto.randomUUID() }),
      "invalid_argument",
      "event[0].parent_id",
    );
    expect(await countRows(t)).toEqual(before);
  });

  it("needs a reaction target in the same room that is not a system event", async () => {
    const alice = t.as("react-alice");
    const roomId = await groupRoom(t, "react-alice", "react-bob");
    const otherRoom = await groupRoom(t, "react-alice");
    const target = await sendOk(alice, text(roomId, "react to me"));
    const elsewhere = await sendOk(alice, text(otherRoom, "not here"));
    const [created] = await fullHistory(alice, roomId);
    const before = await countRows(t);
    const field = "event[0].reaction.target_event_id";
    await sendRefused(alice, react(roomId, elsewhere.eventId), "invalid_argument", field);
    await sendRefused(alice, react(roomId, crypto.randomUUID()), "invalid_argument", field);
    await sendRefused(alice, react(roomId, created!.id), "invalid_argument", field);
    expect(await countRows(t)).toEqual(before);
    const ok = await sendOk(t.as("react-bob"), react(roomId, target.eventId, "❤️"));
    expect((await eventById(alice, roomId, ok.eventId)).content).toMatchObject({
      case: "reaction",
      value: { targetEventId: target.eventId, key: "❤️", add: true },
    });
  });
});
