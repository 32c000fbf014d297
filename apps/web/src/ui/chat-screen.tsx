import { RoomType } from "@service-chat/api";
import { useEffect, useState } from "preact/hooks";
import { connectionLabel } from "../format.js";
import { type ChatModel, roomTitle, unread } from "../model.js";
import { Avatar } from "./avatar.js";
import { NewRoomForm } from "./forms.js";
import { Composer, RoomView } from "./room-view.js";
import { SearchBox } from "./search.js";
import { useModel } from "./use-model.js";

export function ChatScreen({ model, onSignOut }: { model: ChatModel; onSignOut(reason?: string): void }) {
  useModel(model);
  useEffect(() => {
    if (model.ended) onSignOut(model.ended);
  });
  const room = model.current ? model.rooms.get(model.current) : undefined;
  const total = [...model.rooms.values()].reduce((n, r) => n + unread(r), 0);
  useEffect(() => {
    document.title = total > 0 ? `(${total}) Service Chat` : "Service Chat";
  }, [total]);

  return (
    <div class={`chat${room ? " has-room" : ""}`}>
      <Sidebar model={model} onSignOut={() => onSignOut()} />
      <main class="room-pane">
        {model.notice && (
          <div class="notice" role="alert">
            <span>{model.notice}</span>
            <button class="link" type="button" onClick={() => model.dismiss()}>
              Dismiss
            </button>
          </div>
        )}
        {room ? (
          <RoomView key={room.id} model={model} room={room} />
        ) : model.draft ? (
          <DraftView model={model} draft={model.draft} />
        ) : (
          <div class="empty">
            <h2>Welcome, {model.me}</h2>
            <p class="muted">Pick a conversation on the left, or start a new one.</p>
          </div>
        )}
      </main>
    </div>
  );
}

/** The conversation being created: its composer keeps what is typed until the room exists. */
function DraftView({ model, draft }: { model: ChatModel; draft: NonNullable<ChatModel["draft"]> }) {
  return (
    <section class="room" aria-labelledby="room-title">
      <header class="room-header">
        <div class="room-heading">
          <h2 id="room-title">{draft.title}</h2>
          <p class="muted members">Starting the conversation…</p>
        </div>
      </header>
      <ol class="messages" aria-label="Messages">
        {draft.queued.map((body, i) => (
          <li key={`q${i}`} class="message mine pending">
            <div class="bubble">
              <p class="body">{body}</p>
            </div>
            <div class="meta">Sending…</div>
          </li>
        ))}
      </ol>
      <Composer model={model} title={draft.title} />
    </section>
  );
}

function Sidebar({ model, onSignOut }: { model: ChatModel; onSignOut(): void }) {
  const [creating, setCreating] = useState(false);
  const rooms = model.roomList();
  const state = model.connection;
  return (
    <aside class="sidebar" aria-label="Conversations">
      <header class="me">
        <Avatar name={model.me} />
        <div class="me-text">
          <strong>{model.me}</strong>
          <span
            class={`connection connection-${state}`}
            role="status"
            aria-label={`Connection: ${connectionLabel[state]}`}
          >
            {connectionLabel[state]}
          </span>
        </div>
        <button class="quiet" type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      {state === "closed" && (
        <button class="quiet reconnect" type="button" onClick={() => model.reconnectNow()}>
          Reconnect
        </button>
      )}
      {model.canAskNotifications && (
        <button class="quiet notify" type="button" onClick={() => void model.askNotifications()}>
          Turn on notifications
        </button>
      )}
      <SearchBox model={model} />
      <div class="sidebar-actions">
        <button class="primary" type="button" aria-expanded={creating} onClick={() => setCreating(!creating)}>
          {creating ? "Close" : "New conversation"}
        </button>
      </div>
      {creating && <NewRoomForm model={model} onDone={() => setCreating(false)} />}
      <nav class="rooms" aria-label="Rooms">
        {!model.roomsLoaded && <p class="muted pad">Loading rooms…</p>}
        {model.roomsLoaded && rooms.length === 0 && <p class="muted pad">No conversations yet. Start one above.</p>}
        <ul>
          {rooms.map((r) => {
            const title = roomTitle(r);
            const n = unread(r);
            const active = r.id === model.current;
            return (
              <li key={r.id}>
                <button
                  type="button"
                  class={`room-item${active ? " active" : ""}${n > 0 ? " unread" : ""}`}
                  aria-current={active ? "true" : undefined}
                  data-room-id={r.id}
                  onClick={() => model.open(r.id)}
                >
                  <Avatar name={title} />
                  <span class="room-text">
                    <span class="room-name">{title}</span>
                    <span class="room-kind">{model.preview(r.id) ?? kindLabel(r.type, r.memberCount)}</span>
                  </span>
                  {n > 0 && (
                    <span class="badge" role="img" aria-label={`${n} unread`}>
                      {n > 99 ? "99+" : n}
                    </span>
                  )}
                </button>
              </li>
            );
          })}
        </ul>
      </nav>
    </aside>
  );
}

function kindLabel(type: RoomType, members: number): string {
  if (type === RoomType.DIRECT) return "Direct message";
  const people = `${members} ${members === 1 ? "member" : "members"}`;
  return type === RoomType.CHANNEL ? `Channel · ${people}` : `Group · ${people}`;
}
