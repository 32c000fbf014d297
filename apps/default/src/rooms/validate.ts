import type { JsonObject } from "@bufbuild/protobuf";
import { RoomType } from "@service-chat/api";
import { checkCount, checkProfileId, checkText, invalid } from "@service-chat/core";
import type { RoomKind } from "../db/schema.js";
import { ROOM_TYPES } from "./present.js";

export const MAX_METADATA_BYTES = 64 * 1024;
export const MAX_MEMBERS_PER_CALL = 1000;

export const checkName = (field: string, v: string, required = false) =>
  checkText(field, v, { maxBytes: 200, required });
export const checkDescription = (field: string, v: string) => checkText(field, v, { maxBytes: 2000, multiline: true });

/** Room metadata as stored: a JSON object of at most 64 KiB. */
export function checkMetadata(field: string, v: JsonObject | undefined): string {
  const json = JSON.stringify(v ?? {});
  if (Buffer.byteLength(json) > MAX_METADATA_BYTES) throw invalid(field, `is larger than ${MAX_METADATA_BYTES} bytes`);
  return json;
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
