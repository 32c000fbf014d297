import { create, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import {
  type ChatService,
  type RoomEvent,
  RoomEventSchema,
  RoomEventType,
  type ServerFrame,
  ServerFrameSchema,
  type SyncDevicesRequest,
  SyncResponseSchema,
} from "@service-chat/api";
import { createLogger } from "@service-chat/core";
import { describe, expect, it } from "vitest";
import { chatClientPort } from "../../src/session/chat-port.js";
import { EncodedEvent } from "../../src/session/encoded-event.js";
import { OrderedDelivery } from "../../src/session/ordered-delivery.js";
import { framed, framedJson } from "../../src/ws.js";

const events: RoomEvent[] = [
  create(RoomEventSchema, {
    id: "e1",
    roomId: "room-a",
    seq: 1n,
    type: RoomEventType.TEXT,
    source: { profileId: "alice" },
    serverTs: { seconds: 1_700_000_000n },
    content: { case: "text", value: { body: "héllo" } },
    clientId: "c1",
    edited: true,
  }),
  create(RoomEventSchema, {
    id: "e2",
    roomId: "room-a",
    seq: 2n,
    type: RoomEventType.ATTACHMENT,
    content: { case: "attachment", value: { uri: "https://f/1", mimeType: "image/png", sizeBytes: 10n } },
  }),
  create(RoomEventSchema, { id: "e3", roomId: "room-a", seq: 3n, type: RoomEventType.REDACTION, redacted: true }),
];
/** The payload of a server's WebSocket frame (RFC 6455 §5.2: unmasked, 7, 16 or 64-bit length). */
const payload = (wire: Buffer) => wire.subarray(wire[1] === 127 ? 10 : wire[1] === 126 ? 4 : 2);
const eagerFrame = (e: RoomEvent) => create(ServerFrameSchema, { frame: { case: "event", value: e } });

/** A Default Service that answers every device of a SyncDevices call the same page, its events in binary. */
function encodedChat(): Client<typeof ChatService> {
  return {
    syncDevices: async (req: SyncDevicesRequest) => ({
      devices: req.devices.map(() => ({
        result: { case: "response", value: create(SyncResponseSchema, { cursors: [{ roomId: "room-a", seq: 3n }] }) },
        eventIndexes: events.map((_, i) => i),
      })),
      events: [],
      encodedEvents: events.map((e) => toBinary(RoomEventSchema, e)),
    }),
  } as unknown as Client<typeof ChatService>;
}

/** Replays one device through the gateway's own port; answers the event frames written, with their bytes. */
async function replay(): Promise<{ frame: ServerFrame; bytes: Uint8Array }[]> {
  const port = chatClientPort(encodedChat())({
    identity: { profileId: "bob", contactId: "", deviceId: "d" },
    token: "t",
    deviceId: "d",
  });
  const written: { frame: ServerFrame; bytes: Uint8Array }[] = [];
  const delivery = new OrderedDelivery(
    {
      sync: (cursors, limit) => port.sync(cursors, limit),
      emit: (frame, bytes) => {
        if (frame.frame.case === "event") written.push({ frame, bytes: bytes as Uint8Array });
      },
      close: () => {},
    },
    { replayPageSize: 500, maxHeldFrames: 10 },
    createLogger("silent"),
  );
  expect(await delivery.replay([])).toBe(events.length);
  return written;
}

describe("a replayed event the service sent in binary", () => {
  it("reaches a device on the JSON subprotocol whole: the JSON text of the full event", async () => {
    const written = await replay();
    expect(written).toHaveLength(events.length);
    written.forEach(({ frame, bytes }, i) => {
      const e = events[i] as RoomEvent;
      // What the WebSocket sink writes for a JSON device: a text frame of the ServerFrame in JSON.
      const wire = framedJson(bytes, frame);
      expect(wire[0]).toBe(0x81);
      const json = payload(wire).toString("utf8");
      expect(fromJsonString(ServerFrameSchema, json).frame).toEqual({ case: "event", value: e });
      expect(json).toBe(toJsonString(ServerFrameSchema, eagerFrame(e)));
    });
  });

  it("reaches a binary WebSocket device and an HTTP/2 device as the same bytes encoding the frame would give", async () => {
    for (const { frame, bytes } of await replay()) {
      const e = (frame.frame.case === "event" && frame.frame.value) as RoomEvent;
      const expected = toBinary(ServerFrameSchema, eagerFrame(e));
      // Binary WebSocket: the bytes as they are; HTTP/2: the frame message, encoded by the RPC library.
      expect(Buffer.compare(bytes, expected)).toBe(0);
      expect(Buffer.compare(payload(framed(bytes)), expected)).toBe(0);
      expect(Buffer.compare(toBinary(ServerFrameSchema, frame), expected)).toBe(0);
    }
  });

  it("is read for its room and seq, and decoded once however often its event is read", () => {
    const e = new EncodedEvent(toBinary(RoomEventSchema, events[0] as RoomEvent));
    expect([e.roomId, e.seq, e.frame.frame.case]).toEqual(["room-a", 1, "event"]);
    const first = e.frame.frame.value;
    expect(first).toEqual(events[0]);
    expect(e.frame.frame.value).toBe(first);
    expect(e.frame).toEqual(eagerFrame(events[0] as RoomEvent));
  });
});
