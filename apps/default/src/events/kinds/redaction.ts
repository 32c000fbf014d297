import { RedactionContentSchema, RoomEventType } from "@service-chat/api";
import { checkId, checkText } from "@service-chat/core";
import type { EventKindDescriptor } from "./kind.js";

/** Removes an event's content (and every edit of it) for everyone; the sender's own, or anyone's for moderators. */
export const redaction: EventKindDescriptor<"redaction"> = {
  name: "redaction",
  type: RoomEventType.REDACTION,
  schema: RedactionContentSchema,
  sendable: true,
  targetable: true,
  validate(f, c) {
    checkText(`${f}.reason`, c.reason, { maxBytes: 512 });
    return checkId(`${f}.target_event_id`, c.targetEventId);
  },
  target: {
    othersEvents: { refusal: "only the sender or a moderator can redact a message", unless: "event.redact_any" },
  },
  effect: () => "redact",
};
