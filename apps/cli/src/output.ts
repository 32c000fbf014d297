import { type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import {
  CallAction,
  type Room,
  type RoomEvent,
  type RoomSubscription,
  RoomType,
  SystemEventKind,
} from "@service-chat/api";

/** Where results go: one protobuf-JSON object per line (`--json`), or text for people. Notes go to stderr. */
export class Output {
  constructor(
    readonly json: boolean,
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  /** A protobuf message in its JSON form, on one line (JSON mode only). */
  message<D extends DescMessage>(schema: D, value: MessageShape<D>): void {
    this.out.write(`${JSON.stringify(toJson(schema, value, { alwaysEmitImplicit: true }))}\n`);
  }

  /** A plain JSON object on one line. */
  object(value: unknown): void {
    this.out.write(`${JSON.stringify(value)}\n`);
  }

  line(text = ""): void {
    this.out.write(`${text}\n`);
  }

  /** A note for the person at the terminal; never part of the result. */
  note(text: string): void {
    this.err.write(`${text}\n`);
  }

  /** Columns padded to their widest cell; columns named in `right` are right-aligned. */
  table(headers: string[], rows: string[][], right: number[] = []): void {
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    const fmt = (cells: string[]) =>
      cells
        .map((c, i) => {
          const w = widths[i] ?? 0;
          return right.includes(i) ? c.padStart(w) : i === cells.length - 1 ? c : c.padEnd(w);
        })
        .join("  ");
    this.line(fmt(headers));
    for (const r of rows) this.line(fmt(r));
  }
}

/** Removes terminal control sequences from text written by others; keeps newlines and tabs. */
export function clean(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "\ufffd");
}

const TYPES: Record<number, string> = {
  [RoomType.DIRECT]: "direct",
  [RoomType.GROUP]: "group",
  [RoomType.CHANNEL]: "channel",
};

export const roomTypeName = (t: RoomType) => TYPES[t] ?? "unknown";

/** The last characters of an id (its random part): enough to tell rooms apart at a glance. */
export const shortId = (id: string) => id.replace(/-/g, "").slice(-8);

/** `#general`, or `#1a2b3c4d` for a room without a name. */
export function roomLabel(room: { id: string; name: string }): string {
  return `#${room.name ? clean(room.name) : shortId(room.id)}`;
}

export function printRooms(o: Output, rooms: Room[]): void {
  o.table(
    ["ID", "TYPE", "NAME", "MEMBERS", "UNREAD"],
    rooms.map((r) => [r.id, roomTypeName(r.type), clean(r.name), String(r.memberCount), String(r.unreadCount)]),
    [3, 4],
  );
}

export function printMembers(o: Output, subs: RoomSubscription[]): void {
  o.table(
    ["MEMBER", "ROLE", "NAME", "JOINED"],
    subs.map((s) => [
      clean(s.member?.profileId ?? ""),
      s.role,
      clean(s.member?.profileName ?? ""),
      s.joinedAt ? formatTime(s.joinedAt, true) : "",
    ]),
  );
}

const pad = (n: number) => String(n).padStart(2, "0");

/** Local time: `12:03:44`, with the date in front when it is not today (or when asked). */
export function formatTime(ts: Timestamp, withDate = false, now = new Date()): string {
  const d = timestampDate(ts);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const today = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  return withDate || day !== today ? `${day} ${time}` : time;
}

const SYSTEM: Record<number, (actor: string, ids: string, c: { role: string; fields: string[] }) => string> = {
  [SystemEventKind.ROOM_CREATED]: (a) => `${a} created the room`,
  [SystemEventKind.ROOM_UPDATED]: (a, _, c) => `${a} changed the room's ${c.fields.join(", ") || "settings"}`,
  [SystemEventKind.ROOM_DELETED]: (a) => `${a} deleted the room`,
  [SystemEventKind.MEMBERS_ADDED]: (a, ids, c) => `${a} added ${ids}${c.role ? ` as ${c.role}` : ""}`,
  [SystemEventKind.MEMBERS_REMOVED]: (a, ids) => (ids === a ? `${a} left` : `${a} removed ${ids}`),
  [SystemEventKind.ROLE_CHANGED]: (a, ids, c) => `${a} made ${ids} ${c.role}`,
};

const CALLS: Record<number, string> = {
  [CallAction.OFFER]: "started a call",
  [CallAction.ANSWER]: "answered the call",
  [CallAction.CANDIDATE]: "sent call details",
  [CallAction.HANGUP]: "hung up",
  [CallAction.REJECT]: "declined the call",
};

/** What an event says, after its sender's name: `: hello`, ` reacted 👍`, … */
function body(e: RoomEvent): string {
  if (e.redacted) return ": [deleted]";
  const c = e.content;
  const edited = e.edited ? " (edited)" : "";
  switch (c.case) {
    case "text":
      return `: ${indent(clean(c.value.body))}${edited}`;
    case "attachment": {
      const a = c.value;
      const caption = a.caption ? ` ${indent(clean(a.caption))}` : "";
      return `: [${clean(a.filename || a.uri)}${a.mimeType ? `, ${clean(a.mimeType)}` : ""}]${caption}`;
    }
    case "reaction":
      return ` ${c.value.add ? "reacted" : "took back"} ${clean(c.value.key)} (to ${shortId(c.value.targetEventId)})`;
    case "encrypted":
      return `: [encrypted, ${clean(c.value.algorithm) || "unknown algorithm"}]`;
    case "call":
      return ` ${CALLS[c.value.action] ?? "sent a call signal"}`;
    case "edit":
      return ` edited ${shortId(c.value.targetEventId)}: ${indent(clean(c.value.text?.body ?? ""))}`;
    case "redaction":
      return ` deleted ${shortId(c.value.targetEventId)}${c.value.reason ? ` (${clean(c.value.reason)})` : ""}`;
    default:
      return ": [unknown event]";
  }
}

function indent(text: string): string {
  return text.replace(/\n/g, "\n    ");
}

/** `[12:03:44] alice: hello`, or `[12:03:44] #general alice: hello` when `room` is given. */
export function formatEvent(e: RoomEvent, room?: string): string {
  const ts = e.serverTs ?? e.sentAt;
  const when = ts ? `[${formatTime(ts)}] ` : "";
  const where = room ? `${room} ` : "";
  const sender = clean(e.source?.profileName || e.source?.profileId || "?");
  if (e.content.case === "system") {
    const s = e.content.value;
    const actor = clean(s.actorId || sender);
    const text = SYSTEM[s.kind]?.(actor, s.profileIds.map(clean).join(", "), s) ?? `${actor} changed the room`;
    return `${when}${where}* ${text}`;
  }
  return `${when}${where}${sender}${body(e)}`;
}
