import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { type RoomEvent, RoomEventSchema, RoomEventType, ServerFrameSchema, SystemEventKind } from "@service-chat/api";
import { describe, expect, it } from "vitest";
import { eventFrame, readEvent } from "../../src/event-wire.js";

const event = (init: Exclude<MessageInitShape<typeof RoomEventSchema>, RoomEvent>): RoomEvent =>
  create(RoomEventSchema, { id: "e", roomId: "room", seq: 1n, type: RoomEventType.TEXT, ...init });

/** Events as the service encodes them: every field set, seqs and room ids around varint and length boundaries. */
const EVENTS: RoomEvent[] = [
  event({ content: { case: "text", value: { body: "héllo" } }, clientId: "c1", parentId: "p" }),
  event({ seq: 127n, roomId: "" }),
  event({ seq: 128n }),
  event({ seq: 2n ** 32n + 1n, edited: true }),
  event({ seq: 9_007_199_254_740_991n, redacted: true }),
  event({ roomId: "r".repeat(127) }),
  event({ roomId: "r".repeat(128) }),
  event({ roomId: `ü${"r".repeat(20_000)}`, seq: 300n }),
  event({
    type: RoomEventType.SYSTEM,
    source: { profileId: "alice", contactId: "c" },
    sentAt: { seconds: 1_700_000_000n, nanos: 5 },
    serverTs: { seconds: 1_700_000_001n, nanos: 0 },
    content: { case: "system", value: { kind: SystemEventKind.MEMBERS_ADDED, profileIds: ["x", "y"] } },
  }),
  event({
    type: RoomEventType.ATTACHMENT,
    content: { case: "attachment", value: { uri: "https://files/a", mimeType: "image/png", sizeBytes: 5n } },
  }),
  event({ type: RoomEventType.UNSPECIFIED, seq: 0n, roomId: "" }),
];

describe("readEvent", () => {
  it("reads the room, type and seq of real encoded RoomEvents, and keeps their bytes as given", () => {
    for (const e of EVENTS) {
      const bytes = toBinary(RoomEventSchema, e);
      const read = readEvent(bytes);
      expect({ roomId: read.roomId, type: read.type, seq: read.seq }).toEqual({
        roomId: e.roomId,
        type: e.type,
        seq: Number(e.seq),
      });
      expect(read.bytes).toBe(bytes);
    }
  });

  it("reads past fields it does not know, in any order, the last value of a field winning as in a decode", () => {
    const known = toBinary(RoomEventSchema, event({ roomId: "first", seq: 5n }));
    const bytes = new BinaryWriter()
      .tag(99, WireType.LengthDelimited)
      .string("unknown")
      .tag(6, WireType.Varint)
      .int64(7n)
      .raw(known)
      .tag(2, WireType.LengthDelimited)
      .string("last")
      .tag(98, WireType.Bit64)
      .fixed64(1n)
      .finish();
    const decoded = fromBinary(RoomEventSchema, bytes);
    expect(readEvent(bytes)).toMatchObject({ roomId: decoded.roomId, seq: Number(decoded.seq), type: decoded.type });
    expect(readEvent(bytes)).toMatchObject({ roomId: "last", seq: 5 });
  });

  it("throws on bytes that are not a message", () => {
    expect(() => readEvent(new Uint8Array([0x12, 0x05, 0x61]))).toThrow();
  });
});

describe("eventFrame", () => {
  it("is byte for byte what encoding ServerFrame{event} gives, whatever the event's size", () => {
    const sizes = [
      ...EVENTS,
      // Frame lengths that need 1, 2, 3 and 4 bytes of varint.
      event({ content: { case: "text", value: { body: "x".repeat(100) } } }),
      event({ content: { case: "text", value: { body: "x".repeat(16_400) } } }),
      event({ content: { case: "text", value: { body: "x".repeat(2_100_000) } } }),
    ];
    for (const e of sizes) {
      const frame = eventFrame(toBinary(RoomEventSchema, e));
      const expected = toBinary(ServerFrameSchema, create(ServerFrameSchema, { frame: { case: "event", value: e } }));
      expect(Buffer.compare(frame, expected)).toBe(0);
      expect(fromBinary(ServerFrameSchema, frame).frame).toEqual({ case: "event", value: e });
    }
  });

  it("frames an empty event (all defaults) as the tag and a zero length", () => {
    expect([...eventFrame(new Uint8Array(0))]).toEqual([0x1a, 0]);
  });
});
