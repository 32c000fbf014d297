import { type RoomEvent, RoomType } from "@service-chat/api";
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { dayLabel, eventTime, list, shortTime, systemText, typingLine } from "../format.js";
import { type ChatModel, type PendingMessage, type RoomItem, roomTitle, type Timeline } from "../model.js";
import { AddMembersForm } from "./forms.js";
import { Message, type Reactions } from "./message.js";
import { MembersPanel, RoomSettings } from "./room-panels.js";

type Panel = "add" | "members" | "settings" | undefined;

export function RoomView({ model, room }: { model: ChatModel; room: RoomItem }) {
  const [panel, setPanel] = useState<Panel>();
  const [replyTo, setReplyTo] = useState<RoomEvent>();
  const t = model.timeline(room.id);
  const title = roomTitle(room);
  const members = [...t.members.keys()].sort();
  const typers = model.typers(room.id);
  const state = model.connection;
  const toggle = (p: Panel) => setPanel(panel === p ? undefined : p);

  return (
    <section class="room" aria-labelledby="room-title">
      <header class="room-header">
        <button
          class="quiet back"
          type="button"
          aria-label="Back to conversations"
          onClick={() => model.open(undefined)}
        >
          ←
        </button>
        <div class="room-heading">
          <h2 id="room-title">{title}</h2>
          <p class="muted members" title={members.join(", ")}>
            {room.type === RoomType.DIRECT ? "Direct message" : list(members) || `${room.memberCount} members`}
          </p>
        </div>
        {room.type !== RoomType.DIRECT && (
          <button class="quiet" type="button" aria-expanded={panel === "add"} onClick={() => toggle("add")}>
            Add people
          </button>
        )}
        <button class="quiet" type="button" aria-expanded={panel === "members"} onClick={() => toggle("members")}>
          Members
        </button>
        <button class="quiet" type="button" aria-expanded={panel === "settings"} onClick={() => toggle("settings")}>
          Room settings
        </button>
      </header>
      {panel === "add" && <AddMembersForm model={model} onDone={() => setPanel(undefined)} />}
      {panel === "members" && <MembersPanel model={model} room={room} />}
      {panel === "settings" && <RoomSettings model={model} room={room} onDone={() => setPanel(undefined)} />}
      {(state === "reconnecting" || state === "closed") && (
        <div class={`banner banner-${state}`} role="status">
          {state === "reconnecting"
            ? "Connection lost. Reconnecting… Messages you send now go out when it is back."
            : "Offline."}{" "}
          <button class="link" type="button" onClick={() => model.reconnectNow()}>
            Reconnect now
          </button>
        </div>
      )}
      <MessageList model={model} room={room} t={t} onReply={setReplyTo} />
      <p class="typing" aria-live="polite">
        {typingLine(typers)}
      </p>
      <Composer
        model={model}
        title={title}
        roomId={room.id}
        replyTo={replyTo}
        onReplyDone={() => setReplyTo(undefined)}
      />
    </section>
  );
}

type Row =
  | { kind: "event"; e: RoomEvent; from: string; seq: number }
  | { kind: "system"; e: RoomEvent; text: string }
  | { kind: "pending"; p: PendingMessage };

/** What the timeline shows, oldest first: edits, redactions and reactions act on their targets. */
function rows(model: ChatModel, t: Timeline): { rows: Row[]; reactions: Reactions; byId: Map<string, RoomEvent> } {
  const out: Row[] = [];
  const reactions: Reactions = new Map();
  const byId = new Map<string, RoomEvent>();
  const seqs = [...t.events.keys()].sort((a, b) => a - b);
  for (const seq of seqs) {
    const e = t.events.get(seq) as RoomEvent;
    byId.set(e.id, e);
    const c = e.content;
    const from = e.source?.profileId ?? "";
    if (c.case === "reaction") {
      const byKey = reactions.get(c.value.targetEventId) ?? new Map<string, Set<string>>();
      const who = byKey.get(c.value.key) ?? new Set<string>();
      if (c.value.add) who.add(from);
      else who.delete(from);
      byKey.set(c.value.key, who);
      reactions.set(c.value.targetEventId, byKey);
    } else if (c.case === "system") {
      out.push({ kind: "system", e, text: systemText(c.value, model.me) });
    } else if (c.case !== "edit" && c.case !== "redaction") {
      out.push({ kind: "event", e, from, seq });
    }
  }
  for (const p of t.pending.values()) if (p.seq === undefined || !t.events.has(p.seq)) out.push({ kind: "pending", p });
  return { rows: out, reactions, byId };
}

