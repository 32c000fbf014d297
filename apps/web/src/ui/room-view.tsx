import { type RoomEvent, RoomType } from "@service-chat/api";
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { eventTime, list, otherText, shortTime, systemText, typingLine } from "../format.js";
import { type ChatModel, type PendingMessage, type RoomItem, roomTitle, type Timeline } from "../model.js";
import { AddMembersForm } from "./forms.js";

export function RoomView({ model, room }: { model: ChatModel; room: RoomItem }) {
  const [adding, setAdding] = useState(false);
  const t = model.timeline(room.id);
  const title = roomTitle(room);
  const members = [...t.members.keys()].sort();
  const typers = model.typers(room.id);
  const state = model.connection;

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
          <button class="quiet" type="button" aria-expanded={adding} onClick={() => setAdding(!adding)}>
            Add people
          </button>
        )}
      </header>
      {adding && <AddMembersForm model={model} onDone={() => setAdding(false)} />}
      {(state === "reconnecting" || state === "closed") && (
        <div class={`banner banner-${state}`} role="status">
          {state === "reconnecting"
            ? "Connection lost. Reconnecting… Messages you send now go out when it is back."
            : "Offline."}
        </div>
      )}
      <MessageList model={model} room={room} t={t} />
      <p class="typing" aria-live="polite">
        {typingLine(typers)}
      </p>
      <Composer model={model} title={title} roomId={room.id} />
    </section>
  );
}

type Row =
  | { kind: "event"; e: RoomEvent; from: string; seq: number }
  | { kind: "system"; e: RoomEvent; text: string }
  | { kind: "pending"; p: PendingMessage };

/** What the timeline shows, oldest first: edits, redactions and reactions act on their targets. */
function rows(model: ChatModel, t: Timeline): { rows: Row[]; reactions: Map<string, Map<string, Set<string>>> } {
  const out: Row[] = [];
  const reactions = new Map<string, Map<string, Set<string>>>();
  const seqs = [...t.events.keys()].sort((a, b) => a - b);
  for (const seq of seqs) {
    const e = t.events.get(seq) as RoomEvent;
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
  return { rows: out, reactions };
}

function MessageList({ model, room, t }: { model: ChatModel; room: RoomItem; t: Timeline }) {
  const ref = useRef<HTMLOListElement>(null);
  const atBottom = useRef(true);
  const anchor = useRef<number | undefined>(undefined);
  const { rows: items, reactions } = rows(model, t);

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
  return (
    <ol
      class="messages"
      ref={ref}
      aria-label="Messages"
      aria-busy={t.loading}
      onScroll={(e) => {
        const el = e.currentTarget;
        atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
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
      {items.map((row) => {
        const prev = previous;
        previous = row;
        if (row.kind === "system") {
          const when = eventTime(row.e);
          return (
            <li key={`s${row.e.seq}`} class="system">
              {row.text}
              {when && <time dateTime={when.toISOString()}> · {shortTime(when)}</time>}
            </li>
          );
        }
        if (row.kind === "pending") {
          return (
            <li key={`p${row.p.clientId}`} class={`message mine${row.p.failed ? " failed" : " pending"}`}>
              <div class="bubble">
                <p class="body">{row.p.body}</p>
              </div>
              <div class="meta">
                {row.p.failed ? (
                  <>
                    <span>Not sent: {row.p.failed}</span>{" "}
                    <button class="link" type="button" onClick={() => model.retry(room.id, row.p.clientId)}>
                      Retry
                    </button>
                  </>
                ) : row.p.seq === undefined ? (
                  "Sending…"
                ) : (
                  "Sent"
                )}
              </div>
            </li>
          );
        }
        const mine = row.from === model.me;
        const showName = !mine && !(prev?.kind === "event" && prev.from === row.from);
        const when = eventTime(row.e);
        const marks = reactions.get(row.e.id);
        return (
          <li key={`e${row.seq}`} class={`message${mine ? " mine" : ""}`} data-seq={row.seq}>
            {showName && <div class="sender">{row.from}</div>}
            <div class="bubble">
              <Content e={row.e} />
            </div>
            {marks && marks.size > 0 && (
              <div class="reactions">
                {[...marks]
                  .filter(([, who]) => who.size > 0)
                  .map(([key, who]) => (
                    <span key={key} class="reaction" title={[...who].join(", ")}>
                      {key} {who.size}
                    </span>
                  ))}
              </div>
            )}
            <div class="meta">
              {when && <time dateTime={when.toISOString()}>{shortTime(when)}</time>}
              {row.e.edited && " · edited"}
            </div>
            {seen?.seq === row.seq && <div class="seen">Seen by {list(seen.names)}</div>}
          </li>
        );
      })}
    </ol>
  );
}

function Content({ e }: { e: RoomEvent }) {
  const c = e.content;
  if (e.redacted) return <p class="body deleted">Message deleted</p>;
  if (c.case === "text") return <p class="body">{c.value.body}</p>;
  if (c.case === "attachment") {
    const a = c.value;
    const safe = /^https?:\/\//i.test(a.uri);
    return (
      <p class="body">
        📎{" "}
        {safe ? (
          <a href={a.uri} target="_blank" rel="noopener noreferrer">
            {a.filename || a.uri}
          </a>
        ) : (
          a.filename || "attachment"
        )}
        {a.caption && <span class="caption"> {a.caption}</span>}
      </p>
    );
  }
  return <p class="body other">{otherText(e) || "Unsupported message"}</p>;
}

/** The composer of one room (`roomId`), or of the conversation being created (no `roomId`). */
export function Composer({ model, title, roomId }: { model: ChatModel; title: string; roomId?: string }) {
  const [text, setText] = useState("");
  const input = useRef<HTMLTextAreaElement>(null);

  useLayoutEffect(() => {
    input.current?.focus();
  }, []);

  const send = (e?: Event) => {
    e?.preventDefault();
    if (!text.trim()) return;
    if (roomId) void model.send(roomId, text);
    else model.queueForDraft(text);
    setText("");
    input.current?.focus();
  };

  return (
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
        }}
      />
      <button class="primary" type="submit" disabled={!text.trim()}>
        Send
      </button>
    </form>
  );
}
