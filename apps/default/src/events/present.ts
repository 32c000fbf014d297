import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ContactLinkSchema, type RoomEvent, RoomEventSchema } from "@service-chat/api";
import type { EventRow } from "../db/schema.js";
import { type Content, kindNamed } from "./kinds/index.js";

/** A stored event as the API shows it. */
export function presentEvent(row: EventRow): RoomEvent {
  const kind = kindNamed(row.type);
  const content = {
    case: row.type,
    value: fromJson(kind.schema, row.content as JsonValue, { ignoreUnknownFields: true }),
  } as Content;
  return create(RoomEventSchema, {
    id: row.id,
    roomId: row.room_id,
    seq: BigInt(row.seq),
    source: create(ContactLinkSchema, { profileId: row.sender_id, contactId: row.sender_contact_id }),
    type: kind.type,
    sentAt: timestampFromDate(row.sent_at),
    serverTs: timestampFromDate(row.server_ts),
    parentId: row.parent_id ?? "",
    clientId: row.client_id ?? "",
    edited: row.edited,
    redacted: row.redacted,
    content,
  });
}
