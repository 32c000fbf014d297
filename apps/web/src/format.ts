import { timestampDate } from "@bufbuild/protobuf/wkt";
import { CallAction, type RoomEvent, type SystemContent, SystemEventKind } from "@service-chat/api";
import type { ConnectionState } from "@service-chat/sdk";

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });

export function eventTime(e: RoomEvent): Date | undefined {
  const ts = e.serverTs ?? e.sentAt;
  return ts ? timestampDate(ts) : undefined;
}

/** "14:05" today, "Tue 3 Jun 14:05" before. */
export function shortTime(date: Date): string {
  const today = new Date().toDateString() === date.toDateString();
  return today ? timeFormat.format(date) : `${dayFormat.format(date)} ${timeFormat.format(date)}`;
}

const longDay = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });

/** "Today", "Yesterday", or the date: the separator between days in a timeline. */
export function dayLabel(date: Date): string {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  return longDay.format(date);
}

export function list(names: string[]): string {
  if (names.length <= 1) return names[0] ?? "";
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

export function typingLine(names: string[]): string {
  if (names.length === 0) return "";
  if (names.length > 3) return "Several people are typing…";
  return `${list(names)} ${names.length === 1 ? "is" : "are"} typing…`;
}

/** What a room change says, e.g. "alice added bob". */
export function systemText(s: SystemContent, me: string): string {
  const who = (id: string) => (id === me ? "you" : id);
  const actor = s.actorId ? who(s.actorId) : "someone";
  const people = list(s.profileIds.map(who));
  switch (s.kind) {
    case SystemEventKind.ROOM_CREATED:
      return `${actor} created the room`;
    case SystemEventKind.ROOM_UPDATED:
      return `${actor} changed the room's ${list(s.fields) || "settings"}`;
    case SystemEventKind.ROOM_DELETED:
      return `${actor} deleted the room`;
    case SystemEventKind.MEMBERS_ADDED:
      return s.profileIds.length === 1 && s.profileIds[0] === s.actorId
        ? `${actor} joined`
        : `${actor} added ${people}`;
    case SystemEventKind.MEMBERS_REMOVED:
      return s.profileIds.length === 1 && s.profileIds[0] === s.actorId
        ? `${actor} left`
        : `${actor} removed ${people}`;
    case SystemEventKind.ROLE_CHANGED:
      return `${actor} made ${people} ${s.role}`;
    default:
      return "the room changed";
  }
}

/** A one-line stand-in for events that are not plain text. */
export function otherText(e: RoomEvent): string {
  const c = e.content;
  switch (c.case) {
    case "encrypted":
      return "🔒 Encrypted message";
    case "call":
      return c.value.action === CallAction.OFFER
        ? "📞 Started a call"
        : c.value.action === CallAction.HANGUP
          ? "📞 Ended the call"
          : "📞 Call";
    default:
      return "";
  }
}

export const connectionLabel: Record<ConnectionState, string> = {
  idle: "Not connected",
  connecting: "Connecting…",
  live: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Offline",
};
