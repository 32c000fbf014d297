import { create, toJson } from "@bufbuild/protobuf";
import { SystemContentSchema, SystemEventKind } from "@service-chat/api";
import type { NewEvent } from "./store.js";

export { SystemEventKind };

/** A room change as an event in the room's history, so every member sees it in order. */
export function systemEvent(
  actorId: string,
  kind: SystemEventKind,
  detail: { profileIds?: string[]; role?: string; fields?: string[] } = {},
): NewEvent {
  const content = create(SystemContentSchema, { kind, actorId, ...detail });
  return {
    senderId: actorId,
    kind: "system",
    content: toJson(SystemContentSchema, content) as Record<string, unknown>,
  };
}
