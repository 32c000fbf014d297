import { CallAction, type RoomEvent, RoomEventType, TextFormat } from "@service-chat/api";
import { checkId, checkOptionalId, checkText, denied, invalid } from "@service-chat/core";
import type { EventKind } from "../db/schema.js";
import { type Content, KINDS, kindOfType } from "./content.js";

export const MAX_EVENTS_PER_CALL = 100;
export const MAX_TEXT_BYTES = 16 * 1024;
const MAX_BLOB_BYTES = 64 * 1024;

/** A sent event that passed validation: what the store needs, nothing the server assigns. */
export interface ValidEvent {
  roomId: string;
  kind: Exclude<EventKind, "system">;
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
 * caller.
 */
export function validateEvent(f: string, e: RoomEvent, callerId: string): ValidEvent {
  const roomId = checkId(`${f}.room_id`, e.roomId);
  if (e.source?.profileId && e.source.profileId !== callerId) {
    throw denied(`${f}.source.profile_id: events can only be sent as yourself`);
  }
  if (e.type === RoomEventType.UNSPECIFIED) throw invalid(`${f}.type`, "is required");
  const kind = kindOfType(e.type);
  if (kind === undefined) throw invalid(`${f}.type`, `${e.type} is not a known event type`);
  if (kind === "system") throw invalid(`${f}.type`, "system events are written by the server");
  if (e.content.case === undefined) throw invalid(`${f}.content`, `a ${kind} event needs its ${kind} content`);
  if (e.content.case !== kind) {
    throw invalid(`${f}.type`, `is ${RoomEventType[e.type]} but the content is ${e.content.case}`);
  }
  const clientId = e.clientId === "" ? undefined : checkText(`${f}.client_id`, e.clientId, { maxBytes: 128 });
  const parentId = checkOptionalId(`${f}.parent_id`, e.parentId);
  let sentAt: Date | undefined;
  if (e.sentAt) {
    const ms = Number(e.sentAt.seconds) * 1000 + Math.floor(e.sentAt.nanos / 1e6);
    if (!Number.isFinite(ms) || ms < 0 || ms > Date.now() + 24 * 3600_000) {
      throw invalid(`${f}.sent_at`, "is not a plausible time");
    }
    sentAt = new Date(ms);
  }
  const targetId = validateContent(`${f}.${kind}`, e.content as Content);
  return {
    roomId,
    kind,
    content: e.content as Content,
    ...(parentId ? { parentId } : {}),
    ...(clientId ? { clientId } : {}),
    ...(sentAt ? { sentAt } : {}),
    ...(targetId ? { targetId } : {}),
  };
}

/** Checks the content of each kind; returns the target event id of edits, redactions and reactions. */
function validateContent(f: string, c: Content): string | undefined {
  switch (c.case) {
    case "text":
      checkText(`${f}.body`, c.value.body, { maxBytes: MAX_TEXT_BYTES, required: true, multiline: true });
      checkEnum(`${f}.format`, c.value.format, TextFormat);
      return undefined;
    case "attachment": {
      const a = c.value;
      checkText(`${f}.uri`, a.uri, { maxBytes: 2048, required: true });
      if (!URL.canParse(a.uri)) throw invalid(`${f}.uri`, "is not an absolute URI");
      checkText(`${f}.mime_type`, a.mimeType, { maxBytes: 255, required: true });
      if (!/^[\w.+-]+\/[\w.+-]+$/.test(a.mimeType))
        throw invalid(`${f}.mime_type`, "is not a media type like image/png");
      if (a.sizeBytes < 0n || a.sizeBytes > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw invalid(`${f}.size_bytes`, "must be between 0 and 2^53");
      }
      checkText(`${f}.filename`, a.filename, { maxBytes: 255 });
      checkText(`${f}.caption`, a.caption, { maxBytes: MAX_TEXT_BYTES, multiline: true });
      return undefined;
    }
    case "reaction":
      checkText(`${f}.key`, c.value.key, { maxBytes: 64, required: true });
      return checkId(`${f}.target_event_id`, c.value.targetEventId);
    case "encrypted": {
      const x = c.value;
      checkText(`${f}.algorithm`, x.algorithm, { maxBytes: 64, required: true });
      if (x.ciphertext.length === 0) throw invalid(`${f}.ciphertext`, "is required");
      if (x.ciphertext.length > MAX_BLOB_BYTES)
        throw invalid(`${f}.ciphertext`, `is longer than ${MAX_BLOB_BYTES} bytes`);
      checkText(`${f}.sender_key_id`, x.senderKeyId, { maxBytes: 256 });
      checkText(`${f}.session_id`, x.sessionId, { maxBytes: 256 });
      return undefined;
    }
    case "call":
      checkText(`${f}.call_id`, c.value.callId, { maxBytes: 128, required: true });
      if (c.value.action === CallAction.UNSPECIFIED) throw invalid(`${f}.action`, "is required");
      checkEnum(`${f}.action`, c.value.action, CallAction);
      checkText(`${f}.sdp`, c.value.sdp, { maxBytes: MAX_BLOB_BYTES, multiline: true });
      return undefined;
    case "edit": {
      const text = c.value.text;
      if (!text) throw invalid(`${f}.text`, "is required");
      checkText(`${f}.text.body`, text.body, { maxBytes: MAX_TEXT_BYTES, required: true, multiline: true });
      checkEnum(`${f}.text.format`, text.format, TextFormat);
      return checkId(`${f}.target_event_id`, c.value.targetEventId);
    }
    case "redaction":
      checkText(`${f}.reason`, c.value.reason, { maxBytes: 512 });
      return checkId(`${f}.target_event_id`, c.value.targetEventId);
    case "system":
      throw invalid(f, "system events are written by the server");
  }
}

function checkEnum(field: string, value: number, e: object): void {
  if (!(value in e)) throw invalid(field, `${value} is not a known value`);
}

export { KINDS };
