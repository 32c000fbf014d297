import { RoomType } from "@service-chat/api";
import { useState } from "preact/hooks";
import type { ChatModel, RoomItem } from "../model.js";

const ROLES = ["owner", "admin", "moderator", "member", "guest"];
const RANK: Record<string, number> = { owner: 5, admin: 4, moderator: 3, member: 2, guest: 1 };

/** The room's members: role and presence; owners and admins change roles and remove people below them. */
export function MembersPanel({ model, room }: { model: ChatModel; room: RoomItem }) {
  const t = model.timeline(room.id);
  const myRole = t.members.get(model.me)?.role ?? "";
  const manager = (RANK[myRole] ?? 0) >= RANK.admin;
  const people = [...t.members].sort(([a], [b]) => a.localeCompare(b));
  return (
    <section class="panel members-panel" aria-label="Members">
      <ul>
        {people.map(([id, m]) => {
          const presence = id === model.me ? "online" : (model.presence.get(id) ?? "offline");
          const below = (RANK[m.role ?? ""] ?? 0) < (RANK[myRole] ?? 0);
          return (
            <li key={id} class="member" data-member={id}>
              <span class={`presence presence-${presence}`} role="img" aria-label={presence} />
              <span class="member-name">{id === model.me ? `${id} (you)` : id}</span>
              {manager && below && room.type !== RoomType.DIRECT ? (
                <>
                  <select
                    aria-label={`Role of ${id}`}
                    value={m.role}
                    onChange={(e) => void model.setRole(room.id, id, e.currentTarget.value)}
                  >
                    {ROLES.filter((r) => (RANK[r] ?? 0) <= (RANK[myRole] ?? 0)).map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>
                  <button class="link danger" type="button" onClick={() => void model.removeMember(room.id, id)}>
                    Remove {id}
                  </button>
                </>
              ) : (
                <span class="muted role">{m.role}</span>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** Rename the room, leave it, or (owners) delete it. */
export function RoomSettings({ model, room, onDone }: { model: ChatModel; room: RoomItem; onDone(): void }) {
  const [name, setName] = useState(room.name);
  const [confirm, setConfirm] = useState(false);
  const myRole = model.timeline(room.id).members.get(model.me)?.role;
  return (
    <section class="panel room-settings" aria-label="Room settings">
      {room.type !== RoomType.DIRECT && (
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (name.trim() && name.trim() !== room.name) void model.renameRoom(room.id, name.trim());
            onDone();
          }}
        >
          <label for="room-rename" class="visually-hidden">
            Room name
          </label>
          <input id="room-rename" maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
          <button class="primary" type="submit">
            Rename
          </button>
        </form>
      )}
      <div class="row">
        <button class="quiet" type="button" onClick={() => void model.leaveRoom(room.id)}>
          Leave room
        </button>
        {myRole === "owner" &&
          (confirm ? (
            <button class="danger" type="button" onClick={() => void model.deleteRoom(room.id)}>
              Delete for everyone
            </button>
          ) : (
            <button class="quiet danger" type="button" onClick={() => setConfirm(true)}>
              Delete room
            </button>
          ))}
      </div>
    </section>
  );
}
