import { create, fromBinary } from "@bufbuild/protobuf";
import { type RoomEvent, RoomEventSchema, type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import { eventFrame, readEvent } from "@service-chat/protocol";

/**
 * A replayed event as the Default Service sent it in binary (SyncDevices' `encoded_events`), not
 * decoded: its room and seq read from its bytes, which is all the ordered delivery needs, and its
 * `event` frame made from the same bytes, which is all a binary WebSocket device needs. The
 * RoomEvent object is decoded only when something reads the frame's event (a device on the JSON
 * subprotocol, whose text is made from it, or on the HTTP/2 stream, whose frames are messages),
 * once per EncodedEvent.
 *
 * Why not also a cache of decoded events across SyncDevices answers (keyed by room and seq): with
 * no decode on the binary path there is little left to save, and a cache would have to tell an
 * event edited or redacted since from the one it kept, which the service knows
 * (delivery/encoded-events.ts) and the gateway could only learn by comparing bytes (the event's
 * `edited` flag does not tell a second edit from the first). Within one answer an event several
 * devices hold is already one EncodedEvent (chat-port.ts).
 */
export class EncodedEvent {
  readonly roomId: string;
  readonly seq: number;
  /** The ServerFrame in binary: `ServerFrame{event}` around the service's bytes. */
  readonly bytes: Uint8Array;
  /** The ServerFrame; reading its `frame.case` decodes nothing, its `frame.value` decodes the event. */
  readonly frame: ServerFrame;

  /** Throws on bytes that are not a protobuf message. */
  constructor(event: Uint8Array) {
    const { roomId, seq } = readEvent(event);
    this.roomId = roomId;
    this.seq = seq;
    // The frame is a copy: it does not keep the whole SyncDevices answer in memory.
    this.bytes = eventFrame(event);
    this.frame = create(ServerFrameSchema);
    this.frame.frame = lazyEventCase(this.bytes, event.byteLength);
  }
}

/**
 * ServerFrame's `event` case whose RoomEvent is decoded from the frame's bytes (their last
 * `eventLength`) the first time it is read, then kept. protobuf-es reads a oneof as `{case, value}`,
 * so encoding the frame (binary or JSON) gets the full event, and counting frames by kind reads
 * "event" without a decode. An object literal's getter is its own and enumerable, so a copy or a
 * comparison of the frame sees the event too.
 */
function lazyEventCase(frameBytes: Uint8Array, eventLength: number): ServerFrame["frame"] {
  let decoded: RoomEvent | undefined;
  return {
    case: "event",
    get value(): RoomEvent {
      decoded ??= fromBinary(RoomEventSchema, frameBytes.subarray(frameBytes.byteLength - eventLength));
      return decoded;
    },
  };
}
