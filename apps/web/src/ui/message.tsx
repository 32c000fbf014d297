import type { RoomEvent } from "@service-chat/api";
import { useState } from "preact/hooks";
import { eventTime, otherText, shortTime } from "../format.js";
import type { ChatModel } from "../model.js";
import { Linkified } from "./linkify.js";

export const QUICK_REACTIONS = ["👍", "❤️", "😂"];

/** Who reacted with what to each event: event id → key → people. */
export type Reactions = Map<string, Map<string, Set<string>>>;

interface Props {
  model: ChatModel;
  roomId: string;
  e: RoomEvent;
  from: string;
  showName: boolean;
  reactions: Map<string, Set<string>> | undefined;
  parent: RoomEvent | undefined;
  seen: string | undefined;
  onReply(e: RoomEvent): void;
}

/** One message: its quote, content, reactions, time, and what you can do with it. */
export function Message({ model, roomId, e, from, showName, reactions, parent, seen, onReply }: Props) {
  const [editing, setEditing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const mine = from === model.me;
  const when = eventTime(e);
  const isText = e.content.case === "text";
  const mineOf = (who: Set<string>) => who.has(model.me);

  return (
    <li class={`message${mine ? " mine" : ""}`} data-seq={String(e.seq)} data-event-id={e.id}>
      {showName && <div class="sender">{from}</div>}
      {e.parentId && (
        <blockquote class="quote" aria-label="Reply to">
          {parent ? (
            <>
              <strong>{parent.source?.profileId === model.me ? "You" : parent.source?.profileId}</strong>{" "}
              {parent.redacted ? "Message deleted" : parent.content.case === "text" ? parent.content.value.body : "…"}
            </>
          ) : (
            "an earlier message"
          )}
        </blockquote>
      )}
      {editing && isText ? (
        <EditForm
          initial={e.content.case === "text" ? e.content.value.body : ""}
          onSave={(body) => {
            setEditing(false);
            void model.editMessage(roomId, e.id, body);
          }}
          onCancel={() => setEditing(false)}
        />
      ) : (
        <div class="bubble">
          <Content e={e} />
        </div>
      )}
      {reactions && reactions.size > 0 && (
        <div class="reactions">
          {[...reactions]
            .filter(([, who]) => who.size > 0)
            .map(([key, who]) => {
              const names = [...who].sort().join(", ");
              return (
                <button
                  key={key}
                  type="button"
                  class={`reaction${mineOf(who) ? " own" : ""}`}
                  title={names}
                  aria-label={`${key} ${who.size}: ${names}`}
                  aria-pressed={mineOf(who)}
                  onClick={() => void model.react(roomId, e.id, key, !mineOf(who))}
                >
                  {key} {who.size}
                </button>
              );
            })}
        </div>
      )}
      <div class="meta">
        {when && <time dateTime={when.toISOString()}>{shortTime(when)}</time>}
        {e.edited && " · edited"}
      </div>
      {!e.redacted && (
        <fieldset class="actions" aria-label="Message actions">
          <button type="button" class="link" onClick={() => onReply(e)}>
            Reply
          </button>
          {QUICK_REACTIONS.map((key) => (
            <button
              key={key}
              type="button"
              class="link"
              aria-label={`React ${key}`}
              onClick={() => void model.react(roomId, e.id, key, !mineOf(reactions?.get(key) ?? new Set()))}
            >
              {key}
            </button>
          ))}
          {mine && isText && (
            <button type="button" class="link" onClick={() => setEditing(true)}>
              Edit
            </button>
          )}
          {mine &&
            (confirming ? (
              <>
                <button
                  type="button"
                  class="link danger"
                  onClick={() => {
                    setConfirming(false);
                    void model.deleteMessage(roomId, e.id);
                  }}
                >
                  Delete for everyone
                </button>
                <button type="button" class="link" onClick={() => setConfirming(false)}>
                  Keep
                </button>
              </>
            ) : (
              <button type="button" class="link" onClick={() => setConfirming(true)}>
                Delete
              </button>
            ))}
        </fieldset>
      )}
      {seen && <div class="seen">{seen}</div>}
    </li>
  );
}

function EditForm({ initial, onSave, onCancel }: { initial: string; onSave(body: string): void; onCancel(): void }) {
  const [text, setText] = useState(initial);
  return (
    <form
      class="edit"
      aria-label="Edit message"
      onSubmit={(ev) => {
        ev.preventDefault();
        if (text.trim() && text.trim() !== initial) onSave(text);
        else onCancel();
      }}
    >
      <textarea
        aria-label="New text"
        rows={2}
        value={text}
        ref={(el) => el?.focus()}
        onInput={(ev) => setText(ev.currentTarget.value)}
        onKeyDown={(ev) => {
          if (ev.key === "Escape") onCancel();
        }}
      />
      <div class="row">
        <button class="primary" type="submit">
          Save
        </button>
        <button class="quiet" type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function Content({ e }: { e: RoomEvent }) {
  const c = e.content;
  if (e.redacted) return <p class="body deleted">Message deleted</p>;
  if (c.case === "text")
    return (
      <p class="body">
        <Linkified text={c.value.body} />
      </p>
    );
  if (c.case === "attachment") {
    const a = c.value;
    const safe = /^https?:\/\//i.test(a.uri);
    if (safe && a.mimeType.startsWith("image/")) {
      return (
        <figure class="body image">
          <a href={a.uri} target="_blank" rel="noopener noreferrer">
            <img src={a.uri} alt={a.filename || "image"} loading="lazy" />
          </a>
          {a.caption && <figcaption>{a.caption}</figcaption>}
        </figure>
      );
    }
    return (
      <div class="body file-card">
        <span aria-hidden="true">📎</span>{" "}
        {safe ? (
          <a href={a.uri} target="_blank" rel="noopener noreferrer" download={a.filename || true}>
            {a.filename || "Download"}
          </a>
        ) : (
          a.filename || "attachment"
        )}
        {a.sizeBytes > 0n && <span class="muted"> · {fileSize(Number(a.sizeBytes))}</span>}
        {a.caption && <div class="caption">{a.caption}</div>}
      </div>
    );
  }
  return <p class="body other">{otherText(e) || "Unsupported message"}</p>;
}

function fileSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
