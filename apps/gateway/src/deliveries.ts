import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type LiveDelivery, LiveDeliverySchema } from "@service-chat/api";
import type { LiveBus } from "@service-chat/core";

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
export function publishToUsers(live: LiveBus, profileIds: readonly string[], frame: Uint8Array): void {
  for (let i = 0; i < profileIds.length; i += RECIPIENTS_PER_MESSAGE) {
    const recipients = profileIds.slice(i, i + RECIPIENTS_PER_MESSAGE);
    live.publish([DELIVERIES_SUBJECT], toBinary(LiveDeliverySchema, create(LiveDeliverySchema, { recipients, frame })));
  }
}

/** Reads a message of the deliveries subject. Throws on bytes that are not one. */
export function decodeDelivery(data: Uint8Array): LiveDelivery {
  return fromBinary(LiveDeliverySchema, data);
}
