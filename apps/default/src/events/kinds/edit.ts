import { toJson } from "@bufbuild/protobuf";
import { EditContentSchema, RoomEventType, TextContentSchema } from "@service-chat/api";
import { checkId, invalid } from "@service-chat/core";
import { checkBody } from "./checks.js";
import type { EventKindDescriptor } from "./kind.js";

/** A new text for one's own text message: it replaces the target's content and search text. */
export const edit: EventKindDescriptor<"edit"> = {
  name: "edit",
  type: RoomEventType.EDIT,
  schema: EditContentSchema,
  sendable: true,
  targetable: true,
  validate(f, c) {
    if (!c.text) throw invalid(`${f}.text`, "is required");
    checkBody(`${f}.text`, c.text);
    return checkId(`${f}.target_event_id`, c.targetEventId);
  },
  target: {
    kinds: { only: ["text"], refusal: "only text messages can be edited" },
    othersEvents: { refusal: "only the sender can edit a message" },
  },
  effect: (c) =>
    c.text
      ? { replace: toJson(TextContentSchema, c.text) as Record<string, unknown>, searchText: c.text.body }
      : undefined,
  repeatsTarget: true,
};