function MessageList({
  model,
  room,
  t,
  onReply,
}: {
  model: ChatModel;
  room: RoomItem;
  t: Timeline;
  onReply(e: RoomEvent): void;
}) {
  const ref = useRef<HTMLOListElement>(null);
  const atBottom = useRef(true);
  const anchor = useRef<number | undefined>(undefined);
  const { rows: items, reactions, byId } = rows(model, t);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (anchor.current !== undefined && !t.loading) {
      el.scrollTop = el.scrollHeight - anchor.current;
      anchor.current = undefined;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
  });

  // "Seen by": on my newest message that someone else has read.
  const readers = [...t.members].filter(([who]) => who !== model.me);
  const seenBy = (seq: number) => readers.filter(([, m]) => m.readSeq >= seq && seq > m.joinedSeq).map(([who]) => who);
  let seen: { seq: number; names: string[] } | undefined;
  for (let i = items.length - 1; i >= 0 && !seen; i--) {
    const r = items[i];
    if (r?.kind !== "event" || r.from !== model.me) continue;
    const names = seenBy(r.seq);
    if (names.length > 0) seen = { seq: r.seq, names: names.sort() };
  }

  const loadOlder = () => {
    const el = ref.current;
    if (el) anchor.current = el.scrollHeight - el.scrollTop;
    void model.loadHistory(room.id, true);
  };

  let previous: Row | undefined;
  let lastDay = "";
  const out = [];
  for (const row of items) {
    const prev = previous;
    previous = row;
    const when = row.kind === "pending" ? undefined : eventTime(row.e);
    const day = when ? dayLabel(when) : lastDay;
    if (day && day !== lastDay) {
      out.push(
        <li key={`d${day}${row.kind === "pending" ? row.p.clientId : row.e.seq}`} class="day">
          {day}
        </li>,
      );
      lastDay = day;
    }
    if (row.kind === "system") {
      out.push(
        <li key={`s${row.e.seq}`} class="system">
          {row.text}
          {when && <time dateTime={when.toISOString()}> · {shortTime(when)}</time>}
        </li>,
      );
    } else if (row.kind === "pending") {
      out.push(<PendingRow key={`p${row.p.clientId}`} model={model} roomId={room.id} p={row.p} />);
    } else {
      out.push(
        <Message
          key={`e${row.seq}`}
          model={model}
          roomId={room.id}
          e={row.e}
          from={row.from}
          showName={row.from !== model.me && !(prev?.kind === "event" && prev.from === row.from)}
          reactions={reactions.get(row.e.id)}
          parent={row.e.parentId ? byId.get(row.e.parentId) : undefined}
          seen={seen?.seq === row.seq ? `Seen by ${list(seen.names)}` : undefined}
          onReply={onReply}
        />,
      );
    }
  }

  return (
    <ol
      class="messages"
      ref={ref}
      aria-label="Messages"
      aria-busy={t.loading}
      onScroll={(e) => {
        const el = e.currentTarget;
        atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        // Infinite scroll: near the top, the next older page comes in.
        if (el.scrollTop < 80 && t.loaded && !t.done && !t.loading) loadOlder();
      }}
    >
      <li class="history-edge">
        {!t.loaded && t.loading ? (
          <span class="muted">Loading messages…</span>
        ) : t.loaded && !t.done ? (
          <button class="quiet" type="button" disabled={t.loading} onClick={loadOlder}>
            {t.loading ? "Loading…" : "Load older messages"}
          </button>
        ) : t.loaded ? (
          <span class="muted">This is the beginning of the conversation.</span>
        ) : null}
      </li>
      {out}
    </ol>
  );
}

