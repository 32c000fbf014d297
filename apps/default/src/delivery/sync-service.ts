import { create, toBinary } from "@bufbuild/protobuf";
import {
  type Resync,
  ResyncSchema,
  type RoomCursor,
  RoomCursorSchema,
  type RoomEvent,
  ServerFrameSchema,
} from "@service-chat/api";
import {
  checkCount,
  checkId,
  checkLimit,
  checkProfileId,
  type Identity,
  invalid,
  type LiveBus,
} from "@service-chat/core";
import { publishToUsers } from "@service-chat/protocol";
import { sql } from "kysely";
import { requireAccess } from "../authz/access.js";
import { presentEvent } from "../events/present.js";
import { type Db, EVENT_COLUMNS } from "../events/store.js";

export interface SyncQuery {
  cursors: RoomCursor[];
  limit: number;
  deviceId: string;
}

export interface SyncPage {
  events: RoomEvent[];
  resync: Resync[];
  hasMore: boolean;
  cursors: RoomCursor[];
}

/** Everything after a member's active rooms' cursors is replayed, up to this many events a room. */
export const DEFAULT_MAX_BACKLOG = 10_000;

/**
 * Per-device delivery state and catch-up: acknowledged cursors, read markers (with live receipts),
 * Sync for a device coming back, and typing signals. Cursors are one row per (device, room),
 * moved forward in place; nothing is written per message.
 */
export class SyncService {
  constructor(
    private readonly db: Db,
    private readonly live: LiveBus,
    private readonly maxBacklog = DEFAULT_MAX_BACKLOG,
  ) {}

  /** Moves the device's delivered cursors forward (never back); answers the stored cursors. */
  async ack(caller: Identity, acks: RoomCursor[], deviceId: string): Promise<RoomCursor[]> {
    const device = deviceOf(caller, deviceId);
    checkCount("acks", acks.length, 1000, 1);
    const latest = new Map<string, number>();
    acks.forEach((a, i) => {
      checkId(`acks[${i}].room_id`, a.roomId);
      if (a.seq < 0n) throw invalid(`acks[${i}].seq`, "must not be negative");
      latest.set(a.roomId, Math.max(latest.get(a.roomId) ?? 0, Number(a.seq)));
    });
    const rooms = await this.activeRooms(caller.profileId, [...latest.keys()]);
    acks.forEach((a, i) => {
      const room = rooms.get(a.roomId);
      if (!room) throw invalid(`acks[${i}].room_id`, "is not a room you are in");
      if (Number(a.seq) > room.last_seq)
        throw invalid(`acks[${i}].seq`, `is beyond the room's last seq ${room.last_seq}`);
    });
    const rows = await this.db
      .insertInto("device_cursors")
      .values(
        [...latest].map(([room_id, seq]) => ({
          profile_id: caller.profileId,
          device_id: device,
          room_id,
          delivered_seq: seq,
        })),
      )
      .onConflict((oc) =>
        oc.columns(["profile_id", "device_id", "room_id"]).doUpdateSet({
          delivered_seq: sql`greatest(device_cursors.delivered_seq, excluded.delivered_seq)`,
          updated_at: sql`now()`,
        }),
      )
      .returning(["room_id", "delivered_seq"])
      .execute();
    return rows.map((r) => create(RoomCursorSchema, { roomId: r.room_id, seq: BigInt(r.delivered_seq) }));
  }

  /** Moves the member's read marker forward and tells the room's members, live. */
  async markRead(caller: Identity, roomId: string, seq: bigint): Promise<{ readSeq: number; unread: number }> {
    checkId("room_id", roomId);
    if (seq < 0n) throw invalid("seq", "must not be negative");
    const { room } = await requireAccess(this.db, roomId, caller.profileId, "room.read");
    if (Number(seq) > room.last_seq) throw invalid("seq", `is beyond the room's last seq ${room.last_seq}`);
    const row = await this.db
      .updateTable("room_subscriptions")
      .set({ read_seq: sql`greatest(read_seq, ${Number(seq)})`, updated_at: sql`now()` })
      .where("room_id", "=", roomId)
      .where("profile_id", "=", caller.profileId)
      .returning(["read_seq"])
      .executeTakeFirstOrThrow();
    const frame = create(ServerFrameSchema, {
      frame: { case: "receipt", value: { roomId, profileId: caller.profileId, readSeq: BigInt(row.read_seq) } },
    });
    await this.toMembers(roomId, toBinary(ServerFrameSchema, frame));
    return { readSeq: row.read_seq, unread: Math.max(0, room.last_seq - row.read_seq) };
  }

  /** Tells the room's other members, live, that the caller is typing; nothing is stored. */
  async typing(caller: Identity, roomId: string, active: boolean): Promise<void> {
    checkId("room_id", roomId);
    await requireAccess(this.db, roomId, caller.profileId, "event.send");
    const frame = create(ServerFrameSchema, {
      frame: { case: "typing", value: { roomId, active, profileId: caller.profileId } },
    });
    await this.toMembers(roomId, toBinary(ServerFrameSchema, frame), caller.profileId);
  }

