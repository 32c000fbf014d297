import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { CallAction, Direction, RoomEventType } from "@service-chat/api";
import {
  countRows,
  type EventInit,
  failsWith,
  groupRoom,
  send,
  sendOk,
  startTestApp,
  type TestApp,
  text,
} from "@service-chat/testing";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

let t: TestApp;
let roomId: string;
let otherRoom: string;
let targetId: string;
let rows: { events: number; outbox: number };
const alice = () => t.as("val-alice");

beforeAll(async () => {
  t = await startTestApp();
  roomId = await groupRoom(t, "val-alice");
  otherRoom = await groupRoom(t, "val-alice");
  targetId = (await sendOk(alice(), text(roomId, "target"))).eventId;
  await send(alice(), ...Array.from({ length: 5 }, (_, i) => text(roomId, `filler ${i}`)));
  await send(alice(), ...Array.from({ length: 5 }, (_, i) => text(otherRoom, `filler ${i}`)));
});
afterAll(() => t.stop());

const day = 24 * 3600_000;
const x = (n: number, s = "a") => s.repeat(n);
const uriOf = (bytes: number) => `https://f.example/${x(bytes - "https://f.example/".length)}`;
const attachment = (value: Record<string, unknown>): EventInit => ({
  roomId,
  type: RoomEventType.ATTACHMENT,
  content: { case: "attachment", value: { uri: "https://files.example/x.png", mimeType: "image/png", ...value } },
});
const encrypted = (ciphertext: Uint8Array, algorithm = "m.megolm.v1"): EventInit => ({
  roomId,
  type: RoomEventType.ENCRYPTED,
  content: { case: "encrypted", value: { algorithm, ciphertext } },
});
const call = (action: CallAction, callId = "c1"): EventInit => ({
  roomId,
  type: RoomEventType.CALL,
  content: { case: "call", value: { callId, action } },
});
const reaction = (key: string, target = targetId): EventInit => ({
  roomId,
  type: RoomEventType.REACTION,
  content: { case: "reaction", value: { targetEventId: target, key, add: true } },
});
const editOf = (target: string, body: string | undefined): EventInit => ({
  roomId,
  type: RoomEventType.EDIT,
  content: { case: "edit", value: { targetEventId: target, ...(body === undefined ? {} : { text: { body } }) } },
});
const redaction = (target: string, reason = ""): EventInit => ({
  roomId,
  type: RoomEventType.REDACTION,
  content: { case: "redaction", value: { targetEventId: target, reason } },
});
const body = (b: string, format = 0): EventInit => ({
  roomId,
  type: RoomEventType.TEXT,
  content: { case: "text", value: { body: b, format } },
});
const withRoom = (e: () => EventInit, id: string) => ({ ...e(), roomId: id });
const sentAt = (ms: number) => text(roomId, "hi", { sentAt: timestampFromDate(new Date(Date.now() + ms)) });

describe("SendEvent refuses text that is not Unicode", () => {
  it("refuses a lone surrogate (JSON can escape one; UTF-8 and PostgreSQL cannot hold it), storing nothing", async () => {
    const before = await countRows(t);
    const err = await failsWith(send(alice(), body("a\ud800b")), Code.InvalidArgument);
    expect(err.rawMessage).toMatch(/TextContent\.body.*invalid UTF8/);
    expect(await countRows(t)).toEqual(before);
  });
});

