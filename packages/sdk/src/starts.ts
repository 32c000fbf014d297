import type { Client } from "@connectrpc/connect";
import { type ChatService, RoomType } from "@service-chat/api";

/**
 * Where a new device starts each of its rooms: at most `window` events before the room's end
 * (room id → position). A position must not be before where the caller joined (the server would
 * start later than the client expects): a read marker is never before it, and members with no
 * read marker yet joined with the room's creation. Public channels with no read marker may be
 * rooms the caller is not in, and are left to the server's rule, as are rooms with `window` events
 * or fewer and those in `known`.
 */
export async function newDeviceStarts(
  api: Client<typeof ChatService>,
  window: number,
  known: (roomId: string) => boolean,
): Promise<Map<string, number>> {
  const starts = new Map<string, number>();
  if (!Number.isFinite(window)) return starts;
  let cursor = "";
  for (let page = 0; page < 20; page++) {
    const res = await api.searchRooms({ cursor, limit: 100 });
    for (const r of res.rooms) {
      const last = Number(r.lastSeq);
      const read = Number(r.readSeq);
      if (last <= window || known(r.id)) continue;
      if (read <= 0 && r.type === RoomType.CHANNEL) continue;
      starts.set(r.id, Math.max(last - window, Math.min(read, last)));
    }
    cursor = res.nextCursor;
    if (!cursor) break;
  }
  return starts;
}

type Target = {
  addEventListener?: (type: string, fn: () => void) => void;
  removeEventListener?: (type: string, fn: () => void) => void;
  document?: {
    visibilityState?: string;
    addEventListener(t: string, fn: () => void): void;
    removeEventListener(t: string, fn: () => void): void;
  };
};

/**
 * In a browser, calls `wake` when the network comes back (`online`) or the page becomes visible;
 * answers the function that stops it (undefined outside browsers).
 */
export function onBrowserWake(wake: () => void): (() => void) | undefined {
  const g = globalThis as Target;
  if (!g.addEventListener) return undefined;
  const visible = () => g.document?.visibilityState === "visible" && wake();
  g.addEventListener("online", wake);
  g.document?.addEventListener("visibilitychange", visible);
  return () => {
    g.removeEventListener?.("online", wake);
    g.document?.removeEventListener("visibilitychange", visible);
  };
}

/** The `sub` claim of a JWT, read without checking it (the server does). */
export function tokenSubject(token: string): string | undefined {
  try {
    const part = token.split(".")[1] ?? "";
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === "string" ? sub : undefined;
  } catch {
    return undefined;
  }
}