  /**
   * What the device has not seen, in every room the caller is in: from the cursor the device
   * gives, else the one it acknowledged, else where the member joined. A room further behind than
   * the backlog bound is answered with a `resync` naming where replay starts, never cut silently.
   */
  async sync(caller: Identity, q: SyncQuery): Promise<SyncPage> {
    const device = q.deviceId || caller.deviceId ? deviceOf(caller, q.deviceId) : undefined;
    const limit = checkLimit("limit", q.limit, 500, 1000);
    checkCount("cursors", q.cursors.length, 10_000);
    const given = new Map<string, number>();
    q.cursors.forEach((c, i) => {
      checkId(`cursors[${i}].room_id`, c.roomId);
      if (c.seq < 0n) throw invalid(`cursors[${i}].seq`, "must not be negative");
      given.set(c.roomId, Number(c.seq));
    });
    const rooms = await this.db
      .selectFrom("room_subscriptions as s")
      .innerJoin("rooms as r", "r.id", "s.room_id")
      .leftJoin("device_cursors as d", (j) =>
        j
          .onRef("d.room_id", "=", "s.room_id")
          .onRef("d.profile_id", "=", "s.profile_id")
          .on("d.device_id", "=", device ?? ""),
      )
      .select(["s.room_id", "s.joined_seq", "r.last_seq", "d.delivered_seq"])
      .where("s.profile_id", "=", caller.profileId)
      .where("s.state", "=", "active")
      .where("r.deleted_at", "is", null)
      .orderBy("s.room_id")
      .execute();
    const page: SyncPage = { events: [], resync: [], hasMore: false, cursors: [] };
    // Seqs are dense, so what each room has to send is known before reading it: the page is
    // shared out in room order, then read in one statement.
    const ranges: { roomId: string; after: number; upTo: number }[] = [];
    let taken = 0;
    for (const r of rooms) {
      let from = Math.max(given.get(r.room_id) ?? r.delivered_seq ?? r.joined_seq, r.joined_seq);
      from = Math.min(from, r.last_seq);
      if (r.last_seq - from > this.maxBacklog) {
        const resumeAt = r.last_seq - this.maxBacklog;
        page.resync.push(
          create(ResyncSchema, {
            roomId: r.room_id,
            fromSeq: BigInt(resumeAt + 1),
            lastSeq: BigInt(r.last_seq),
            reason: `more than ${this.maxBacklog} events behind; older ones are in GetHistory`,
          }),
        );
        from = resumeAt;
      }
      const take = Math.max(0, Math.min(r.last_seq - from, limit - taken));
      if (take > 0) ranges.push({ roomId: r.room_id, after: from, upTo: from + take });
      taken += take;
      if (from + take < r.last_seq) page.hasMore = true;
      page.cursors.push(create(RoomCursorSchema, { roomId: r.room_id, seq: BigInt(from + take) }));
    }
    if (ranges.length > 0) {
      const rows = await this.db
        .selectFrom("room_events")
        .select(EVENT_COLUMNS)
        .where((eb) =>
          eb.or(
            ranges.map((g) => eb.and([eb("room_id", "=", g.roomId), eb("seq", ">", g.after), eb("seq", "<=", g.upTo)])),
          ),
        )
        .execute();
      const order = new Map(ranges.map((g, i) => [g.roomId, i]));
      rows.sort((a, b) => (order.get(a.room_id) as number) - (order.get(b.room_id) as number) || a.seq - b.seq);
      for (const row of rows) page.events.push(presentEvent(row));
    }
    return page;
  }

  private async toMembers(roomId: string, frame: Uint8Array, except?: string): Promise<void> {
    // Asked fresh each time: this process may not see the room's membership events (no fan-out
    // role here), and signals are rare next to messages.
    const members = await this.db
      .selectFrom("room_subscriptions")
      .select("profile_id")
      .where("room_id", "=", roomId)
      .where("state", "=", "active")
      .execute();
    publishToUsers(
      this.live,
      members.flatMap((m) => (m.profile_id === except ? [] : [m.profile_id])),
      frame,
    );
  }

  private async activeRooms(profileId: string, roomIds: string[]) {
    const rows = await this.db
      .selectFrom("room_subscriptions as s")
      .innerJoin("rooms as r", "r.id", "s.room_id")
      .select(["r.id", "r.last_seq"])
      .where("s.profile_id", "=", profileId)
      .where("s.state", "=", "active")
      .where("r.deleted_at", "is", null)
      .where("r.id", "in", roomIds)
      .execute();
    return new Map(rows.map((r) => [r.id, r]));
  }
}

/** The device a cursor belongs to: the token's device_id claim, else the one the request names. */
function deviceOf(caller: Identity, requested: string): string {
  if (caller.deviceId) {
    if (requested && requested !== caller.deviceId) throw invalid("device_id", "differs from the token's device_id");
    return caller.deviceId;
  }
  if (!requested) throw invalid("device_id", "is required when the token has no device_id claim");
  return checkProfileId("device_id", requested);
}
