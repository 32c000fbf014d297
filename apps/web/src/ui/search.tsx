import type { RoomEvent } from "@service-chat/api";
import { useState } from "preact/hooks";
import { eventTime, shortTime } from "../format.js";
import { type ChatModel, roomTitle } from "../model.js";

/** Full-text search over the rooms you are in; a result opens its room. */
export function SearchBox({ model }: { model: ChatModel }) {
  const [query, setQuery] = useState("");
  const [results, setResults] = useState<RoomEvent[]>();
  const [error, setError] = useState<string>();
  const run = async (e: Event) => {
    e.preventDefault();
    if (!query.trim()) return setResults(undefined);
    try {
      setError(undefined);
      setResults(await model.search(query.trim()));
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <div class="search">
      <form aria-label="Search messages" onSubmit={run}>
        <label for="search-input" class="visually-hidden">
          Search messages
        </label>
        <input
          id="search-input"
          type="search"
          placeholder="Search messages"
          value={query}
          onInput={(e) => {
            setQuery(e.currentTarget.value);
            if (!e.currentTarget.value) setResults(undefined);
          }}
        />
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {results && (
        <ul class="search-results" aria-label="Search results">
          {results.length === 0 && <li class="muted">Nothing matches “{query}”.</li>}
          {results.map((e) => {
            const room = model.rooms.get(e.roomId);
            const when = eventTime(e);
            return (
              <li key={e.id}>
                <button
                  class="quiet result"
                  type="button"
                  onClick={() => {
                    setResults(undefined);
                    model.open(e.roomId);
                  }}
                >
                  <span class="muted">
                    {room ? roomTitle(room) : "a room"} · {e.source?.profileId}
                    {when ? ` · ${shortTime(when)}` : ""}
                  </span>
                  <span>{e.content.case === "text" ? e.content.value.body : ""}</span>
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}
