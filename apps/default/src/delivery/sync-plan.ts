import type { SeqRange, SyncRoom } from "./store.js";

/** A room whose device is too far behind: replay starts at `fromSeq`, older events are for GetHistory. */
export interface ResyncPlan {
  roomId: string;
  fromSeq: number;
  lastSeq: number;
  reason: string;
}

/** What one Sync page sends, decided before any event is read. */
export interface SyncPlan {
  /** The events to read, room by room in room order. */
  ranges: SeqRange[];
  resync: ResyncPlan[];
  /** Some room has events after this page. */
  hasMore: boolean;
  /** Every room's position after the page. */
  cursors: { roomId: string; seq: number }[];
}

/**
 * Plans a Sync page. Each room starts from the cursor the device gives, else the one it
 * acknowledged, else where the member joined — never before they joined nor after the room's last
 * seq. A room whose cursor is before the member's latest join (removed, then added again) starts
 * where they joined; a room more than `maxBacklog` events behind starts `maxBacklog` events before
 * its end, and one whose start was removed by retention starts at its first stored seq; in each
 * case the room is named in `resync`, so the device learns where it continues instead of meeting a
 * gap. Seqs are dense, so each room's share is known before reading: the page's
 * `limit` events are shared out in room order (rooms as given).
 */
export function planSyncPage(
  rooms: readonly SyncRoom[],
  given: ReadonlyMap<string, number>,
  limit: number,
  maxBacklog: number,
): SyncPlan {
  const plan: SyncPlan = { ranges: [], resync: [], hasMore: false, cursors: [] };
  let taken = 0;
  for (const r of rooms) {
    const start = given.get(r.room_id) ?? r.delivered_seq ?? r.joined_seq;
    let from = Math.min(Math.max(start, r.joined_seq), r.last_seq);
    let reason: string | undefined;
    // A device whose position is before the member's (latest) join: what happened in between is
    // not theirs to see, and the device must move past it, not wait for it as a gap.
    if (start < r.joined_seq) reason = `the room continues from seq ${from + 1}, where you joined it`;
    if (r.last_seq - from > maxBacklog) {
      from = r.last_seq - maxBacklog;
      reason = `more than ${maxBacklog} events behind; older ones are in GetHistory`;
    }
    if (from < r.first_seq - 1) {
      from = r.first_seq - 1;
      reason = `events before seq ${r.first_seq} were removed by the room's retention policy`;
    }
    if (reason) plan.resync.push({ roomId: r.room_id, fromSeq: from + 1, lastSeq: r.last_seq, reason });
    const take = Math.max(0, Math.min(r.last_seq - from, limit - taken));
    if (take > 0) plan.ranges.push({ roomId: r.room_id, after: from, upTo: from + take });
    taken += take;
    if (from + take < r.last_seq) plan.hasMore = true;
    plan.cursors.push({ roomId: r.room_id, seq: from + take });
  }
  return plan;
}
