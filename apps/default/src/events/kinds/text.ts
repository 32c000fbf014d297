import { RoomEventType, TextContentSchema } from "@service-chat/api";
import { checkBody } from "./checks.js";
import type { EventKindDescriptor } from "./kind.js";

const PREVIEW_CHARS = 140;

export const text: EventKindDescriptor<"text"> = {
  name: "text",
  type: RoomEventType.TEXT,
  schema: TextContentSchema,
  sendable: true,
  targetable: true,
  validate(f, c) {
    checkBody(f, c);
    return undefined;
  },
  searchText: (c) => c.body,
  push: (c) => ({ preview: c.body.slice(0, PREVIEW_CHARS) }),
};
