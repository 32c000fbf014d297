import { ReactionContentSchema, RoomEventType } from "@service-chat/api";
import { checkId, checkText } from "@service-chat/core";
import type { EventKindDescriptor } from "./kind.js";

/** A reaction to any message of the room (not to system events), by anyone who may send. */
export const reaction: EventKindDescriptor<"reaction"> = {
  name: "reaction",
  type: RoomEventType.REACTION,
  schema: ReactionContentSchema,
  sendable: true,
  targetable: true,
  validate(f, c) {
    checkText(`${f}.key`, c.key, { maxBytes: 64, required: true });
    return checkId(`${f}.target_event_id`, c.targetEventId);
  },
  target: {},
};