describe("SendEvent refuses an invalid event, naming the field", () => {
  beforeEach(async () => {
    rows = await countRows(t);
  });
  afterEach(async () => {
    expect(await countRows(t)).toEqual(rows);
  });

  it.each<[string, string, () => EventInit]>([
    ["empty text", "text.body", () => body("")],
    ["blank text", "text.body", () => body(" \n\t ")],
    ["text of 16385 bytes", "text.body", () => body(x(16385))],
    ["text of 8193 two-byte characters", "text.body", () => body(x(8193, "é"))],
    ["text of 16385 bytes in three-byte characters", "text.body", () => body(`${x(5461, "€")}ab`)],
    ["a bell character in text", "text.body", () => body("ding\u0007")],
    ["a NUL character in text", "text.body", () => body("a\u0000b")],
    ["a DEL character in text", "text.body", () => body("a\u007fb")],
    ["an unknown text format", "text.format", () => body("hi", 9)],
    ["an attachment without uri", "attachment.uri", () => attachment({ uri: "" })],
    ["a relative attachment uri", "attachment.uri", () => attachment({ uri: "/files/x.png" })],
    ["an attachment uri of 2049 bytes", "attachment.uri", () => attachment({ uri: uriOf(2049) })],
    ["a mime type without subtype", "attachment.mime_type", () => attachment({ mimeType: "image" })],
    [
      "a mime type with parameters",
      "attachment.mime_type",
      () => attachment({ mimeType: "text/plain; charset=utf-8" }),
    ],
    ["no mime type", "attachment.mime_type", () => attachment({ mimeType: "" })],
    ["a negative size", "attachment.size_bytes", () => attachment({ sizeBytes: -1n })],
    ["a size beyond 2^53", "attachment.size_bytes", () => attachment({ sizeBytes: 2n ** 60n })],
    ["a filename with a line break", "attachment.filename", () => attachment({ filename: "a\nb.png" })],
    ["empty ciphertext", "encrypted.ciphertext", () => encrypted(new Uint8Array())],
    ["ciphertext of 64 KiB + 1", "encrypted.ciphertext", () => encrypted(new Uint8Array(65537))],
    ["no encryption algorithm", "encrypted.algorithm", () => encrypted(new Uint8Array([1]), "")],
    ["a call without action", "call.action", () => call(CallAction.UNSPECIFIED)],
    ["an unknown call action", "call.action", () => call(99 as CallAction)],
    ["a call without id", "call.call_id", () => call(CallAction.OFFER, "")],
    ["an empty reaction key", "reaction.key", () => reaction("")],
    ["a reaction key of 65 bytes", "reaction.key", () => reaction(x(65))],
    ["a reaction key of 17 emoji (68 bytes)", "reaction.key", () => reaction(x(17, "😀"))],
    ["a reaction target that is not an id", "reaction.target_event_id", () => reaction("👍", "not-a-uuid")],
    ["a reaction without target", "reaction.target_event_id", () => reaction("👍", "")],
    ["an edit without text", "edit.text", () => editOf(targetId, undefined)],
    ["an edit with empty text", "edit.text.body", () => editOf(targetId, "")],
    ["an edit with text of 16385 bytes", "edit.text.body", () => editOf(targetId, x(16385))],
    ["an edit target that is not an id", "edit.target_event_id", () => editOf("not-a-uuid", "new")],
    ["a redaction target that is not an id", "redaction.target_event_id", () => redaction("not-a-uuid")],
    ["a redaction reason of 513 bytes", "redaction.reason", () => redaction(targetId, x(513))],
    ["a room_id that is not an id", "room_id", () => withRoom(() => body("hi"), "not-a-uuid")],
    ["no room_id", "room_id", () => withRoom(() => body("hi"), "")],
    ["a parent_id that is not an id", "parent_id", () => text(roomId, "hi", { parentId: "not-a-uuid" })],
    ["a client_id of 129 bytes", "client_id", () => text(roomId, "hi", { clientId: x(129) })],
    ["a client_id with a line break", "client_id", () => text(roomId, "hi", { clientId: "a\nb" })],
    ["sent_at two days ahead", "sent_at", () => sentAt(2 * day)],
    [
      "sent_at in the year 2500",
      "sent_at",
      () => text(roomId, "hi", { sentAt: timestampFromDate(new Date("2500-01-01")) }),
    ],
    ["sent_at before 1970", "sent_at", () => text(roomId, "hi", { sentAt: { seconds: -100n } })],
  ])("%s", async (_, field, event) => {
    const [ack] = await send(alice(), event());
    expect(ack?.error).toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(`^event\\[0\\]\\.${field.replace(/\./g, "\\.")}: `),
    });
    expect(ack?.eventId).toBe("");
  });
});

