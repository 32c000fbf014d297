import type { DescMessage } from "@bufbuild/protobuf";
import {
  AttachmentContentSchema,
  CallContentSchema,
  EditContentSchema,
  EncryptedContentSchema,
  ReactionContentSchema,
  RedactionContentSchema,
  type RoomEvent,
  RoomEventType,
  SystemContentSchema,
  TextContentSchema,
} from "@service-chat/api";
import type { EventKind } from "../db/schema.js";

/** Each event kind: its RoomEventType, and the message its content is stored as (protobuf JSON). */
export const KINDS: Record<EventKind, { type: RoomEventType; schema: DescMessage }> = {
  text: { type: RoomEventType.TEXT, schema: TextContentSchema },
  attachment: { type: RoomEventType.ATTACHMENT, schema: AttachmentContentSchema },
  reaction: { type: RoomEventType.REACTION, schema: ReactionContentSchema },
  encrypted: { type: RoomEventType.ENCRYPTED, schema: EncryptedContentSchema },
  call: { type: RoomEventType.CALL, schema: CallContentSchema },
  edit: { type: RoomEventType.EDIT, schema: EditContentSchema },
  redaction: { type: RoomEventType.REDACTION, schema: RedactionContentSchema },
  system: { type: RoomEventType.SYSTEM, schema: SystemContentSchema },
};

export const kindOfType = (type: RoomEventType): EventKind | undefined =>
  (Object.keys(KINDS) as EventKind[]).find((k) => KINDS[k].type === type);

export type Content = Exclude<RoomEvent["content"], { case: undefined }>;
