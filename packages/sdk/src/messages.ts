import type { MessageInitShape } from "@bufbuild/protobuf";
import { type RoomEventSchema, RoomEventType } from "@service-chat/api";

/** What `ChatClient.send` takes: a RoomEvent without the fields the server sets. */
export type EventInit = MessageInitShape<typeof RoomEventSchema>;

/** An attachment: where its bytes are (an http(s) URL from your upload endpoint) and what it is. */
export interface AttachmentInit {
  uri: string;
  mimeType: string;
  sizeBytes: number | bigint;
  filename?: string;
  caption?: string;
}

/**
 * Builders for every kind of message a person sends, so that no caller assembles the `content`
 * oneof by hand. Each returns an EventInit for `ChatClient.send` (the client methods `sendText`,
 * `reply`, `edit`, `redact`, `react` and `sendAttachment` call these). `clientId` is optional
 * everywhere: the client gives each send one.
 */
export const messages = {
  text(roomId: string, body: string, clientId = ""): EventInit {
    return { roomId, clientId, type: RoomEventType.TEXT, content: { case: "text", value: { body } } };
  },
  /** A text message that answers `parentId` (an event of the same room). */
  reply(roomId: string, parentId: string, body: string, clientId = ""): EventInit {
    return { ...messages.text(roomId, body, clientId), parentId };
  },
  /** Replaces the text of your own message `targetEventId`. */
  edit(roomId: string, targetEventId: string, body: string, clientId = ""): EventInit {
    return {
      roomId,
      clientId,
      type: RoomEventType.EDIT,
      content: { case: "edit", value: { targetEventId, text: { body } } },
    };
  },
  /** Deletes `targetEventId` for everyone (yours, or anyone's for moderators and above). */
  redact(roomId: string, targetEventId: string, reason = "", clientId = ""): EventInit {
    return {
      roomId,
      clientId,
      type: RoomEventType.REDACTION,
      content: { case: "redaction", value: { targetEventId, reason } },
    };
  },
  /** Adds (or with `add` false removes) your reaction `key` (an emoji, say) to `targetEventId`. */
  react(roomId: string, targetEventId: string, key: string, add = true, clientId = ""): EventInit {
    return {
      roomId,
      clientId,
      type: RoomEventType.REACTION,
      content: { case: "reaction", value: { targetEventId, key, add } },
    };
  },
  attachment(roomId: string, a: AttachmentInit, clientId = ""): EventInit {
    return {
      roomId,
      clientId,
      type: RoomEventType.ATTACHMENT,
      content: {
        case: "attachment",
        value: {
          uri: a.uri,
          mimeType: a.mimeType,
          sizeBytes: BigInt(a.sizeBytes),
          filename: a.filename ?? "",
          caption: a.caption ?? "",
        },
      },
    };
  },
};

/**
 * `JSON.stringify` replacer for values that hold `seq` (and other int64 fields) as bigint, which
 * JSON cannot carry: they become decimal strings, as in the API's protobuf JSON (`"seq":"42"`).
 * Read them back with `BigInt(s)`. For whole events, `toJson(RoomEventSchema, e)` does the same.
 */
export function bigintToString(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
