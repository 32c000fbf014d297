import { type RoomEvent, RoomEventType } from "@service-chat/api";
import { checkId, checkOptionalId, checkText, denied, invalid } from "@service-chat/core";
import { type Content, type EventKind, kindOfType } from "./kinds/index.js";

export const MAX_EVENTS_PER_CALL = 100;

/** A sent event that passed validation: what the store needs, nothing the server assigns. */
export interface ValidEvent {
  roomId: string;
  kind: EventKind;
  content: Content;
  parentId?: string;
  clientId?: string;
  sentAt?: Date;
  /** The event an edit, redaction or reaction points at. */
  targetId?: string;
}

/**
 * Validates one event a client sends. Output-only fields (id, seq, server_ts, edited, redacted)
 * are ignored, so an event read from history can be sent back as is; `source` may only name the
 * caller. The content is checked by its kind (events/kinds/).
 */
export function validateEvent(f: string, e: RoomEvent, callerId: string, now = Date.now()): ValidEvent {
  const roomId = checkId(`${f}.room_id`, e.roomId);
  if (e.source?.profileId && e.source.profileId !== callerId) {
    throw denied(`${f}.source.profile_id: events can only be sent as yourself`);
  }
  if (e.type === RoomEventType.UNSPECIFIED) throw invalid(`${f}.type`, "is required");
  const kind = kindOfType(e.type);
  if (kind === undefined) throw invalid(`${f}.type`, `${e.type} is not a known event type`);
  if (!kind.sendable) throw invalid(`${f}.type`, `${kind.name} events are written by the server`);
  if (e.content.case === undefined) {
    throw invalid(`${f}.content`, `a ${kind.name} event needs its ${kind.name} content`);
  }
  if (e.content.case !== kind.name) {
    throw invalid(`${f}.type`, `is ${RoomEventType[e.type]} but the content is ${e.content.case}`);
  }
  const clientId = e.clientId === "" ? undefined : checkText(`${f}.client_id`, e.clientId, { maxBytes: 128 });
  const parentId = checkOptionalId(`${f}.parent_id`, e.parentId);
  let sentAt: Date | undefined;
  if (e.sentAt) {
    const ms = Number(e.sentAt.seconds) * 1000 + Math.floor(e.sentAt.nanos / 1e6);
    if (!Number.isFinite(ms) || ms < 0 || ms > now + 24 * 3600_000) {
      throw invalid(`${f}.sent_at`, "is not a plausible time");
    }
    sentAt = new Date(ms);
  }
  const targetId = kind.validate(`${f}.${kind.name}`, e.content.value);
  return {
    roomId,
    kind: kind.name as EventKind,
    content: e.content as Content,
    ...(parentId ? { parentId } : {}),
    ...(clientId ? { clientId } : {}),
    ...(sentAt ? { sentAt } : {}),
    ...(targetId ? { targetId } : {}),
  };
}
