import type { RoomEventType } from "@service-chat/api";
import { attachment } from "./attachment.js";
import { call } from "./call.js";
import { edit } from "./edit.js";
import { encrypted } from "./encrypted.js";
import type { EventKindDescriptor } from "./kind.js";
import { reaction } from "./reaction.js";
import { redaction } from "./redaction.js";
import { system } from "./system.js";
import { text } from "./text.js";

export type { Content, ContentCase, ContentOf, EventKindDescriptor, TargetEffect, TargetRule } from "./kind.js";

/**
 * Every kind of event, each described once in its own file. Validation, storage, search, history,
 * push and the database's CHECK on room_events.type (db/event-kinds.ts) all read this list; a kind
 * missing here is refused everywhere, the database included. docs/ARCHITECTURE.md, "Adding things".
 */
export const KINDS = [text, attachment, reaction, encrypted, call, edit, redaction, system] as const;

/** A stored kind name (room_events.type). */
export type EventKind = (typeof KINDS)[number]["name"];

export const KIND_NAMES: readonly EventKind[] = KINDS.map((k) => k.name);

const byName = new Map<string, EventKindDescriptor>(KINDS.map((k) => [k.name, k as EventKindDescriptor]));
const byType = new Map<RoomEventType, EventKindDescriptor>(KINDS.map((k) => [k.type, k as EventKindDescriptor]));

/** The kind of a stored event (the database refuses any other name). */
export function kindNamed(name: string): EventKindDescriptor {
  const kind = byName.get(name);
  if (!kind) throw new Error(`unknown event kind ${name}`);
  return kind;
}

/** The kind a client names by RoomEventType, if there is one. */
export const kindOfType = (type: RoomEventType): EventKindDescriptor | undefined => byType.get(type);

/** Kinds whose content repeats their target's: a redaction empties them with it. */
export const REPEATING_KINDS: readonly EventKind[] = KINDS.filter((k) => "repeatsTarget" in k && k.repeatsTarget).map(
  (k) => k.name,
);
