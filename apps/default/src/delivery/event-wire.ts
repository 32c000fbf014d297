import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { EventBatchSchema, type RoomEvent, RoomEventSchema } from "@service-chat/api";
import { readEvent, type WireEvent } from "@service-chat/protocol";

export type { WireEvent } from "@service-chat/protocol";

// Field numbers of EventBatch (proto/chat/v1); RoomEvent's and ServerFrame's are checked in
// @service-chat/protocol's event-wire.ts, which reads and frames a single event.
const BATCH_EVENTS = 1;
const BATCH_TRACEPARENT = 3;

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

/** The event decoded. */
export const decodeEvent = (e: WireEvent): RoomEvent => fromBinary(RoomEventSchema, e.bytes);

/** Checked once at load: the field numbers above are the schema's. */
const fieldNumbers = [
  EventBatchSchema.field.events?.number === BATCH_EVENTS,
  EventBatchSchema.field.traceparent?.number === BATCH_TRACEPARENT,
];
if (fieldNumbers.includes(false)) throw new Error("event-wire.ts: field numbers differ from proto/chat/v1");
