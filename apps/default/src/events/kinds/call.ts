import { CallAction, CallContentSchema, RoomEventType } from "@service-chat/api";
import { checkText, invalid } from "@service-chat/core";
import { checkEnum, MAX_BLOB_BYTES } from "./checks.js";
import type { EventKindDescriptor } from "./kind.js";

/** Call signalling; only an offer (someone is calling) is worth a push. */
export const call: EventKindDescriptor<"call"> = {
  name: "call",
  type: RoomEventType.CALL,
  schema: CallContentSchema,
  sendable: true,
  targetable: true,
  validate(f, c) {
    checkText(`${f}.call_id`, c.callId, { maxBytes: 128, required: true });
    if (c.action === CallAction.UNSPECIFIED) throw invalid(`${f}.action`, "is required");
    checkEnum(`${f}.action`, c.action, CallAction);
    checkText(`${f}.sdp`, c.sdp, { maxBytes: MAX_BLOB_BYTES, multiline: true });
    return undefined;
  },
  push: (c) => (c.action === CallAction.OFFER ? {} : undefined),
};
