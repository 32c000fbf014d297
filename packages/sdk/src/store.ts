/** What a client keeps between sessions: its position in each room and the messages not yet acknowledged. */
export interface ClientState {
  /** Highest seq shown, per room. */
  positions: Record<string, number>;
  /** Messages sent but not yet acknowledged, in protobuf JSON form, oldest first. */
  outbox: { clientId: string; event: unknown }[];
}

export interface ChatStore {
  load(): Promise<ClientState | undefined>;
  save(state: ClientState): Promise<void>;
}

/** Keeps the state for the life of the page or process. */
export function memoryStore(): ChatStore {
  let saved: ClientState | undefined;
  return {
    load: async () => (saved ? structuredClone(saved) : undefined),
    save: async (state) => {
      saved = structuredClone(state);
    },
  };
}

interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** Keeps the state in the browser's localStorage under `key`. */
export function localStorageStore(key: string): ChatStore {
  const storage = (globalThis as { localStorage?: KeyValueStorage }).localStorage;
  if (!storage) throw new Error("localStorage is not available here; use memoryStore() or fileStore()");
  return {
    async load() {
      const raw = storage.getItem(key);
      return raw ? (JSON.parse(raw) as ClientState) : undefined;
    },
    async save(state) {
      storage.setItem(key, JSON.stringify(state));
    },
  };
}
