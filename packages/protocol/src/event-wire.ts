import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { RoomEventSchema, RoomEventType, ServerFrameSchema } from "@service-chat/api";

/**
 * A RoomEvent as the service encoded it, with the few fields that route it read from its bytes:
 * fan-out (relay → gateways) and the gateway's replay (SyncDevices' `encoded_events`) both pass
 * events on without needing their content, and decode them only when they must.
 */
export interface WireEvent {
  roomId: string;
  /** As a number, as every per-room order check keeps it (exact up to 2^53). */
  seq: number;
  type: RoomEventType;
  /** The RoomEvent's bytes, as given. */
  bytes: Uint8Array;
}

// Field numbers of RoomEvent and ServerFrame (proto/chat/v1), checked against the schema below.
const EVENT_ROOM_ID = 2;
const EVENT_TYPE = 4;
const EVENT_SEQ = 6;
const FRAME_EVENT = 3;
/** ServerFrame's `event` field, length-delimited: what precedes a RoomEvent's bytes in its frame. */
const FRAME_EVENT_TAG = (FRAME_EVENT << 3) | WireType.LengthDelimited;

/**
 * Reads an encoded RoomEvent's room, type and seq, skipping every other field without decoding it
 * (a string or a message is skipped by its length). Throws on bytes that are not a protobuf message.
 */
export function readEvent(bytes: Uint8Array): WireEvent {
  const event: WireEvent = { roomId: "", seq: 0, type: RoomEventType.UNSPECIFIED, bytes };
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === EVENT_ROOM_ID && wireType === WireType.LengthDelimited) event.roomId = reader.string();
    else if (field === EVENT_TYPE && wireType === WireType.Varint) event.type = reader.int32();
    else if (field === EVENT_SEQ && wireType === WireType.Varint) event.seq = Number(reader.int64());
    else reader.skip(wireType, field);
  }
  return event;
}

/**
 * `ServerFrame{event}` around an encoded RoomEvent, byte for byte what `toBinary` writes for that
 * frame: its tag, its length and the event's bytes, nothing encoded again. The frame is taken from
 * Node's pool of small buffers (shared with other small buffers: copy it, do not transfer its
 * ArrayBuffer); a typed array of its own per event, or a BinaryWriter, costs far more when every
 * event of a reconnect storm is framed.
 */
export function eventFrame(event: Uint8Array): Uint8Array {
  const length = event.byteLength;
  let lengthBytes = 1;
  for (let n = length; n > 0x7f; n >>>= 7) lengthBytes++;
  const frame = Buffer.allocUnsafe(1 + lengthBytes + length);
  let at = 0;
  frame[at++] = FRAME_EVENT_TAG;
  let n = length;
  for (; n > 0x7f; n >>>= 7) frame[at++] = (n & 0x7f) | 0x80;
  frame[at++] = n;
  frame.set(event, at);
  return frame;
}

/** Checked once at load: the field numbers above are the schema's. */
const fieldNumbers = [
  RoomEventSchema.field.roomId?.number === EVENT_ROOM_ID,
  RoomEventSchema.field.type?.number === EVENT_TYPE,
  RoomEventSchema.field.seq?.number === EVENT_SEQ,
  ServerFrameSchema.field.event?.number === FRAME_EVENT,
];
if (fieldNumbers.includes(false)) throw new Error("event-wire.ts: field numbers differ from proto/chat/v1");
