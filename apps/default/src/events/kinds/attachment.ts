import { AttachmentContentSchema, RoomEventType } from "@service-chat/api";
import { checkText, invalid } from "@service-chat/core";
import { MAX_TEXT_BYTES } from "./checks.js";
import type { EventKindDescriptor } from "./kind.js";

export const attachment: EventKindDescriptor<"attachment"> = {
  name: "attachment",
  type: RoomEventType.ATTACHMENT,
  schema: AttachmentContentSchema,
  sendable: true,
  targetable: true,
  validate(f, a) {
    checkText(`${f}.uri`, a.uri, { maxBytes: 2048, required: true });
    if (!URL.canParse(a.uri)) throw invalid(`${f}.uri`, "is not an absolute URI");
    checkText(`${f}.mime_type`, a.mimeType, { maxBytes: 255, required: true });
    if (!/^[\w.+-]+\/[\w.+-]+$/.test(a.mimeType)) throw invalid(`${f}.mime_type`, "is not a media type like image/png");
    if (a.sizeBytes < 0n || a.sizeBytes > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalid(`${f}.size_bytes`, "must be between 0 and 2^53");
    }
    checkText(`${f}.filename`, a.filename, { maxBytes: 255 });
    checkText(`${f}.caption`, a.caption, { maxBytes: MAX_TEXT_BYTES, multiline: true });
    return undefined;
  },
  // The filename whole and as words ("budget-2024.pdf" is one token to the parser), and the caption.
  searchText: (a) => `${a.filename} ${a.filename.replace(/[^\p{L}\p{N}]+/gu, " ")} ${a.caption}`,
  push: (a) => (a.filename ? { preview: a.filename } : {}),
};
