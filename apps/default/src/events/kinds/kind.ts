import type { DescMessage } from "@bufbuild/protobuf";
import type { RoomEvent, RoomEventType } from "@service-chat/api";
import type { Action } from "../../authz/permissions.js";

/** The content of an event as the API carries it: one case of `RoomEvent.content`. */
export type Content = Exclude<RoomEvent["content"], { case: undefined }>;
/** A content case; a kind's stored name is its content case. */
export type ContentCase = Content["case"];
export type ContentOf<C extends ContentCase> = Extract<Content, { case: C }>["value"];

/** What an event pointing at another (target_event_id) may point at, and whose. */
export interface TargetRule {
  /** Only these kinds, others refused with `refusal` (invalid_argument). Unset: any kind that is `targetable`. */
  kinds?: { only: readonly ContentCase[]; refusal: string };
  /** Another member's event: refused with `refusal` (permission_denied) unless the role may `unless`. Unset: anyone's. */
  othersEvents?: { refusal: string; unless?: Action };
}

/** What storing an event does to its target, in the same transaction. */
export type TargetEffect =
  /** The target's content becomes `content` (protobuf JSON) and search finds it by `searchText`. */
  | { replace: Record<string, unknown>; searchText: string }
  /** The target, and every event repeating its content (`repeatsTarget`), is emptied and marked redacted. */
  | "redact";

/**
 * Everything the Default Service knows about one kind of event. The list in `index.ts` is the only
 * place kinds are enumerated: validation, storage, search, presentation, push and the database's
 * CHECK on room_events.type all read it.
 */
export interface EventKindDescriptor<C extends ContentCase = ContentCase> {
  /** The stored name (room_events.type), which is also its content case. */
  readonly name: C;
  readonly type: RoomEventType;
  /** The content message, stored as its protobuf JSON. */
  readonly schema: DescMessage;
  /** Clients may send it; system events are written by the server only. */
  readonly sendable: boolean;
  /** Other events may point at it (edit, redact, react to it). */
  readonly targetable: boolean;
  /** Checks a sent content (throwing invalid_argument naming the field); answers the event it targets, if any. */
  validate(field: string, content: ContentOf<C>): string | undefined;
  /** The rules of its target, for kinds that have one. */
  readonly target?: TargetRule;
  /** Text full-text search should find it by. */
  searchText?(content: ContentOf<C>): string | undefined;
  /** The push notification it deserves, if any, with the text to preview (never for encrypted events). */
  push?(content: ContentOf<C>): { preview?: string } | undefined;
  /** What storing it does to its target. */
  effect?(content: ContentOf<C>): TargetEffect | undefined;
  /** Its content repeats its target's (edits): redacting the target empties it too. */
  readonly repeatsTarget?: boolean;
}
