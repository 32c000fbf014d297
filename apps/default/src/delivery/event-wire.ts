import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { EventBatchSchema, type RoomEvent, RoomEventSchema, RoomEventType, ServerFrameSchema } from "@service-chat/api";

/** A stream entry's event as fan-out needs it: where it goes and its bytes, decoded only if it must be. */
export interface WireEvent {
  roomId: string;
  seq: number;
  type: RoomEventType;
  /** The RoomEvent as encoded by the relay. */
  bytes: Uint8Array;
}

// Field numbers of EventBatch, RoomEvent and ServerFrame (proto/chat/v1).
const BATCH_EVENTS = 1;
const BATCH_TRACEPARENT = 3;
const EVENT_ROOM_ID = 2;
const EVENT_TYPE = 4;
const EVENT_SEQ = 6;
const FRAME_EVENT = 3;

/**
 * The events of an EventBatch entry, read without decoding them: each one's room, seq and type,
 * and its bytes as they are; `trace` is the traceparent of the relay's span, when traced. Fan-out decodes an event only when it needs its content (system
 * events, push), and wraps the bytes as a ServerFrame without encoding the event again.
 */
export function readBatch(entry: Uint8Array): WireEvent[] & { trace?: string } {
  const events: WireEvent[] & { trace?: string } = [];
  const reader = new BinaryReader(entry);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === BATCH_EVENTS && wireType === WireType.LengthDelimited) events.push(readEvent(reader.bytes()));
    else if (field === BATCH_TRACEPARENT && wireType === WireType.LengthDelimited) events.trace = reader.string();
    else reader.skip(wireType, field);
  }
  return events;
}

function readEvent(bytes: Uint8Array): WireEvent {
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

/** The event decoded. */
export const decodeEvent = (e: WireEvent): RoomEvent => fromBinary(RoomEventSchema, e.bytes);

/** `ServerFrame{event}` around the event's bytes, as `toBinary` would write it. */
export function eventFrame(e: WireEvent): Uint8Array {
  return new BinaryWriter().tag(FRAME_EVENT, WireType.LengthDelimited).bytes(e.bytes).finish();
}

/** Checked once at load: the field numbers above are the schema's. */
const fieldNumbers = [
  EventBatchSchema.field.events?.number === BATCH_EVENTS,
  EventBatchSchema.field.traceparent?.number === BATCH_TRACEPARENT,
  RoomEventSchema.field.roomId?.number === EVENT_ROOM_ID,
  RoomEventSchema.field.type?.number === EVENT_TYPE,
  RoomEventSchema.field.seq?.number === EVENT_SEQ,
  ServerFrameSchema.field.event?.number === FRAME_EVENT,
];
if (fieldNumbers.includes(false)) throw new Error("event-wire.ts: field numbers differ from proto/chat/v1");
