import type { JsonObject } from "@bufbuild/protobuf";
import { RoomType } from "@service-chat/api";
import { checkCount, checkProfileId, checkText, invalid, isWellFormed } from "@service-chat/core";
import type { RoomKind } from "../db/schema.js";
import { ROOM_TYPES } from "./present.js";

export const MAX_METADATA_BYTES = 64 * 1024;
export const MAX_MEMBERS_PER_CALL = 1000;

export const checkName = (field: string, v: string, required = false) =>
  checkText(field, v, { maxBytes: 200, required });
export const checkDescription = (field: string, v: string) => checkText(field, v, { maxBytes: 2000, multiline: true });

/**
 * Room metadata as stored: a JSON object of at most 64 KiB whose strings (keys and values) hold
 * no NUL and no lone surrogate, which the database's JSON type cannot store.
 */
export function checkMetadata(field: string, v: JsonObject | undefined): string {
  const bad = unstorableString(v ?? {});
  if (bad !== undefined) throw invalid(field, `contains ${bad}, which cannot be stored`);
  const json = JSON.stringify(v ?? {});
  if (Buffer.byteLength(json) > MAX_METADATA_BYTES) throw invalid(field, `is larger than ${MAX_METADATA_BYTES} bytes`);
  return json;
}

/** What, if anything, in a JSON value's strings PostgreSQL's jsonb refuses; walks without recursion. */
function unstorableString(root: unknown): string | undefined {
  const stack: unknown[] = [root];
  const check = (s: string) =>
    s.includes("\u0000") ? "a NUL character" : isWellFormed(s) ? undefined : "a lone surrogate";
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") {
      const bad = check(v);
      if (bad) return bad;
    } else if (Array.isArray(v)) {
      stack.push(...v);
    } else if (typeof v === "object" && v !== null) {
      for (const [key, value] of Object.entries(v)) {
        const bad = check(key);
        if (bad) return bad;
        stack.push(value);
      }
    }
  }
  return undefined;
}

export function checkRoomType(field: string, v: RoomType): RoomKind {
  const kind = (Object.keys(ROOM_TYPES) as RoomKind[]).find((k) => ROOM_TYPES[k] === v);
  if (!kind) throw invalid(field, v === RoomType.UNSPECIFIED ? "is required" : `${v} is not a known room type`);
  return kind;
}

export interface MemberInput {
  profileId: string;
  contactId: string;
  profileName: string;
}

/** Members named in a request, checked, without duplicates and without the caller. */
export function checkMembers(
  field: string,
  members: { profileId: string; contactId: string; profileName: string }[],
  callerId: string,
): MemberInput[] {
  checkCount(field, members.length, MAX_MEMBERS_PER_CALL);
  const seen = new Map<string, MemberInput>();
  members.forEach((m, i) => {
    const profileId = checkProfileId(`${field}[${i}].profile_id`, m.profileId);
    checkText(`${field}[${i}].contact_id`, m.contactId, { maxBytes: 128 });
    checkName(`${field}[${i}].profile_name`, m.profileName);
    if (profileId !== callerId && !seen.has(profileId)) {
      seen.set(profileId, { profileId, contactId: m.contactId, profileName: m.profileName });
    }
  });
  return [...seen.values()];
}
