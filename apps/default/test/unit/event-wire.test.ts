import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type RoomEvent, RoomEventSchema, RoomEventType, ServerFrameSchema, SystemEventKind } from "@service-chat/api";
import { eventFrame } from "@service-chat/protocol";
import { expect, it } from "vitest";
import { decodeEvent, readBatch } from "../../src/delivery/event-wire.js";
import { encodeBatches } from "../../src/delivery/outbox-relay.js";

it("reads a stream entry's events without decoding them, and frames each as the gateway expects", () => {
  const events = [
    create(RoomEventSchema, {
      id: "e1",
      roomId: "room-a",
      seq: 41n,
      type: RoomEventType.TEXT,
      content: { case: "text", value: { body: "héllo" } },
    }),
    create(RoomEventSchema, {
      id: "e2",
      roomId: "room-b",
      seq: 9_007_199_254_740_991n,
      type: RoomEventType.SYSTEM,
      content: { case: "system", value: { kind: SystemEventKind.MEMBERS_ADDED, profileIds: ["x"] } },
    }),
  ];
  const [entry] = encodeBatches(events);
  const read = readBatch(entry as Uint8Array);
  expect(read.map((e) => [e.roomId, e.seq, e.type])).toEqual([
    ["room-a", 41, RoomEventType.TEXT],
    ["room-b", 9_007_199_254_740_991, RoomEventType.SYSTEM],
  ]);
  read.forEach((wire, i) => {
    expect(decodeEvent(wire)).toEqual(events[i]);
    const framed = eventFrame(wire.bytes);
    expect(new Uint8Array(framed)).toEqual(
      toBinary(
        ServerFrameSchema,
        create(ServerFrameSchema, { frame: { case: "event", value: events[i] as RoomEvent } }),
      ),
    );
    expect(fromBinary(ServerFrameSchema, framed).frame.value).toEqual(events[i]);
  });
});
