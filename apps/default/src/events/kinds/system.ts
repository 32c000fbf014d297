import { create, toJson } from "@bufbuild/protobuf";
import { RoomEventType, SystemContentSchema, SystemEventKind } from "@service-chat/api";
import { invalid } from "@service-chat/core";
import type { NewEvent } from "../store.js";
import type { EventKindDescriptor } from "./kind.js";

export { SystemEventKind };

/** Room changes, written by the server in the room's history; nobody sends, edits, redacts or reacts to them. */
export const system: EventKindDescriptor<"system"> = {
  name: "system",
  type: RoomEventType.SYSTEM,
  schema: SystemContentSchema,
  sendable: false,
  targetable: false,
  validate(f) {
    throw invalid(f, "system events are written by the server");
  },
};

/** The room changes after which fan-out must look at the room's members again. */
export const MEMBERSHIP_CHANGES: ReadonlySet<SystemEventKind> = new Set([
  SystemEventKind.ROOM_CREATED,
  SystemEventKind.MEMBERS_ADDED,
  SystemEventKind.MEMBERS_REMOVED,
  SystemEventKind.ROOM_DELETED,
]);

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
    changesMembers: MEMBERSHIP_CHANGES.has(kind),
  };
}
