import { AppError, invalid } from "@service-chat/core";
import { can } from "../authz/permissions.js";
import type { EventRow, Role } from "../db/schema.js";
import { kindNamed } from "./kinds/index.js";
import type { ValidEvent } from "./validate.js";

/** What the rules need of an event another one points at. */
export type Referenced = Pick<EventRow, "type" | "sender_id" | "redacted">;

/**
 * The rules for an event that points at others of the room: its parent (a reply) must be one,
 * and its target (edit, redaction, reaction) must be one its kind may target (`target` of its
 * descriptor), not redacted, and the caller's own unless the kind allows otherwise.
 */
export function checkReferences(
  f: string,
  e: ValidEvent,
  callerId: string,
  role: Role,
  events: ReadonlyMap<string, Referenced>,
): void {
  if (e.parentId && !events.has(e.parentId)) throw invalid(`${f}.parent_id`, "is not an event of this room");
  if (!e.targetId) return;
  const rule = kindNamed(e.kind).target ?? {};
  const target = events.get(e.targetId);
  const field = `${f}.${e.kind}.target_event_id`;
  if (!target) throw invalid(field, "is not an event of this room");
  if (!kindNamed(target.type).targetable) {
    throw invalid(field, `${target.type} events cannot be edited, redacted or reacted to`);
  }
  if (target.redacted) throw new AppError("failed_precondition", "the target event was redacted", field);
  if (rule.kinds && !rule.kinds.only.includes(target.type)) throw invalid(field, rule.kinds.refusal);
  const others = rule.othersEvents;
  if (others && target.sender_id !== callerId && !(others.unless && can(role, others.unless))) {
    throw new AppError("permission_denied", others.refusal, field);
  }
}
