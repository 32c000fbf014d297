import { fromBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { type LiveDelivery, LiveDeliverySchema } from "@service-chat/api";

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

/** Reads a message of the deliveries subject. Throws on bytes that are not one. */
export function decodeDelivery(data: Uint8Array): LiveDelivery {
  return fromBinary(LiveDeliverySchema, data);
}
