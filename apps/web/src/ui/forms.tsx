import { ConnectError } from "@connectrpc/connect";
import { RoomType } from "@service-chat/api";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ChatModel } from "../model.js";

/** "bob, carol dave" → ["bob", "carol", "dave"], without duplicates or the user themself. */
export function parseProfiles(text: string, me: string): string[] {
  return [...new Set(text.split(/[\s,;]+/).filter((p) => p && p !== me))];
}

function message(err: unknown): string {
  return err instanceof ConnectError ? err.rawMessage : (err as Error).message;
}

export function NewRoomForm({ model, onDone }: { model: ChatModel; onDone(): void }) {
  const [type, setType] = useState<RoomType>(RoomType.GROUP);
  const [name, setName] = useState("");
  const [members, setMembers] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const direct = type === RoomType.DIRECT;

  const submit = async (e: Event) => {
    e.preventDefault();
    const people = parseProfiles(members, model.me);
    if (direct && people.length !== 1) return setError("A direct message is with exactly one other person.");
    setBusy(true);
    setError(undefined);
    try {
      await model.createRoom({ type, name: direct ? "" : name.trim(), members: people });
      onDone();
    } catch (err) {
      setError(message(err));
      setBusy(false);
    }
  };

  return (
    <form class="panel" onSubmit={submit} aria-label="New conversation">
      <fieldset class="segmented">
        <legend class="visually-hidden">Kind of conversation</legend>
        <label>
          <input type="radio" name="kind" checked={!direct} onChange={() => setType(RoomType.GROUP)} />
          <span>Group</span>
        </label>
        <label>
          <input type="radio" name="kind" checked={direct} onChange={() => setType(RoomType.DIRECT)} />
          <span>Direct message</span>
        </label>
      </fieldset>
      {!direct && (
        <>
          <label for="room-name">Room name</label>
          <input
            id="room-name"
            required
            maxLength={200}
            placeholder="Weekend plans"
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </>
      )}
      <label for="room-members">{direct ? "Person" : "Members"}</label>
      <input
        id="room-members"
        required={direct}
        placeholder={direct ? "bob" : "bob, carol"}
        autoComplete="off"
        value={members}
        onInput={(e) => setMembers(e.currentTarget.value)}
      />
      <p class="hint">{direct ? "Their user name." : "User names, separated by commas or spaces."}</p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="row">
        <button class="primary" type="submit" disabled={busy}>
          {direct ? "Start chat" : "Create room"}
        </button>
        <button class="quiet" type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function AddMembersForm({ model, onDone }: { model: ChatModel; onDone(): void }) {
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const [members, setMembers] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const people = parseProfiles(members, model.me);
    if (people.length === 0) return setError("Name at least one person.");
    setBusy(true);
    setError(undefined);
    try {
      await model.addMembers(people);
      onDone();
    } catch (err) {
      setError(message(err));
      setBusy(false);
    }
  };

  return (
    <form class="panel add-members" onSubmit={submit} aria-label="Add people">
      <label for="add-members">People to add</label>
      <div class="row">
        <input
          id="add-members"
          required
          ref={input}
          autoComplete="off"
          placeholder="carol, dave"
          value={members}
          onInput={(e) => setMembers(e.currentTarget.value)}
        />
        <button class="primary" type="submit" disabled={busy}>
          Add
        </button>
        <button class="quiet" type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