describe("SendEvent accepts the limits themselves", () => {
  it.each<[string, () => EventInit]>([
    ["text of 16384 bytes", () => body(x(16384))],
    ["text of 8192 two-byte characters", () => body(x(8192, "é"))],
    ["text of 4096 four-byte emoji", () => body(x(4096, "😀"))],
    ["line breaks and tabs in text", () => body("a\r\n\tb")],
    ["markdown text", () => body("**b**", 2)],
    ["an attachment uri of 2048 bytes", () => attachment({ uri: uriOf(2048) })],
    ["an attachment of size 0", () => attachment({ sizeBytes: 0n })],
    ["ciphertext of 64 KiB", () => encrypted(new Uint8Array(65536).fill(7))],
    ["a reaction key of 16 emoji (64 bytes)", () => reaction(x(16, "😀"))],
    ["a client_id of 128 bytes", () => text(roomId, "hi", { clientId: x(128, "k") })],
    ["sent_at an hour ahead", () => sentAt(3600_000)],
    ["sent_at a year ago", () => sentAt(-365 * day)],
  ])("%s", async (_, event) => {
    const before = await countRows(t);
    await sendOk(alice(), event());
    expect((await countRows(t)).events).toBe(before.events + 1);
  });
});

describe("GetHistory refuses invalid requests, naming the field", () => {
  let cursor: { back: string; forward: string; other: string };
  beforeAll(async () => {
    const page = (id: string, direction: Direction) => alice().getHistory({ roomId: id, limit: 2, direction });
    cursor = {
      back: (await page(roomId, Direction.BACKWARD)).nextCursor,
      forward: (await page(roomId, Direction.FORWARD)).nextCursor,
      other: (await page(otherRoom, Direction.BACKWARD)).nextCursor,
    };
    expect(Object.values(cursor).every((c) => c !== "")).toBe(true);
  });
  beforeEach(async () => {
    rows = await countRows(t);
  });
  afterEach(async () => {
    expect(await countRows(t)).toEqual(rows);
  });

  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  it.each<[string, string, () => Record<string, unknown>]>([
    ["a limit of 101", "limit", () => ({ limit: 101 })],
    ["a negative limit", "limit", () => ({ limit: -1 })],
    ["an unknown direction", "direction", () => ({ direction: 7 })],
    ["a cursor that is not base64 JSON", "cursor", () => ({ cursor: "not a cursor!" })],
    ["a cursor of another version", "cursor", () => ({ cursor: b64({ v: 2, r: roomId, d: "b", s: 3 }) })],
    ["a cursor with a text seq", "cursor", () => ({ cursor: b64({ v: 1, r: roomId, d: "b", s: "3" }) })],
    ["a cursor of another room", "cursor", () => ({ cursor: cursor.other })],
    ["a backward cursor going forward", "cursor", () => ({ cursor: cursor.back, direction: Direction.FORWARD })],
    ["a forward cursor going backward", "cursor", () => ({ cursor: cursor.forward, direction: Direction.BACKWARD })],
    ["a forward cursor without direction", "cursor", () => ({ cursor: cursor.forward })],
    ["a room_id that is not an id", "room_id", () => ({ roomId: "not-a-uuid" })],
    ["no room_id", "room_id", () => ({ roomId: "" })],
  ])("%s", async (_, field, request) => {
    await failsWith(alice().getHistory({ roomId, ...request() }), Code.InvalidArgument, field);
  });

  it("accepts its own cursors", async () => {
    const next = await alice().getHistory({ roomId, cursor: cursor.back, limit: 2 });
    expect(next.events).toHaveLength(2);
  });
});

describe("SearchEvents refuses invalid requests, naming the field", () => {
  beforeEach(async () => {
    rows = await countRows(t);
  });
  afterEach(async () => {
    expect(await countRows(t)).toEqual(rows);
  });

  it.each<[string, string, () => Record<string, unknown>]>([
    ["an empty query", "query", () => ({ query: "" })],
    ["a blank query", "query", () => ({ query: "   " })],
    ["a query of 257 bytes", "query", () => ({ query: x(257) })],
    ["a query of 129 two-byte characters", "query", () => ({ query: x(129, "é") })],
    ["a query with control characters", "query", () => ({ query: "a\u0001b" })],
    ["a limit of 101", "limit", () => ({ query: "filler", limit: 101 })],
    ["a forged cursor", "cursor", () => ({ query: "filler", cursor: "forged" })],
    ["a room_id that is not an id", "room_id", () => ({ query: "filler", roomId: "not-a-uuid" })],
  ])("%s", async (_, field, request) => {
    await failsWith(alice().searchEvents(request()), Code.InvalidArgument, field);
  });

  it("accepts a query of 256 bytes", async () => {
    const { events } = await alice().searchEvents({ query: x(128, "é") });
    expect(events).toEqual([]);
  });
});