function PendingRow({ model, roomId, p }: { model: ChatModel; roomId: string; p: PendingMessage }) {
  return (
    <li class={`message mine${p.failed ? " failed" : " pending"}`}>
      <div class="bubble">
        <p class="body">{p.body}</p>
      </div>
      <div class="meta">
        {p.failed ? (
          <>
            <span>Not sent: {p.failed}</span>{" "}
            <button class="link" type="button" onClick={() => model.retry(roomId, p.clientId)}>
              Retry
            </button>
          </>
        ) : p.seq === undefined && p.retrying ? (
          `Retrying… (${retryReason(p.retrying)})`
        ) : p.seq === undefined ? (
          "Sending…"
        ) : (
          "Sent"
        )}
      </div>
    </li>
  );
}

/** The composer of one room (`roomId`), or of the conversation being created (no `roomId`). */
export function Composer({
  model,
  title,
  roomId,
  replyTo,
  onReplyDone,
}: {
  model: ChatModel;
  title: string;
  roomId?: string;
  replyTo?: RoomEvent;
  onReplyDone?(): void;
}) {
  const [text, setText] = useState("");
  const input = useRef<HTMLTextAreaElement>(null);

  useLayoutEffect(() => {
    input.current?.focus();
  }, [replyTo]);

  const send = (e?: Event) => {
    e?.preventDefault();
    if (!text.trim()) return;
    if (roomId) void model.send(roomId, text, undefined, replyTo?.id ?? "");
    else model.queueForDraft(text);
    setText("");
    onReplyDone?.();
    input.current?.focus();
  };

  return (
    <div class="composer-wrap">
      {replyTo && (
        <div class="replying" role="status">
          Replying to {replyTo.source?.profileId === model.me ? "yourself" : replyTo.source?.profileId}:{" "}
          <span class="muted">{replyTo.content.case === "text" ? replyTo.content.value.body.slice(0, 80) : "…"}</span>{" "}
          <button class="link" type="button" onClick={() => onReplyDone?.()}>
            Cancel reply
          </button>
        </div>
      )}
      <form class="composer" onSubmit={send}>
        <label for="composer-input" class="visually-hidden">
          Message
        </label>
        <textarea
          id="composer-input"
          ref={input}
          rows={1}
          maxLength={16000}
          placeholder={`Message ${title}`}
          value={text}
          onInput={(e) => {
            setText(e.currentTarget.value);
            if (roomId) model.typing(roomId, e.currentTarget.value);
          }}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) send(e);
            if (e.key === "Escape") onReplyDone?.();
          }}
        />
        {roomId && model.uploadEndpoint && <AttachButton model={model} roomId={roomId} />}
        <button class="primary" type="submit" disabled={!text.trim()}>
          Send
        </button>
      </form>
    </div>
  );
}

function AttachButton({ model, roomId }: { model: ChatModel; roomId: string }) {
  const file = useRef<HTMLInputElement>(null);
  return (
    <>
      <input
        ref={file}
        type="file"
        class="visually-hidden"
        aria-label="Attach a file"
        onChange={(e) => {
          const f = e.currentTarget.files?.[0];
          e.currentTarget.value = "";
          if (f) void model.attach(roomId, f);
        }}
      />
      <button class="quiet" type="button" onClick={() => file.current?.click()}>
        Attach
      </button>
    </>
  );
}

/** Why a send is being retried, for people. */
function retryReason(code: string): string {
  if (code === "resource_exhausted") return "sending too fast";
  if (code === "deadline_exceeded") return "the server did not answer in time";
  return "the server could not store it yet";
}
