import { EncryptedContentSchema, RoomEventType } from "@service-chat/api";
import { checkText, invalid } from "@service-chat/core";
import { MAX_BLOB_BYTES } from "./checks.js";
import type { EventKindDescriptor } from "./kind.js";

/** End-to-end encrypted content: the server stores and delivers it, never reads it. */
export const encrypted: EventKindDescriptor<"encrypted"> = {
  name: "encrypted",
  type: RoomEventType.ENCRYPTED,
  schema: EncryptedContentSchema,
  sendable: true,
  targetable: true,
  validate(f, x) {
    checkText(`${f}.algorithm`, x.algorithm, { maxBytes: 64, required: true });
    if (x.ciphertext.length === 0) throw invalid(`${f}.ciphertext`, "is required");
    if (x.ciphertext.length > MAX_BLOB_BYTES)
      throw invalid(`${f}.ciphertext`, `is longer than ${MAX_BLOB_BYTES} bytes`);
    checkText(`${f}.sender_key_id`, x.senderKeyId, { maxBytes: 256 });
    checkText(`${f}.session_id`, x.sessionId, { maxBytes: 256 });
    return undefined;
  },
  push: () => ({}),
};
