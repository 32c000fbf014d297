import { decodeCursor, encodeCursor, invalid } from "@service-chat/core";

/**
 * Page cursors of history and search: opaque to clients (packages/core/src/cursor.ts), each
 * naming where the next page starts. A history cursor is bound to its room and direction.
 */

export interface HistoryPosition {
  /** The last seq of the previous page: the next page starts after it, in the page's direction. */
  afterSeq?: number;
}

export function readHistoryCursor(cursor: string, roomId: string, forward: boolean): HistoryPosition {
  const c = decodeCursor("cursor", cursor, { r: "string", d: "string", s: "number" });
  if (!c) return {};
  if (c.r !== roomId || c.d !== (forward ? "f" : "b"))
    throw invalid("cursor", "was issued for another room or direction");
  return { afterSeq: c.s };
}

export const historyCursor = (roomId: string, forward: boolean, lastSeq: number) =>
  encodeCursor({ r: roomId, d: forward ? "f" : "b", s: lastSeq });

/** Search pages go newest first by (server time, seq, id); the cursor is the last of the previous page. */
export interface SearchPosition {
  serverTs: Date;
  seq: number;
  id: string;
}

const MAX_TIME_MS = Date.UTC(9999, 11, 31);

export function readSearchCursor(cursor: string): SearchPosition | undefined {
  const c = decodeCursor("cursor", cursor, { t: "number", s: "number", id: "string" });
  if (!c) return undefined;
  // A server time: after 1970 and before year 10000 (what the database's timestamps hold).
  if (c.t < 0 || c.t >= MAX_TIME_MS || c.s < 0) throw invalid("cursor", "is not a cursor this server issued");
  return { serverTs: new Date(c.t), seq: c.s, id: c.id };
}

export const searchCursor = (last: SearchPosition) =>
  encodeCursor({ t: last.serverTs.getTime(), s: last.seq, id: last.id });

/** A page read with one row more than `limit`: the page, and the cursor of the next one ("" when none). */
export function pageOf<R>(rows: R[], limit: number, cursorOf: (last: R) => string): { page: R[]; nextCursor: string } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { page, nextCursor: rows.length > limit && last !== undefined ? cursorOf(last) : "" };
}
