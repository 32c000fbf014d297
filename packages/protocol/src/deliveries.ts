import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { LiveDeliverySchema } from "@service-chat/api";

/** What publishing needs of the live bus (`LiveBus` in @service-chat/core), so this package stands alone. */
export interface LivePublisher {
  publish(subjects: readonly string[], data: Uint8Array): void;
}

/**
 * The live subject every gateway listens on. A frame for many users travels once per gateway,
 * with the list of its recipients, instead of once per user: the gateway decodes it once and
 * writes the same bytes to each local device of those users. Every gateway sees every delivery
 * and skips the recipients it does not hold (a map lookup each).
 */
export const DELIVERIES_SUBJECT = "deliveries";

/** Recipients per message: about 40 KB for 1,000, well inside the backends' message limits. */
export const RECIPIENTS_PER_MESSAGE = 1000;

/** Publishes `frame` (an encoded ServerFrame) for these users' devices, wherever they are connected. */
export function publishToUsers(live: LivePublisher, profileIds: readonly string[], frame: Uint8Array): void {
  publishToRecipients(live, profileIds.map(encodeRecipient), frame);
}

/**
 * A recipient as a LiveDelivery carries it (field 1, length-delimited): a sender that reaches the
 * same people again and again (fan-out, per room) encodes each once and reuses the bytes.
 */
export function encodeRecipient(profileId: string): Uint8Array {
  return new BinaryWriter().tag(1, WireType.LengthDelimited).string(profileId).finish();
}

/** `publishToUsers` for recipients encoded with `encodeRecipient`: building a message is a copy. */
export function publishToRecipients(
  live: LivePublisher,
  recipients: readonly Uint8Array[],
  frame: Uint8Array,
  /** The publishing span's traceparent (LiveDelivery.traceparent), when traced. */
  trace?: string,
): void {
  const writer = new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(frame);
  const frameField = (trace ? writer.tag(3, WireType.LengthDelimited).string(trace) : writer).finish();
  for (let i = 0; i < recipients.length; i += RECIPIENTS_PER_MESSAGE) {
    live.publish([DELIVERIES_SUBJECT], Buffer.concat([...recipients.slice(i, i + RECIPIENTS_PER_MESSAGE), frameField]));
  }
}

/** A message of the deliveries subject, as read by `decodeDelivery`. */
export interface Delivery {
  recipients: string[];
  /** The encoded ServerFrame: a view into the message's bytes, not a copy. */
  frame: Uint8Array;
  traceparent: string;
}

const RECIPIENTS = 1;
const FRAME = 2;
const TRACEPARENT = 3;
if (
  LiveDeliverySchema.field.recipients?.number !== RECIPIENTS ||
  LiveDeliverySchema.field.frame?.number !== FRAME ||
  LiveDeliverySchema.field.traceparent?.number !== TRACEPARENT
) {
  throw new Error("deliveries.ts: LiveDelivery's field numbers differ from proto/chat/v1/delivery.proto");
}

/**
 * Reads a message of the deliveries subject (a LiveDelivery). Every gateway reads every delivery,
 * so this is a reader of its three fields rather than the generic decoder, which builds the
 * message by reflection and cost a gateway more than the rest of a delivery's dispatch. Fields it
 * does not know are skipped, as protobuf readers do. Throws on bytes that are not a LiveDelivery.
 */
export function decodeDelivery(data: Uint8Array): Delivery {
  const reader = new BinaryReader(data);
  const out: Delivery = { recipients: [], frame: EMPTY, traceparent: "" };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === RECIPIENTS || field === FRAME || field === TRACEPARENT) {
      if (wireType !== WireType.LengthDelimited) throw new Error(`LiveDelivery field ${field}: wire type ${wireType}`);
      if (field === RECIPIENTS) out.recipients.push(reader.string());
      else if (field === FRAME) out.frame = reader.bytes();
      else out.traceparent = reader.string();
    } else reader.skip(wireType, field);
  }
  return out;
}

const EMPTY = new Uint8Array(0);
